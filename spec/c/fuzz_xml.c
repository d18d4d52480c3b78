/*
 * fuzz_xml.c - libFuzzer target for the TwiML text checks and escaping
 * (src/core/xml.c).
 *
 * tl_xml_check is compared with an independent decoder: glibc's mbrtowc
 * in the C.UTF-8 locale (which refuses overlong forms, surrogates and
 * code points past U+10FFFF), followed by XML 1.0's Char production
 * (§2.2). Text that passes is escaped in both modes and must come back
 * unchanged through an unescaper of XML's predefined and character
 * references, with none of the characters each mode must escape left bare.
 */
#include "../../src/core/xml.h"

#include <locale.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

static int xml_char(uint32_t c)
{
    return c == 0x9 || c == 0xA || c == 0xD || (c >= 0x20 && c <= 0xD7FF) || (c >= 0xE000 && c <= 0xFFFD) ||
           (c >= 0x10000 && c <= 0x10FFFF);
}

/* The offset of the first byte that is not (part of) an allowed character. */
static size_t reference_check(const char *s, size_t len)
{
    size_t i = 0;
    mbstate_t st;
    while (i < len) {
        wchar_t wc;
        size_t n;
        memset(&st, 0, sizeof st);
        n = mbrtowc(&wc, s + i, len - i, &st);
        if (n == 0) return i; /* NUL */
        if (n == (size_t)-1 || n == (size_t)-2 || !xml_char((uint32_t)wc)) return i;
        i += n;
    }
    return (size_t)-1;
}

static size_t unescape(const char *s, size_t len, char *out)
{
    static const struct { const char *ent; char c; } ents[] = {
        { "&amp;", '&' }, { "&lt;", '<' }, { "&gt;", '>' }, { "&quot;", '"' }, { "&apos;", '\'' },
        { "&#xD;", '\r' }, { "&#xA;", '\n' }, { "&#x9;", '\t' },
    };
    size_t i = 0, o = 0, k;
    while (i < len) {
        if (s[i] == '&') {
            for (k = 0; k < sizeof ents / sizeof ents[0]; k++) {
                size_t n = strlen(ents[k].ent);
                if (n <= len - i && memcmp(s + i, ents[k].ent, n) == 0) {
                    out[o++] = ents[k].c;
                    i += n;
                    break;
                }
            }
            if (k == sizeof ents / sizeof ents[0]) abort(); /* a bare '&' in the output */
        } else {
            out[o++] = s[i++];
        }
    }
    return o;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (!setlocale(LC_CTYPE, "C.UTF-8")) abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size ? size : 1);
    size_t bad, attr;
    if (size) memcpy(s, data, size);
    bad = tl_xml_check(s, size);
    if (bad != reference_check(s, size)) abort(); /* disagrees with the reference decoder */
    if (bad == (size_t)-1) {
        char *esc = malloc(6 * size + 1), *back = malloc(size + 1);
        for (attr = 0; attr < 2; attr++) {
            size_t n = tl_xml_escape(s, size, (int)attr, esc), i;
            for (i = 0; i < n; i++) {
                char c = esc[i];
                if (c == '<' || c == '\r' || (attr && (c == '"' || c == '\n' || c == '\t')) || (!attr && c == '>'))
                    abort(); /* left bare */
            }
            if (unescape(esc, n, back) != size || memcmp(back, s, size) != 0) abort(); /* not the same text */
        }
        free(esc);
        free(back);
    }
    free(s);
    return 0;
}
