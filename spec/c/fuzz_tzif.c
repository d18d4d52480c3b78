/*
 * fuzz_tzif.c - libFuzzer target for the tzdata reader (src/core/tz.c):
 * TZif images (RFC 8536) and, in a version 2 image built around them,
 * POSIX TZ footers (the rule for instants past the last transition).
 *
 * Input whose first byte is even is a TZif image as it is; odd, the rest
 * is a footer rule put into a minimal valid image (one time type, no
 * transitions), so the rule parser and its date arithmetic see every
 * string. A zone that parses answers for instants across the whole range
 * with an offset of a valid type (RFC 8536 §3.2: a 32-bit utoff that is
 * not -2^31) and a NUL-terminated abbreviation.
 */
#include "../../src/core/tz.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void put32(unsigned char *p, uint32_t v)
{
    p[0] = v >> 24, p[1] = v >> 16, p[2] = v >> 8, p[3] = v;
}

/* header of a TZif block: version '2', typecnt 1, charcnt 4, no transitions */
static size_t header(unsigned char *p)
{
    memset(p, 0, 44);
    memcpy(p, "TZif2", 5);
    put32(p + 36, 1);
    put32(p + 40, 4);
    return 44;
}

static size_t block(unsigned char *p)
{
    /* one ttinfo (utoff -18000, not DST, abbreviation 0) and "EST\0" */
    static const unsigned char b[] = { 0xff, 0xff, 0xb9, 0xb0, 0, 0, 'E', 'S', 'T', 0 };
    memcpy(p, b, sizeof b);
    return sizeof b;
}

static void probe(const tl_tz_zone *z, const uint8_t *data, size_t size)
{
    static const int64_t ts[] = { INT64_MIN, -((int64_t)1 << 53) - 1, -2208988800LL, -1, 0, 1, 1796644800LL,
                                  2147483647LL, 3035775600LL, ((int64_t)1 << 53) + 1, INT64_MAX };
    tl_tz_local loc;
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) {
        tl_tz_zone_at(z, ts[i], &loc);
        if (loc.utoff == INT32_MIN || memchr(loc.abbr, 0, sizeof loc.abbr) == NULL) abort();
    }
    for (size_t i = 0; i + 8 <= size && i < 64; i += 8) { /* instants from the input */
        int64_t t;
        memcpy(&t, data + i, 8);
        tl_tz_zone_at(z, t, &loc);
        if (loc.utoff == INT32_MIN || memchr(loc.abbr, 0, sizeof loc.abbr) == NULL) abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) return 0;
    tl_tz_zone *z;
    if ((data[0] & 1) == 0) {
        unsigned char *img = malloc(size - 1 ? size - 1 : 1); /* exactly the input: a read past it is an ASan error */
        memcpy(img, data + 1, size - 1);
        z = tl_tz_parse(img, size - 1);
        free(img);
    } else {
        size_t rule = size - 1 > 200 ? 200 : size - 1;
        size_t n = 2 * (44 + 10) + 2 + rule, off = 0;
        unsigned char *img = malloc(n);
        off += header(img + off);
        off += block(img + off);
        off += header(img + off);
        off += block(img + off);
        img[off++] = '\n';
        memcpy(img + off, data + 1, rule);
        off += rule;
        img[off++] = '\n';
        z = tl_tz_parse(img, off);
        free(img);
        if (!z) abort(); /* the image around any footer is valid */
    }
    if (z) {
        probe(z, data, size);
        tl_tz_zone_free(z);
    }
    return 0;
}
