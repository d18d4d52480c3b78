/*
 * xml.c - XML character checks and escaping (see xml.h).
 */
#include "xml.h"

#include <stdint.h>
#include <string.h>

size_t tl_xml_check(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        size_t need, j;
        uint32_t cp;
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
    size_t i, o = 0;
    for (i = 0; i < len; i++) {
        const char *rep = NULL;
        switch (s[i]) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': if (!attr) rep = "&gt;"; break;
        case '"': if (attr) rep = "&quot;"; break;
        case '\r': rep = "&#xD;"; break;
        case '\n': if (attr) rep = "&#xA;"; break;
        case '\t': if (attr) rep = "&#x9;"; break;
        default: break;
        }
        if (rep) {
            size_t n = strlen(rep);
            memcpy(dst + o, rep, n);
            o += n;
        } else {
            dst[o++] = s[i];
        }
    }
    return o;
}
