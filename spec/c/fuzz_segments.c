/*
 * fuzz_segments.c - fuzz target for the SMS segment counter (segments.c).
 * libFuzzer entry point, or (without -DTELUA_LIBFUZZER) a deterministic
 * mutation fuzzer printing TAP, run by `make test` under ASan and UBSan.
 * Inputs sit in heap buffers of exactly their size (no NUL), so a read past
 * the end is an ASan error. Results must be sane: at least one segment, no
 * more segments than graphemes allow, GSM-7 only when asked for or chosen,
 * Smart Encoding never failing on text that counts.
 */
#include "../../src/core/segments.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;

static void fail(const char *what, const uint8_t *data, size_t size)
{
    size_t i;
    if (++failures > 20) return;
    printf("# %s on input (%zu bytes):", what, size);
    for (i = 0; i < size && i < 60; i++) printf(" %02x", data[i]);
    printf("\n");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int mode = size ? data[0] % 3 : 0, rc;
    size_t len = size ? size - 1 : 0, where = 0, sl;
    char *text = malloc(len ? len : 1), *smart;
    tl_seg_result r;
    if (!text) return 0;
    if (len) memcpy(text, data + 1, len);
    rc = tl_seg_count(text, len, mode, &r, NULL, NULL, &where);
    if (rc == TL_SEG_OK) {
        if (r.segments < 1) fail("no segment", data, size);
        if (r.segments > r.graphemes + 1) fail("more segments than graphemes", data, size);
        if (mode == TL_SEG_GSM7 && r.ucs2) fail("UCS-2 when GSM-7 was forced", data, size);
        if (mode == TL_SEG_UCS2 && !r.ucs2) fail("GSM-7 when UCS-2 was forced", data, size);
        if (len == 0 && r.graphemes != 0) fail("graphemes in an empty text", data, size);
        sl = tl_seg_smart_len(text, len);
        if (sl == (size_t)-1) fail("smart encoding refused text that counts", data, size);
        else if ((smart = malloc(sl ? sl : 1)) != NULL) {
            if (tl_seg_smart_encode(text, len, smart) != sl) fail("smart length disagrees", data, size);
            free(smart);
        }
    } else if (rc == TL_SEG_EUTF8 || rc == TL_SEG_ENOTGSM) {
        if (where >= len && len > 0) fail("error offset past the text", data, size);
    } else {
        fail("unexpected return code", data, size);
    }
    free(text);
    return 0;
}

#ifndef TELUA_LIBFUZZER
static uint32_t rng = 0xc0ffee11u;
static uint32_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return rng;
}

static const char *const pieces[] = {
    "a", "Hello ", "\xe2\x82\xac", "{", "|", "\r\n", "\n", "\r", "\xc3\xa9", "\xc4\x85", "\xe4\xbd\xa0",
    "\xf0\x9f\x98\x80", "\xf0\x9f\x91\x8d", "\xf0\x9f\x8f\xbd", "\xe2\x80\x8d", "\xcc\x81", "\xf0\x9f\x87\xba",
    "\xf0\x9f\x87\xb8", "\xe2\x80\x9c", "\xe2\x80\x94", "\xe2\x80\xa6", "\t", "`", "\xe1\x84\x80",
    "\xe1\x85\xa1", "\xe1\x86\xa8", "\xe0\xa4\x95", "\xe0\xa5\x8d", "\xe0\xa4\xb7", "\xff", "\xc0",
    "\xed\xa0\x80", "\xf4\x90\x80\x80", "\x00",
};

int main(int argc, char **argv)
{
    long iterations = argc > 1 ? atol(argv[1]) : 100000, it;
    static uint8_t buf[4000];
    size_t np = sizeof pieces / sizeof pieces[0];
    printf("TAP version 13\n");
    for (it = 0; it < iterations; it++) {
        size_t len = 1, n = 1 + next() % (it % 50 == 0 ? 700 : 80), k;
        buf[0] = (uint8_t)next();
        for (k = 0; k < n; k++) {
            const char *p = pieces[next() % np];
            size_t pl = strlen(p) ? strlen(p) : 1;
            if (len + pl >= sizeof buf) break;
            memcpy(buf + len, p, pl);
            len += pl;
        }
        if (next() % 4 == 0 && len > 2) buf[1 + next() % (len - 1)] ^= (uint8_t)(1u << (next() % 8));
        LLVMFuzzerTestOneInput(buf, len);
    }
    printf("%s 1 - %ld fuzzed texts count without a memory error or an insane result%s\n",
           failures ? "not ok" : "ok", iterations, failures ? " (see above)" : "");
    printf("1..1\n");
    return failures ? 1 : 0;
}
#endif
