/*
 * form.c - application/x-www-form-urlencoded decode and encode (see form.h).
 */
#include "form.h"

#include <string.h>

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Decodes src[0..len) into dst; returns the decoded length, or -1 with
 * *bad set to the offset of a malformed escape. */
static long decode_part(const char *src, size_t len, char *dst, size_t *bad)
{
    size_t i, o = 0;
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)src[i];
        if (c == '+') {
            dst[o++] = ' ';
        } else if (c == '%') {
            int hi, lo;
            if (i + 2 >= len) { /* fewer than two bytes follow */
                *bad = i;
                return -1;
            }
            hi = hexval((unsigned char)src[i + 1]);
            lo = hexval((unsigned char)src[i + 2]);
            if (hi < 0 || lo < 0) {
                *bad = i;
                return -1;
            }
            dst[o++] = (char)(hi << 4 | lo);
            i += 2;
        } else {
            dst[o++] = (char)c;
        }
    }
    return (long)o;
}

int tl_form_decode(const char *src, size_t len, char *scratch,
                   tl_form_emit emit, void *ud, size_t *err_pos)
{
    size_t pos = 0, used = 0;
    while (pos < len) {
        const char *seq = src + pos;
        const char *amp = memchr(seq, '&', len - pos);
        size_t seq_len = amp ? (size_t)(amp - seq) : len - pos;
        if (seq_len > 0) {
            const char *eq = memchr(seq, '=', seq_len);
            size_t klen = eq ? (size_t)(eq - seq) : seq_len;
            size_t bad = 0;
            long kdec, vdec = 0;
            int rc;
            char *out = scratch + used; /* each pair after the last: all stay readable */
            kdec = decode_part(seq, klen, out, &bad);
            if (kdec < 0) {
                if (err_pos) *err_pos = pos + bad;
                return TL_FORM_EBADESCAPE;
            }
            if (eq) {
                vdec = decode_part(eq + 1, seq_len - klen - 1, out + kdec, &bad);
                if (vdec < 0) {
                    if (err_pos) *err_pos = pos + klen + 1 + bad;
                    return TL_FORM_EBADESCAPE;
                }
            }
            used += (size_t)(kdec + vdec);
            rc = emit(ud, out, (size_t)kdec, out + kdec, (size_t)vdec);
            if (rc != 0) return rc;
        }
        pos += seq_len + 1;
    }
    return TL_FORM_OK;
}

size_t tl_form_encode(const char *src, size_t len, char *dst)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t i, o = 0;
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)src[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
            (c >= '0' && c <= '9') || c == '*' || c == '-' || c == '.' || c == '_') {
            dst[o++] = (char)c;
        } else if (c == ' ') {
            dst[o++] = '+';
        } else {
            dst[o++] = '%';
            dst[o++] = hex[c >> 4];
            dst[o++] = hex[c & 15];
        }
    }
    return o;
}
