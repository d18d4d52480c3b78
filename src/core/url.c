/*
 * url.c - URL spellings a Twilio signature validator tries (see url.h).
 *
 * Sources: twilio-node 6.2.0 src/webhooks/webhooks.ts (splitUrl, addPort,
 * removePort, withLegacyQuerystring); the WHATWG URL Standard, sections
 * "URL parsing" and "URL serializing", for tl_url_normalize; Node's
 * lib/querystring.js for tl_url_legacy_query.
 */
#include "url.h"

#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- a bounded output buffer ------------------------------------------ */

typedef struct {
    char *p;
    size_t n, cap;
    int overflow;
} wbuf;

static void put(wbuf *w, const char *s, size_t n)
{
    if (w->overflow || n > w->cap - w->n) {
        w->overflow = 1;
        return;
    }
    memcpy(w->p + w->n, s, n);
    w->n += n;
}

static void putch(wbuf *w, char c) { put(w, &c, 1); }

static void putpct(wbuf *w, unsigned char c)
{
    static const char hex[] = "0123456789ABCDEF";
    char e[3] = { '%', hex[c >> 4], hex[c & 15] };
    put(w, e, 3);
}

static long finish(wbuf *w) { return w->overflow ? -1 : (long)w->n; }

static int lower(int c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; }

/* ---- twilio-node's splitUrl ------------------------------------------- */

typedef struct {
    size_t scheme_end; /* just past "://" */
    size_t host_start; /* just past the last '@' of the authority, or scheme_end */
    size_t host_end;   /* start of ":port", or auth_end */
    size_t auth_end;   /* first '/', '?' or '#' after the scheme, or len */
} url_parts;

static int is_alpha(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static int is_digit(int c) { return c >= '0' && c <= '9'; }
static int is_hex(int c) { return is_digit(c) || (lower(c) >= 'a' && lower(c) <= 'f'); }
static int hex2(const char *s) { return (is_digit((unsigned char)s[0]) ? s[0] - '0' : lower((unsigned char)s[0]) - 'a' + 10) << 4 |
                                        (is_digit((unsigned char)s[1]) ? s[1] - '0' : lower((unsigned char)s[1]) - 'a' + 10); }
static int eq_nocase(const char *a, const char *b, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        if (lower((unsigned char)a[i]) != lower((unsigned char)b[i])) return 0;
    return 1;
}

/* /^([a-z][a-z0-9+.-]*:\/\/)([^/?#]*)/i; returns 0 when it does not match. */
static int split_url(const char *u, size_t n, url_parts *p)
{
    size_t i = 0, at = (size_t)-1, br = (size_t)-1, j;
    if (n == 0 || !is_alpha((unsigned char)u[0])) return 0;
    for (i = 1; i < n; i++) {
        int c = (unsigned char)u[i];
        if (!(is_alpha(c) || is_digit(c) || c == '+' || c == '.' || c == '-')) break;
    }
    if (i + 3 > n || memcmp(u + i, "://", 3) != 0) return 0;
    p->scheme_end = i + 3;
    for (j = p->scheme_end; j < n && u[j] != '/' && u[j] != '?' && u[j] != '#'; j++)
        if (u[j] == '@') at = j;
    p->auth_end = j;
    p->host_start = at == (size_t)-1 ? p->scheme_end : at + 1;
    for (j = p->host_start; j < p->auth_end; j++)
        if (u[j] == ']') br = j;
    p->host_end = p->auth_end;
    for (j = br == (size_t)-1 ? p->host_start : br + 1; j < p->auth_end; j++)
        if (u[j] == ':') { p->host_end = j; break; }
    return 1;
}

long tl_url_remove_port(const char *u, size_t n, char *dst, size_t cap)
{
    wbuf w = { dst, 0, cap, 0 };
    url_parts p;
    if (!split_url(u, n, &p)) {
        put(&w, u, n);
    } else {
        put(&w, u, p.host_end);
        put(&w, u + p.auth_end, n - p.auth_end);
    }
    return finish(&w);
}

long tl_url_add_port(const char *u, size_t n, char *dst, size_t cap)
{
    wbuf w = { dst, 0, cap, 0 };
    url_parts p;
    if (!split_url(u, n, &p) || p.host_end != p.auth_end) {
        put(&w, u, n);
    } else {
        int https = p.scheme_end == 8 && eq_nocase(u, "https", 5);
        put(&w, u, p.host_end);
        put(&w, https ? ":443" : ":80", https ? 4 : 3);
        put(&w, u + p.auth_end, n - p.auth_end);
    }
    return finish(&w);
}

/* ---- WHATWG serialisation of http(s) URLs ----------------------------- */

/* Percent-encode sets (URL Standard section 1.3), as bit flags per byte. */
enum { SET_FRAGMENT = 1, SET_QUERY = 2, SET_SPECIAL_QUERY = 4, SET_PATH = 8, SET_USERINFO = 16 };

static int in_set(unsigned char c, int set)
{
    int query = c == ' ' || c == '"' || c == '#' || c == '<' || c == '>';
    int path = query || c == '?' || c == '`' || c == '{' || c == '}';
    if (c < 0x20 || c > 0x7E) return 1; /* C0 control percent-encode set */
    switch (set) {
    case SET_FRAGMENT:
        return c == ' ' || c == '"' || c == '<' || c == '>' || c == '`';
    case SET_QUERY:
        return query;
    case SET_SPECIAL_QUERY:
        return query || c == '\'';
    case SET_PATH:
        return path;
    case SET_USERINFO:
        return path || c == '/' || c == ':' || c == ';' || c == '=' || c == '@' ||
               (c >= '[' && c <= '^') || c == '|';
    }
    return 0;
}

static void put_encoded(wbuf *w, const char *s, size_t n, int set)
{
    size_t i;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (in_set(c, set)) putpct(w, c);
        else putch(w, (char)c);
    }
}

/* WHATWG IPv4 number parser for one label: decimal, 0x hex or 0-octal.
 * Returns 0 and the value, or -1. */
static int ipv4_number(const char *s, size_t n, uint64_t *out)
{
    int base = 10;
    uint64_t v = 0;
    size_t i;
    if (n == 0) return -1;
    if (n >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        base = 16; s += 2; n -= 2;
    } else if (n >= 2 && s[0] == '0') {
        base = 8; s += 1; n -= 1;
    }
    for (i = 0; i < n; i++) {
        int c = (unsigned char)s[i], d;
        if (is_digit(c)) d = c - '0';
        else if (base == 16 && lower(c) >= 'a' && lower(c) <= 'f') d = lower(c) - 'a' + 10;
        else return -1;
        if (d >= base) return -1;
        v = v * (uint64_t)base + (uint64_t)d;
        if (v > 0xFFFFFFFFULL * 256) return -1;
    }
    *out = v;
    return 0;
}

/* Host ends in a number (URL Standard "ends in a number checker")? */
static int ends_in_number(const char *h, size_t n)
{
    size_t start, i;
    uint64_t v;
    if (n > 0 && h[n - 1] == '.') n--;
    if (n == 0) return 0;
    for (start = n; start > 0 && h[start - 1] != '.'; start--) {}
    for (i = start; i < n && is_digit((unsigned char)h[i]); i++) {}
    if (i == n) return 1;
    return ipv4_number(h + start, n - start, &v) == 0 && n - start >= 2 &&
           h[start] == '0' && lower(h[start + 1]) == 'x';
}

static int put_ipv4(wbuf *w, const char *h, size_t n)
{
    uint64_t parts[4], v = 0;
    size_t count = 0, start = 0, i;
    char tmp[16];
    if (n > 0 && h[n - 1] == '.') n--;
    for (i = 0; i <= n; i++) {
        if (i == n || h[i] == '.') {
            if (count == 4 || ipv4_number(h + start, i - start, &parts[count]) != 0) return -1;
            count++;
            start = i + 1;
        }
    }
    for (i = 0; i + 1 < count; i++) {
        if (parts[i] > 255) return -1;
        v = v * 256 + parts[i];
    }
    if (parts[count - 1] >= (1ULL << (8 * (5 - count)))) return -1;
    v = (v << (8 * (5 - count))) + parts[count - 1];
    snprintf(tmp, sizeof tmp, "%u.%u.%u.%u", (unsigned)(v >> 24) & 255,
             (unsigned)(v >> 16) & 255, (unsigned)(v >> 8) & 255, (unsigned)v & 255);
    put(w, tmp, strlen(tmp));
    return 0;
}

/* "[...]": parsed by inet_pton, serialised by the URL Standard's IPv6
 * serializer (first longest run of two or more zero pieces is "::"). */
static int put_ipv6(wbuf *w, const char *h, size_t n)
{
    char in[64], tmp[8];
    unsigned char a[16];
    int piece[8], i, best = -1, best_len = 1, run = 0;
    if (n < 2 || n - 2 >= sizeof in) return -1;
    memcpy(in, h + 1, n - 2);
    in[n - 2] = 0;
    if (inet_pton(AF_INET6, in, a) != 1) return -1;
    for (i = 0; i < 8; i++) piece[i] = a[2 * i] << 8 | a[2 * i + 1];
    for (i = 0; i < 8; i++) {
        run = piece[i] == 0 ? run + 1 : 0;
        if (run > best_len) { best_len = run; best = i - run + 1; }
    }
    putch(w, '[');
    for (i = 0; i < 8; i++) {
        if (i == best) {
            put(w, i == 0 ? "::" : ":", i == 0 ? 2 : 1);
            i += best_len - 1;
            continue;
        }
        snprintf(tmp, sizeof tmp, "%x", (unsigned)piece[i]);
        put(w, tmp, strlen(tmp));
        if (i < 7) putch(w, ':');
    }
    putch(w, ']');
    return 0;
}

static int put_host(wbuf *w, const char *h, size_t n)
{
    char buf[256];
    size_t i, o = 0;
    if (n == 0) return -1;
    if (h[0] == '[') return h[n - 1] == ']' ? put_ipv6(w, h, n) : -1;
    /* percent-decode; non-ASCII would need IDNA, which is not done here */
    for (i = 0; i < n; i++) {
        int c = (unsigned char)h[i];
        if (o == sizeof buf) return -1;
        if (c == '%' && i + 2 < n && is_hex((unsigned char)h[i + 1]) && is_hex((unsigned char)h[i + 2])) {
            c = hex2(h + i + 1);
            i += 2;
        }
        if (c >= 0x80 || c <= 0x20 || c == 0x7F || strchr("#%/:<>?@[\\]^|", c)) return -1;
        buf[o++] = (char)lower(c);
    }
    if (ends_in_number(buf, o)) return put_ipv4(w, buf, o);
    put(w, buf, o);
    return 0;
}

static int is_single_dot(const char *s, size_t n)
{
    return (n == 1 && s[0] == '.') ||
           (n == 3 && s[0] == '%' && s[1] == '2' && lower(s[2]) == 'e');
}

static int is_double_dot(const char *s, size_t n)
{
    if (n == 2) return s[0] == '.' && s[1] == '.';
    if (n == 4) return (is_single_dot(s, 1) && is_single_dot(s + 1, 3)) ||
                       (is_single_dot(s, 3) && is_single_dot(s + 3, 1));
    if (n == 6) return is_single_dot(s, 3) && is_single_dot(s + 3, 3);
    return 0;
}

long tl_url_normalize(const char *url, size_t len, char *dst, size_t cap)
{
    wbuf w = { dst, 0, cap, 0 };
    char *u;
    size_t n = 0, i, s, a, auth_end, at, hp, colon, path_start;
    int https;
    long port = -1;

    /* strip leading/trailing C0 control or space; drop tab and newlines */
    while (len > 0 && (unsigned char)url[0] <= 0x20) { url++; len--; }
    while (len > 0 && (unsigned char)url[len - 1] <= 0x20) len--;
    u = malloc(len + 1);
    if (!u) return -1;
    for (i = 0; i < len; i++)
        if (url[i] != '\t' && url[i] != '\n' && url[i] != '\r') u[n++] = url[i];

    /* scheme: only the special schemes http and https are normalised */
    for (s = 0; s < n && u[s] != ':'; s++) {}
    if (s == 4 && eq_nocase(u, "http", 4)) https = 0;
    else if (s == 5 && eq_nocase(u, "https", 5)) https = 1;
    else goto fail;
    put(&w, https ? "https://" : "http://", https ? 8 : 7);

    /* special authority ignore slashes */
    for (a = s + 1; a < n && (u[a] == '/' || u[a] == '\\'); a++) {}
    for (auth_end = a; auth_end < n && !strchr("/\\?#", u[auth_end]); auth_end++) {}

    /* userinfo: everything before the last '@'; the first ':' splits it */
    at = (size_t)-1;
    for (i = a; i < auth_end; i++)
        if (u[i] == '@') at = i;
    hp = a;
    if (at != (size_t)-1) {
        size_t c = a;
        while (c < at && u[c] != ':') c++;
        if (c > a || (c < at && at - c > 1)) {
            put_encoded(&w, u + a, c - a, SET_USERINFO);
            if (c < at && at - c > 1) {
                putch(&w, ':');
                put_encoded(&w, u + c + 1, at - c - 1, SET_USERINFO);
            }
            putch(&w, '@');
        }
        hp = at + 1;
    }

    /* host and port: a ':' outside [brackets] starts the port */
    colon = auth_end;
    {
        int in_br = 0;
        for (i = hp; i < auth_end; i++) {
            if (u[i] == '[') in_br = 1;
            else if (u[i] == ']') in_br = 0;
            else if (u[i] == ':' && !in_br) { colon = i; break; }
        }
    }
    if (put_host(&w, u + hp, colon - hp) != 0) goto fail;
    if (colon < auth_end) {
        port = 0;
        for (i = colon + 1; i < auth_end; i++) {
            if (!is_digit((unsigned char)u[i])) goto fail;
            port = port * 10 + (u[i] - '0');
            if (port > 65535) goto fail;
        }
        if (colon + 1 == auth_end) port = -1;
    }
    if (port >= 0 && port != (https ? 443 : 80)) {
        char tmp[8];
        snprintf(tmp, sizeof tmp, ":%ld", port);
        put(&w, tmp, strlen(tmp));
    }

    /* path, with dot segments resolved */
    path_start = w.n;
    i = auth_end;
    if (i < n && (u[i] == '/' || u[i] == '\\')) {
        while (1) {
            size_t seg = ++i, seg_end;
            int last;
            while (i < n && !strchr("/\\?#", u[i])) i++;
            seg_end = i;
            last = !(i < n && (u[i] == '/' || u[i] == '\\'));
            if (is_double_dot(u + seg, seg_end - seg)) {
                while (w.n > path_start && w.p[w.n - 1] != '/') w.n--;
                if (w.n > path_start) w.n--;
                if (last) putch(&w, '/');
            } else if (is_single_dot(u + seg, seg_end - seg)) {
                if (last) putch(&w, '/');
            } else {
                putch(&w, '/');
                put_encoded(&w, u + seg, seg_end - seg, SET_PATH);
            }
            if (last) break;
        }
    }
    if (w.n == path_start) putch(&w, '/');

    if (i < n && u[i] == '?') {
        size_t q = i;
        while (i < n && u[i] != '#') i++;
        putch(&w, '?');
        put_encoded(&w, u + q + 1, i - q - 1, SET_SPECIAL_QUERY);
    }
    if (i < n && u[i] == '#') {
        putch(&w, '#');
        put_encoded(&w, u + i + 1, n - i - 1, SET_FRAGMENT);
    }
    free(u);
    return finish(&w);
fail:
    free(u);
    return -1;
}

/* ---- Node's legacy querystring parse + stringify ---------------------- */

typedef struct {
    char *key, *val;
    size_t key_len, val_len;
    size_t group; /* index of the first pair with the same key */
    int index_key; /* key is a JS array index: it sorts first */
    uint32_t index;
} qs_pair;

/* Length of the well-formed UTF-8 sequence at s, or 0. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    size_t need, j;
    uint32_t cp;
    if (s[0] < 0x80) return 1;
    if ((s[0] >> 5) == 6) { need = 1; cp = s[0] & 0x1F; }
    else if ((s[0] >> 4) == 14) { need = 2; cp = s[0] & 0x0F; }
    else if ((s[0] >> 3) == 30) { need = 3; cp = s[0] & 0x07; }
    else return 0;
    if (need >= n) return 0;
    for (j = 1; j <= need; j++) {
        if ((s[j] & 0xC0) != 0x80) return 0;
        cp = cp << 6 | (s[j] & 0x3F);
    }
    if ((need == 1 && cp < 0x80) || (need == 2 && cp < 0x800) || (need == 3 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return need + 1;
}

/* querystring.unescape: '+' is a space, valid %XX decoded, an invalid '%'
 * kept; then the bytes are read as UTF-8 with U+FFFD for bad sequences. */
static char *qs_unescape(const char *s, size_t n, size_t *out_len)
{
    unsigned char *t = malloc(n + 1), *o;
    size_t i, m = 0, k = 0;
    if (!t) return NULL;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '+') c = ' ';
        else if (c == '%' && i + 2 < n && is_hex((unsigned char)s[i + 1]) && is_hex((unsigned char)s[i + 2])) {
            c = (unsigned char)hex2(s + i + 1);
            i += 2;
        }
        t[m++] = c;
    }
    o = malloc(3 * m + 1);
    if (!o) { free(t); return NULL; }
    for (i = 0; i < m;) {
        size_t len = utf8_seq(t + i, m - i);
        if (len) {
            memcpy(o + k, t + i, len);
            k += len;
            i += len;
        } else {
            o[k++] = 0xEF; o[k++] = 0xBF; o[k++] = 0xBD; /* U+FFFD */
            i++;
        }
    }
    free(t);
    *out_len = k;
    return (char *)o;
}

/* querystring.escape: unreserved A-Z a-z 0-9 - _ . ! ~ * ' ( ) stay. */
static void qs_escape(wbuf *w, const char *s, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (is_alpha(c) || is_digit(c) || (c && strchr("-_.!~*'()", c))) putch(w, (char)c);
        else putpct(w, c);
    }
}

static void qs_put_group(wbuf *w, const qs_pair *pairs, size_t np, size_t g, int *first)
{
    size_t i;
    for (i = g; i < np; i++) {
        if (pairs[i].group != g) continue;
        if (!*first) putch(w, '&');
        *first = 0;
        qs_escape(w, pairs[i].key, pairs[i].key_len);
        putch(w, '=');
        qs_escape(w, pairs[i].val, pairs[i].val_len);
    }
}

static int array_index(const char *k, size_t n, uint32_t *out)
{
    uint64_t v = 0;
    size_t i;
    if (n == 0 || n > 10 || (n > 1 && k[0] == '0')) return 0;
    for (i = 0; i < n; i++) {
        if (!is_digit((unsigned char)k[i])) return 0;
        v = v * 10 + (uint64_t)(k[i] - '0');
    }
    if (v >= 0xFFFFFFFFULL) return 0;
    *out = (uint32_t)v;
    return 1;
}

long tl_url_legacy_query(const char *u, size_t n, char *dst, size_t cap)
{
    wbuf w = { dst, 0, cap, 0 };
    const char *q = memchr(u, '?', n);
    qs_pair *pairs;
    size_t np = 0, i, j, qn, pos;
    long rc = -1;
    if (!q || (size_t)(q - u) == n - 1) {
        put(&w, u, n);
        return finish(&w);
    }
    put(&w, u, (size_t)(q - u) + 1);
    q++;
    qn = n - (size_t)(q - u);
    pairs = calloc(qn / 2 + 2, sizeof *pairs);
    if (!pairs) return -1;
    for (pos = 0; pos <= qn;) {
        const char *seg = q + pos, *amp = memchr(seg, '&', qn - pos), *eq;
        size_t sl = amp ? (size_t)(amp - seg) : qn - pos, kl;
        if (sl > 0) {
            qs_pair *p = &pairs[np];
            eq = memchr(seg, '=', sl);
            kl = eq ? (size_t)(eq - seg) : sl;
            p->key = qs_unescape(seg, kl, &p->key_len);
            p->val = eq ? qs_unescape(eq + 1, sl - kl - 1, &p->val_len) : qs_unescape("", 0, &p->val_len);
            np++;
            if (!p->key || !p->val) goto done;
            p->group = np - 1;
            for (j = 0; j + 1 < np; j++)
                if (pairs[j].key_len == p->key_len && memcmp(pairs[j].key, p->key, p->key_len) == 0) {
                    p->group = pairs[j].group;
                    break;
                }
            p->index_key = array_index(p->key, p->key_len, &p->index);
        }
        if (!amp) break;
        pos += sl + 1;
    }
    /* JS property order: array-index keys ascending, then the other keys
     * in insertion order; each key's values in their order of appearance. */
    {
        int first = 1;
        size_t g, done_idx = 0;
        for (;;) { /* array-index keys, smallest first */
            size_t best = (size_t)-1;
            for (g = 0; g < np; g++)
                if (pairs[g].group == g && pairs[g].index_key &&
                    (done_idx == 0 || pairs[g].index >= done_idx) &&
                    (best == (size_t)-1 || pairs[g].index < pairs[best].index))
                    best = g;
            if (best == (size_t)-1) break;
            qs_put_group(&w, pairs, np, best, &first);
            done_idx = (size_t)pairs[best].index + 1;
        }
        for (g = 0; g < np; g++)
            if (pairs[g].group == g && !pairs[g].index_key) qs_put_group(&w, pairs, np, g, &first);
    }
    rc = finish(&w);
done:
    for (i = 0; i < np; i++) {
        free(pairs[i].key);
        free(pairs[i].val);
    }
    free(pairs);
    return rc;
}

