/*
 * fuzz_e164.c - fuzz target for the E.164 parser (src/core/e164.c, re.c).
 *
 * Two ways to run it:
 *   - as a libFuzzer target (clang -fsanitize=fuzzer,address,undefined
 *     -DTELUA_LIBFUZZER ...; `make fuzz` does this when clang is there);
 *   - as a plain program under ASan/UBSan (what `make test` runs): a
 *     deterministic mutation fuzzer over seed inputs, printing TAP.
 *
 * Each input is copied into a heap buffer of exactly its size with no
 * terminating NUL, so reading one byte past the input is an ASan error.
 * Beyond not crashing, every successful parse must be well formed: E.164
 * is "+" country code national number, 2..17 national digits, a known type
 * name, a region the metadata knows or none.
 */
#include "../../src/core/e164.h"
#include "../../src/core/re.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const regions[] = { "US", "GB", "DE", "FR", "BR", "IN", "JP", "AU", "NG", "VI",
                                       "RU", "AR", "MX", "IT", "CN", "ZZ", "us", "001", "", NULL };

static int failures;

static void fail(const char *what, const uint8_t *data, size_t size)
{
    size_t i;
    failures++;
    if (failures > 20) return;
    printf("# %s on input (%zu bytes):", what, size);
    for (i = 0; i < size && i < 80; i++) printf(" %02x", data[i]);
    printf("\n");
}

static int check(const uint8_t *data, size_t size)
{
    const char *region = regions[size ? data[0] % (sizeof regions / sizeof regions[0]) : 0];
    size_t len = size ? size - 1 : 0, i, nl;
    char *input = malloc(len ? len : 1), want[32];
    tl_e164_number n;
    int rc;
    if (!input) return 0;
    if (len) memcpy(input, data + 1, len);
    rc = tl_e164_parse(input, len, region, &n);
    free(input);
    if (rc < 0 || rc > TL_E164_TOO_LONG) {
        fail("unknown return code", data, size);
        return 0;
    }
    if (rc != TL_E164_OK) return 0;
    nl = strlen(n.national);
    if (nl < 2 || nl > 17) fail("national number length out of 2..17", data, size);
    for (i = 0; i < nl; i++)
        if (n.national[i] < '0' || n.national[i] > '9') fail("non-digit in national number", data, size);
    if (n.country_code < 1 || n.country_code > 999) fail("country code out of range", data, size);
    snprintf(want, sizeof want, "+%d%s", n.country_code, n.national);
    if (strcmp(want, n.e164) != 0) fail("e164 is not + country code national number", data, size);
    if (strcmp(tl_e164_type_name(n.type), "UNKNOWN") == 0 && n.type != TL_E164_T_UNKNOWN)
        fail("type without a name", data, size);
    if (n.valid != (n.type != TL_E164_T_UNKNOWN)) fail("valid disagrees with type", data, size);
    if (n.region[0] && strcmp(n.region, "001") != 0 && !tl_e164_region_known(n.region))
        fail("unknown region", data, size);
    if (strlen(n.extension) >= sizeof n.extension) fail("extension overflow", data, size);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return check(data, size);
}

#ifndef TELUA_LIBFUZZER

static uint32_t rng = 0x5eed1234u;
static uint32_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return rng;
}

static const char *const seeds[] = {
    "(415) 555-1234", "+44 20 7946 0958", "0044 20 7946 0958", "011 44 20 7946 0958",
    "+44 (0) 20 7946 0958", "1-800-FLOWERS", "650-253-0000 ext. 1234", "tel:253-0000;phone-context=+1-650",
    "\xef\xbc\x8b\xef\xbc\x91 \xef\xbc\x96\xef\xbc\x95\xef\xbc\x90", "0 21 11 91234 5678", "693-4800",
    "555-1234", "+15005550006", "+1 65O 253 OOOO", "+999 1234 5678", "(530) 583-6985 x302/x2303",
    "+1 650 253 0000,,123", "6502530000 - 503#", "tel:+1-650-253-0000;isub=12345",
    "tel:253-0000;phone-context=example.com", "+800 1234 5678", "+7 495 123 45 67 \xd0\xb4\xd0\xbe\xd0\xb1 123",
    "+39 06 6982 0000", "011 15 1234 5678", "+52 1 55 1234 5678", "8 800 555 35 35", "+262 269 61 23 45",
    "\xd9\xa0\xd9\xa1\xd9\xa2\xd9\xa3\xd9\xa4\xd9\xa5\xd9\xa6\xd9\xa7", "+1 650 253 0000;ext=99", "12",
};

/* fragments the mutator splices in: the parser's special characters */
static const char *const pieces[] = {
    "+", "\xef\xbc\x8b", ";phone-context=", ";phone-context=+", "tel:", ";isub=", ";ext=", " ext. ", "x",
    "#", ",,", ";", "~", "-", " ", "(", ")", ".", "/", "\\", "*", "0", "00", "011", "1", "9", "\xef\xbc\x90",
    "\xd9\xa3", "\xdb\xb5", "\xe2\x80\x90", "\xc2\xa0", "\xe2\x81\xa0", "\xd0\xb4\xd0\xbe\xd0\xb1", "anexo",
    "int", "ABC", "\xcc\x81", "\xff", "\xc0\x80", "\xed\xa0\x80", "\xf0\x9f\x93\x9e", "\x00", "\n",
};

int main(int argc, char **argv)
{
    long iterations = argc > 1 ? atol(argv[1]) : 200000, it;
    uint8_t buf[600];
    size_t nseeds = sizeof seeds / sizeof seeds[0], npieces = sizeof pieces / sizeof pieces[0];
    int t = 0;
    printf("TAP version 13\n");
    if (tl_e164_init() != 0) {
        printf("not ok %d - every metadata pattern compiles\n", ++t);
        failures++;
    } else {
        printf("ok %d - every metadata pattern compiles\n", ++t);
    }
    {   /* the DFA paths give the backtracking VM's answers, also where they
         * fall back to it: 3,000 digits in a row are too many states for a
         * DFA (alone, and in a set with three other patterns) */
        static const char *const pats[] = { "\\d{100}", "(?:\\d{1000}){3}", "0(?:1|23)?\\d{2,3}", "[2-9]\\d{9}|3\\d{6}" };
        static char digits[3001];
        tl_re *res[4];
        tl_re_set *set;
        size_t lens[] = { 0, 5, 6, 7, 10, 99, 100, 101, 2999, 3000 }, i, j;
        int bad = 0;
        memset(digits, '3', 3000);
        for (i = 0; i < 4; i++) res[i] = tl_re_compile(pats[i], 0);
        set = tl_re_set_new(res, 4);
        for (j = 0; j < sizeof lens / sizeof lens[0]; j++) {
            unsigned want = 0, got = set ? tl_re_set_full_digits(set, digits, lens[j]) : 0;
            for (i = 0; i < 4; i++) {
                int vm = res[i] && tl_re_match_bytes(res[i], digits, lens[j], 1, NULL) == (long)lens[j];
                if (res[i] && tl_re_full_digits(res[i], digits, lens[j]) != vm) bad++;
                if (vm) want |= 1u << i;
            }
            if (got != want) bad++;
        }
        if (!set || !res[0] || !res[1] || !res[2] || !res[3]) bad++;
        tl_re_set_free(set);
        for (i = 0; i < 4; i++) tl_re_free(res[i]);
        printf("%s %d - digit DFAs and their fallbacks agree with the VM\n", bad ? "not ok" : "ok", ++t);
        if (bad) failures++;
    }
    for (it = 0; it < iterations; it++) {
        const char *s = seeds[next() % nseeds];
        size_t len = strlen(s), k, muts = 1 + next() % 6;
        if (len + 1 > sizeof buf) continue;
        buf[0] = (uint8_t)next();
        memcpy(buf + 1, s, len);
        len++;
        for (k = 0; k < muts; k++) {
            uint32_t r = next() % 6;
            size_t pos = len > 1 ? 1 + next() % (len - 1) : 1;
            if (r == 0 && len > 1) { /* delete a run */
                size_t d = 1 + next() % 4;
                if (pos + d > len) d = len - pos;
                memmove(buf + pos, buf + pos + d, len - pos - d);
                len -= d;
            } else if (r == 1 && len > 1) { /* flip a byte */
                buf[pos] ^= (uint8_t)(1u << (next() % 8));
            } else if (r == 2) { /* splice a piece */
                const char *p = pieces[next() % npieces];
                size_t pl = strlen(p) ? strlen(p) : 1; /* "\x00" is one NUL byte */
                if (len + pl < sizeof buf) {
                    memmove(buf + pos + pl, buf + pos, len - pos);
                    memcpy(buf + pos, p, pl);
                    len += pl;
                }
            } else if (r == 3) { /* random bytes */
                size_t a = 1 + next() % 6, j;
                if (len + a < sizeof buf) {
                    memmove(buf + pos + a, buf + pos, len - pos);
                    for (j = 0; j < a; j++) buf[pos + j] = (uint8_t)next();
                    len += a;
                }
            } else if (r == 4) { /* truncate */
                len = pos;
            } else if (len * 2 < sizeof buf) { /* repeat the tail (long inputs) */
                memcpy(buf + len, buf + pos, len - pos);
                len += len - pos;
            }
        }
        check(buf, len);
    }
    {   /* the length limit's edges: 250 and 251 characters of digits */
        static uint8_t big[260];
        memset(big, '5', sizeof big);
        big[0] = 0;
        check(big, 251);
        check(big, 252);
        check(big, sizeof big);
    }
    if (failures)
        printf("not ok %d - %ld fuzzed inputs parse without error or malformed result (%d failures)\n", ++t,
               iterations, failures);
    else
        printf("ok %d - %ld fuzzed inputs parse without a memory error or malformed result\n", ++t, iterations);
    printf("1..%d\n", t);
    return failures ? 1 : 0;
}
#endif
