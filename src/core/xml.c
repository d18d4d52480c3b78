/*
 * xml.c - XML character checks and escaping (see xml.h).
 */
#include "xml.h"

#include <stdint.h>
#include <string.h>

/* Eight bytes that are all printable ASCII (0x20-0x7F): none has the top
 * bit set and none is below 0x20 (the "hasless" test of Bit Twiddling
 * Hacks, Sean Eron Anderson). */
static int printable8(const unsigned char *p)
{
    uint64_t x;
    memcpy(&x, p, 8);
    return ((x | ((x - 0x2020202020202020ULL) & ~x)) & 0x8080808080808080ULL) == 0;
}

size_t tl_xml_check(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < len) {
        unsigned char c;
        size_t need, j;
        uint32_t cp;
        if (i + 8 <= len && printable8(s + i)) {
            i += 8;
            continue;
        }
        c = s[i];
        if (c < 0x80) {
            if (c < 0x20 && c != 0x09 && c != 0x0A && c != 0x0D) return i;
            i++;
            continue;
        }
        if ((c >> 5) == 6) { need = 1; cp = c & 0x1F; }
        else if ((c >> 4) == 14) { need = 2; cp = c & 0x0F; }
        else if ((c >> 3) == 30) { need = 3; cp = c & 0x07; }
        else return i;
        if (i + need >= len) return i;
        for (j = 1; j <= need; j++) {
            if ((s[i + j] & 0xC0) != 0x80) return i;
            cp = cp << 6 | (s[i + j] & 0x3F);
        }
        if ((need == 1 && cp < 0x80) || (need == 2 && cp < 0x800) ||
            (need == 3 && cp < 0x10000) || cp > 0x10FFFF ||
            (cp >= 0xD800 && cp <= 0xDFFF) || cp == 0xFFFE || cp == 0xFFFF)
            return i;
        i += need + 1;
    }
    return (size_t)-1;
}

size_t tl_xml_escape(const char *s, size_t len, int attr, char *dst)
{
    /* what a byte becomes (NULL: itself), in text and in attribute values */
    static const char *const text_esc[256] = { ['&'] = "&amp;", ['<'] = "&lt;", ['>'] = "&gt;", ['\r'] = "&#xD;" };
    static const char *const attr_esc[256] = { ['&'] = "&amp;", ['<'] = "&lt;", ['"'] = "&quot;", ['\t'] = "&#x9;",
                                               ['\n'] = "&#xA;", ['\r'] = "&#xD;" };
    const char *const *esc = attr ? attr_esc : text_esc;
    size_t i = 0, o = 0;
    while (i < len) { /* a run of bytes that stay is copied at once */
        size_t run = i, n;
        while (run < len && !esc[(unsigned char)s[run]]) run++;
        memcpy(dst + o, s + i, run - i);
        o += run - i;
        if (run == len) break;
        n = strlen(esc[(unsigned char)s[run]]);
        memcpy(dst + o, esc[(unsigned char)s[run]], n);
        o += n;
        i = run + 1;
    }
    return o;
}
