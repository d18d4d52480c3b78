/*
 * telua_core.c - luaopen_telua_core: the Lua binding of src/core.
 *
 * One source for Lua 5.4 and LuaJIT 2.1 (compat.h). Turns src/core's
 * status codes into Lua values: expected failures return nil, message,
 * code; wrong argument types raise with the caller blamed (luaL_arg*).
 * Temporary memory is userdata (GC-owned), so a raise never leaks.
 */
#include "compat.h"
#include "telua_core.h"
#include "redis.h"

#include "../core/e164.h"
#include "../core/e164_meta.h"
#include "../core/form.h"
#include "../core/gcra.h"
#include "../core/segments.h"
#include "../core/segments_tables.h"
#include "../core/signature.h"
#include "../core/tz.h"
#include "../core/xml.h"

#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- params: list of {key, value} pairs, or map key -> value | {values} */

/* Pushes value at `idx` as a string into anchor[*slot] so its bytes stay
 * alive while the anchor table is on the stack; returns the string. */
static const char *anchor_string(lua_State *L, int anchor, int idx, size_t *len,
                                 int *slot, const char *what)
{
    const char *s;
    int t = lua_type(L, idx);
    if (t != LUA_TSTRING && t != LUA_TNUMBER)
        luaL_error(L, "params: %s must be a string or a number, got %s", what,
                   lua_typename(L, t));
    lua_pushvalue(L, idx);
    s = lua_tolstring(L, -1, len); /* converts the copy, never the table's value */
    lua_rawseti(L, anchor, ++*slot);
    return s;
}

/* Reads the params table at `idx` into a GC-owned tl_param array, pushing
 * two values (the anchor table and the array userdata). idx may be nil. */
static tl_param *check_params(lua_State *L, int idx, size_t *count)
{
    tl_param *p;
    size_t n = 0, cap = 0;
    int anchor, slot = 0;
    idx = tl_absindex(L, idx);
    if (lua_isnoneornil(L, idx)) {
        lua_newtable(L);
        lua_newuserdata(L, 1);
        *count = 0;
        return lua_touserdata(L, -1);
    }
    luaL_checktype(L, idx, LUA_TTABLE);
    lua_newtable(L);
    anchor = lua_gettop(L);
    /* upper bound of entries: list length, or keys plus list values */
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        cap += lua_type(L, -1) == LUA_TTABLE ? tl_rawlen(L, -1) + 1 : 1;
        lua_pop(L, 1);
    }
    p = lua_newuserdata(L, (cap ? cap : 1) * sizeof *p);
    if (tl_rawlen(L, idx) > 0) { /* list of pairs, order kept */
        size_t i, len = tl_rawlen(L, idx);
        for (i = 1; i <= len; i++) {
            lua_rawgeti(L, idx, (int)i);
            if (!lua_istable(L, -1))
                luaL_error(L, "params: entry %d must be a {key, value} pair", (int)i);
            lua_rawgeti(L, -1, 1);
            lua_rawgeti(L, -2, 2);
            p[n].key = anchor_string(L, anchor, -2, &p[n].key_len, &slot, "a key");
            p[n].value = anchor_string(L, anchor, -1, &p[n].value_len, &slot, "a value");
            n++;
            lua_pop(L, 3);
        }
    } else { /* map */
        lua_pushnil(L);
        while (lua_next(L, idx)) {
            if (lua_type(L, -2) != LUA_TSTRING)
                luaL_error(L, "params: keys must be strings");
            if (lua_istable(L, -1)) {
                size_t i, len = tl_rawlen(L, -1);
                for (i = 1; i <= len; i++) {
                    lua_rawgeti(L, -1, (int)i);
                    p[n].key = anchor_string(L, anchor, -3, &p[n].key_len, &slot, "a key");
                    p[n].value = anchor_string(L, anchor, -1, &p[n].value_len, &slot, "a value");
                    n++;
                    lua_pop(L, 1);
                }
            } else {
                p[n].key = anchor_string(L, anchor, -2, &p[n].key_len, &slot, "a key");
                p[n].value = anchor_string(L, anchor, -1, &p[n].value_len, &slot, "a value");
                n++;
            }
            lua_pop(L, 1);
        }
    }
    *count = n;
    return p;
}

/* core.signature(token, url, params) -> base64 string */
static int l_signature(lua_State *L)
{
    size_t tlen, ulen, n;
    const char *token = luaL_checklstring(L, 1, &tlen);
    const char *url = luaL_checklstring(L, 2, &ulen);
    tl_param *p = check_params(L, 3, &n);
    char out[TL_SIG_LEN + 1];
    int rc = tl_sig_compute(token, tlen, url, ulen, p, n, out);
    if (rc == TL_SIG_EKEY) return luaL_argerror(L, 1, "auth token is empty");
    if (rc != 0) return luaL_error(L, "signature: %s", tl_sig_reason(rc));
    lua_pushlstring(L, out, TL_SIG_LEN);
    return 1;
}

static const char *sig_code(int rc)
{
    switch (rc) {
    case TL_SIG_MISSING: return "missing";
    case TL_SIG_MISMATCH: return "mismatch";
    case TL_SIG_NO_BODY_HASH: return "no_body_hash";
    case TL_SIG_BODY_HASH_MISMATCH: return "body_hash_mismatch";
    case TL_SIG_EKEY: return "no_auth_token";
    default: return "error";
    }
}

/* The HMAC key of the last token validate saw, per Lua state (one state is
 * one thread): OpenSSL 3 fetches SHA-1 and allocates two contexts to make a
 * key, which costs more than the HMAC of a webhook, and a webhook handler
 * validates with the same token every time. */
#define SIGKEY_MT "telua.SigKey"
typedef struct {
    tl_sig_key *k;
    size_t len;
    unsigned char token[128];
} sigkey_cache;

static int sigkey_gc(lua_State *L)
{
    sigkey_cache *c = lua_touserdata(L, 1);
    if (c->k) tl_sig_key_free(c->k);
    c->k = NULL;
    OPENSSL_cleanse(c->token, sizeof c->token);
    return 0;
}

/* The key for token: the cached one, or a new one cached in its place
 * (*owned = 1 and not cached for a token over 128 bytes). NULL: out of memory. */
static tl_sig_key *key_for(lua_State *L, const char *token, size_t tlen, int *owned)
{
    sigkey_cache *c;
    *owned = 0;
    if (tlen > sizeof c->token) {
        *owned = 1;
        return tl_sig_key_new(token, tlen);
    }
    lua_getfield(L, LUA_REGISTRYINDEX, SIGKEY_MT ".cache");
    c = lua_touserdata(L, -1);
    lua_pop(L, 1);
    if (!c) {
        c = lua_newuserdata(L, sizeof *c);
        memset(c, 0, sizeof *c);
        luaL_setmetatable(L, SIGKEY_MT);
        lua_setfield(L, LUA_REGISTRYINDEX, SIGKEY_MT ".cache");
    }
    if (c->k && c->len == tlen && CRYPTO_memcmp(c->token, token, tlen) == 0) return c->k;
    if (c->k) tl_sig_key_free(c->k);
    c->k = tl_sig_key_new(token, tlen);
    c->len = c->k ? tlen : 0;
    if (c->k) memcpy(c->token, token, tlen);
    return c->k;
}

/* core.validate(token, url, params, signature [, body]) -> true | nil, reason, code */
static int l_validate(lua_State *L)
{
    size_t tlen, ulen, slen = 0, blen = 0, n;
    const char *token = luaL_checklstring(L, 1, &tlen);
    const char *url = luaL_checklstring(L, 2, &ulen);
    const char *sig = luaL_optlstring(L, 4, "", &slen);
    const char *body = luaL_optlstring(L, 5, NULL, &blen);
    tl_param *p = body ? NULL : check_params(L, 3, &n);
    int rc;
    if (body) n = 0;
    if (tlen == 0) rc = TL_SIG_EKEY;
    else if (slen == 0) rc = TL_SIG_MISSING;
    else {
        int owned;
        tl_sig_key *k = key_for(L, token, tlen, &owned);
        if (!k) return luaL_error(L, "validate: out of memory");
        rc = tl_sig_validate_key(k, url, ulen, p, n, sig, slen, body, blen);
        if (owned) tl_sig_key_free(k);
    }
    if (rc == TL_SIG_VALID) {
        lua_pushboolean(L, 1);
        return 1;
    }
    if (rc == TL_SIG_ENOMEM) return luaL_error(L, "validate: out of memory");
    lua_pushnil(L);
    lua_pushstring(L, tl_sig_reason(rc));
    lua_pushstring(L, sig_code(rc));
    return 3;
}

/* ---- form ------------------------------------------------------------ */

typedef struct {
    lua_State *L;
    int list;
    int n;
} decode_ctx;

static int emit_pair(void *ud, const char *k, size_t kl, const char *v, size_t vl)
{
    decode_ctx *c = ud;
    lua_createtable(c->L, 2, 0);
    lua_pushlstring(c->L, k, kl);
    lua_rawseti(c->L, -2, 1);
    lua_pushlstring(c->L, v, vl);
    lua_rawseti(c->L, -2, 2);
    lua_rawseti(c->L, c->list, ++c->n);
    return 0;
}

/* core.form_decode(s) -> { {key, value}, ... } | nil, message, "bad_escape" */
static int l_form_decode(lua_State *L)
{
    size_t len, pos = 0;
    const char *s = luaL_checklstring(L, 1, &len);
    char *scratch = lua_newuserdata(L, len ? len : 1);
    decode_ctx c;
    lua_newtable(L);
    c.L = L;
    c.list = lua_gettop(L);
    c.n = 0;
    if (tl_form_decode(s, len, scratch, emit_pair, &c, &pos) == TL_FORM_EBADESCAPE) {
        lua_pushnil(L);
        lua_pushfstring(L, "malformed percent escape at byte %d", (int)pos + 1);
        lua_pushliteral(L, "bad_escape");
        return 3;
    }
    return 1;
}

static void encode_into(luaL_Buffer *b, lua_State *L, const char *s, size_t len)
{
    char chunk[3 * 256];
    size_t off = 0;
    (void)L;
    while (off < len) {
        size_t take = len - off > 256 ? 256 : len - off;
        size_t w = tl_form_encode(s + off, take, chunk);
        luaL_addlstring(b, chunk, w);
        off += take;
    }
}

/* core.form_encode(params) -> "k=v&k=v"; pairs keep their order, a map is
 * written in sorted key order so the output is deterministic. */
static int l_form_encode(lua_State *L)
{
    size_t n, i;
    tl_param *p = check_params(L, 1, &n);
    luaL_Buffer b;
    if (tl_rawlen(L, 1) == 0) { /* map: sort by key, keep list order per key */
        size_t a, c;
        for (a = 1; a < n; a++) { /* insertion sort is stable */
            tl_param t = p[a];
            for (c = a; c > 0; c--) {
                size_t m = p[c - 1].key_len < t.key_len ? p[c - 1].key_len : t.key_len;
                int r = memcmp(p[c - 1].key, t.key, m);
                if (r < 0 || (r == 0 && p[c - 1].key_len <= t.key_len)) break;
                p[c] = p[c - 1];
            }
            p[c] = t;
        }
    }
    luaL_buffinit(L, &b);
    for (i = 0; i < n; i++) {
        if (i > 0) luaL_addchar(&b, '&');
        encode_into(&b, L, p[i].key, p[i].key_len);
        luaL_addchar(&b, '=');
        encode_into(&b, L, p[i].value, p[i].value_len);
    }
    luaL_pushresult(&b);
    return 1;
}

/* ---- xml, hashing ---------------------------------------------------- */

/* core.xml_check(s) -> true | nil, byte_offset (1-based) */
static int l_xml_check(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    size_t bad = tl_xml_check(s, len);
    if (bad == (size_t)-1) {
        lua_pushboolean(L, 1);
        return 1;
    }
    lua_pushnil(L);
    lua_pushinteger(L, (lua_Integer)bad + 1);
    return 2;
}

/* core.xml_escape(s, attr) -> escaped string. s must pass xml_check. */
static int l_xml_escape(lua_State *L)
{
    size_t len, w;
    const char *s = luaL_checklstring(L, 1, &len);
    int attr = lua_toboolean(L, 2);
    char *dst;
    if (strpbrk(s, "&<>\"\r\n\t") == NULL && strlen(s) == len) {
        lua_settop(L, 1); /* nothing to escape: return the same string */
        return 1;
    }
    dst = lua_newuserdata(L, 6 * len + 1);
    w = tl_xml_escape(s, len, attr, dst);
    lua_pushlstring(L, dst, w);
    return 1;
}

/* ---- core.xml_render(root): a TwiML element tree as one XML document ----
 *
 * The tree telua.twiml builds: an element is a table { tag = string, attrs
 * = nil | { name = string }, [1..n] = string | element } (its children in
 * its own array part). Written as twilio-node's xmlbuilder writes it: the
 * declaration, attributes sorted by name (byte order), an element without
 * children as <tag/>, text and attribute values escaped by tl_xml_escape.
 * Only raw reads: no metamethod runs while it renders. The bytes go into a
 * buffer on the C stack, and past its size into one a userdata owns, so a
 * raise (a malformed tree) leaks nothing. */
typedef struct {
    char *p;
    size_t len, cap;
    lua_State *L;
    int heap;  /* the stack slot of the userdata that owns p once it left the C stack */
} xbuf;

/* Room for n more bytes in b. */
static void xreserve(xbuf *b, size_t n)
{
    size_t cap;
    char *np;
    if (b->len + n <= b->cap) return;
    cap = b->cap * 2;
    while (cap < b->len + n) cap *= 2;
    np = tl_newuserdata(b->L, cap);
    memcpy(np, b->p, b->len);
    lua_replace(b->L, b->heap); /* the old block (if any) is garbage now */
    b->p = np;
    b->cap = cap;
}

static void xput(xbuf *b, const char *s, size_t n)
{
    xreserve(b, n);
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void xput_escaped(xbuf *b, const char *s, size_t n, int attr)
{
    xreserve(b, 6 * n); /* an escape is at most 6 bytes */
    b->len += tl_xml_escape(s, n, attr, b->p + b->len);
}

typedef struct {
    const char *k;
    size_t len;
} xkey;

static int xkey_cmp(const void *a, const void *b)
{
    const xkey *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->k, y->k, n);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

/* The attributes of <tag> (the table at attrs), sorted by name. */
static void render_attrs(lua_State *L, xbuf *b, int attrs, const char *tag)
{
    xkey skeys[16], *keys = skeys;
    size_t nkeys = 0, cap = 16, i;
    lua_pushnil(L);
    while (lua_next(L, attrs)) { /* names, to sort; the strings stay held by attrs */
        if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING) {
            if (keys != skeys) free(keys);
            luaL_error(L, "twiml: attributes of <%s> must map names to strings", tag);
        }
        if (nkeys == cap) {
            xkey *nk = malloc(2 * cap * sizeof *nk);
            if (!nk) {
                if (keys != skeys) free(keys);
                luaL_error(L, "twiml: out of memory");
            }
            memcpy(nk, keys, nkeys * sizeof *nk);
            if (keys != skeys) free(keys);
            keys = nk;
            cap *= 2;
        }
        keys[nkeys].k = lua_tolstring(L, -2, &keys[nkeys].len);
        nkeys++;
        lua_pop(L, 1);
    }
    if (nkeys > 1) qsort(keys, nkeys, sizeof *keys, xkey_cmp);
    for (i = 0; i < nkeys; i++) { /* (a raise in here cannot happen: the values are strings, checked above) */
        size_t vlen;
        const char *v;
        lua_pushlstring(L, keys[i].k, keys[i].len);
        lua_rawget(L, attrs);
        v = lua_tolstring(L, -1, &vlen);
        xput(b, " ", 1);
        xput(b, keys[i].k, keys[i].len);
        xput(b, "=\"", 2);
        xput_escaped(b, v, vlen, 1);
        xput(b, "\"", 1);
        lua_pop(L, 1);
    }
    if (keys != skeys) free(keys);
}

/* Renders the element at absolute index el; the stack is back as it was after. */
static void render_el(lua_State *L, xbuf *b, int el, int depth)
{
    size_t tlen, i, n;
    const char *tag;
    int top = lua_gettop(L), t;
    if (depth > 200) luaL_error(L, "twiml: elements nested deeper than 200");
    if (!lua_checkstack(L, 8)) luaL_error(L, "twiml: out of stack space");
    lua_pushvalue(L, lua_upvalueindex(1)); /* "tag" */
    if (tl_rawget(L, el) != LUA_TSTRING) luaL_error(L, "twiml: an element without a tag");
    tag = lua_tolstring(L, -1, &tlen); /* held by the element */
    xput(b, "<", 1);
    xput(b, tag, tlen);
    lua_pushvalue(L, lua_upvalueindex(2)); /* "attrs" */
    t = tl_rawget(L, el);
    if (t == LUA_TTABLE) render_attrs(L, b, lua_gettop(L), tag);
    else if (t != LUA_TNIL) luaL_error(L, "twiml: a malformed element <%s>", tag);
    n = (size_t)tl_rawlen(L, el);
    if (n == 0) {
        xput(b, "/>", 2);
    } else {
        xput(b, ">", 1);
        for (i = 1; i <= n; i++) {
            int ct = tl_rawgeti(L, el, (lua_Integer)i);
            if (ct == LUA_TSTRING) {
                size_t clen;
                const char *c = lua_tolstring(L, -1, &clen);
                xput_escaped(b, c, clen, 0);
            } else if (ct == LUA_TTABLE) {
                render_el(L, b, lua_gettop(L), depth + 1);
            } else {
                luaL_error(L, "twiml: a child of <%s> is neither text nor an element", tag);
            }
            lua_pop(L, 1);
        }
        xput(b, "</", 2);
        xput(b, tag, tlen);
        xput(b, ">", 1);
    }
    lua_settop(L, top);
}

/* core.xml_render(root) -> the document, with twilio-node's declaration
 * (also the elements' __tostring). Upvalues: the strings "tag", "attrs". */
static int l_xml_render(lua_State *L)
{
    static const char decl[] = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>";
    char stack[2048];
    xbuf b;
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 2); /* 2: the heap block's slot */
    b.p = stack;
    b.len = 0;
    b.cap = sizeof stack;
    b.L = L;
    b.heap = 2;
    xput(&b, decl, sizeof decl - 1);
    render_el(L, &b, 1, 0);
    lua_pushlstring(L, b.p, b.len);
    return 1;
}

/* core.sha256_hex(s) -> 64 lower-case hex digits */
static int l_sha256_hex(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    char out[65];
    tl_sha256_hex(s, len, out);
    lua_pushlstring(L, out, 64);
    return 1;
}


/* core.sleep(seconds): blocks the calling thread (plain Lua only; the host's
 * workers never call it). Fractions are honoured to the nanosecond. */
static int l_sleep(lua_State *L)
{
    double s = luaL_checknumber(L, 1);
    struct timespec ts;
    if (!(s > 0)) return 0;
    if (s > 86400.0) return luaL_error(L, "sleep: %f seconds is over a day", s);
    ts.tv_sec = (time_t)s;
    ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
    return 0;
}

/* core.monotonic() -> seconds (float) on CLOCK_MONOTONIC, for timeouts
 * and backoff; core.time() -> seconds (float) since the epoch, for records. */
static int l_monotonic(lua_State *L)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    lua_pushnumber(L, (double)ts.tv_sec + (double)ts.tv_nsec / 1e9);
    return 1;
}

static int l_time(lua_State *L)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    lua_pushnumber(L, (double)ts.tv_sec + (double)ts.tv_nsec / 1e9);
    return 1;
}

/* core.random_hex(nbytes) -> 2*nbytes lower-case hex digits from OpenSSL's
 * CSPRNG (SIDs, verification codes, jitter seeds). nbytes 1..256. */
static int l_random_hex(lua_State *L)
{
    lua_Integer n = luaL_checkinteger(L, 1);
    unsigned char raw[256];
    char out[513];
    static const char hex[] = "0123456789abcdef";
    lua_Integer i;
    if (n < 1 || n > 256) return luaL_error(L, "random_hex: nbytes must be 1..256");
    if (RAND_bytes(raw, (int)n) != 1) return luaL_error(L, "random_hex: the CSPRNG failed");
    for (i = 0; i < n; i++) {
        out[2 * i] = hex[raw[i] >> 4];
        out[2 * i + 1] = hex[raw[i] & 15];
    }
    lua_pushlstring(L, out, (size_t)(2 * n));
    return 1;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* core.list_dir(dir [, suffix]) -> sorted list of the regular files in dir
 * whose names end with suffix (default: all) | nil, message. Hidden files
 * (a leading '.') are left out: editors keep their swap files there. */
static int l_list_dir(lua_State *L)
{
    const char *dir = luaL_checkstring(L, 1);
    size_t sl = 0;
    const char *suffix = luaL_optlstring(L, 2, "", &sl);
    DIR *d = opendir(dir);
    struct dirent *e;
    char **names = NULL, path[4096];
    int n = 0, cap = 0, i;
    if (!d) {
        lua_pushnil(L);
        lua_pushfstring(L, "%s: %s", dir, strerror(errno));
        return 2;
    }
    while ((e = readdir(d)) != NULL) {
        struct stat st;
        size_t nl = strlen(e->d_name);
        if (e->d_name[0] == '.' || nl < sl || strcmp(e->d_name + nl - sl, suffix) != 0) continue;
        if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= sizeof path) continue;
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) continue;
        if (n == cap) {
            char **nn = realloc(names, (size_t)(cap = cap ? 2 * cap : 16) * sizeof *names);
            if (!nn) break;
            names = nn;
        }
        if ((names[n] = strdup(e->d_name)) != NULL) n++;
    }
    closedir(d);
    if (n) qsort(names, (size_t)n, sizeof *names, cmp_names);
    lua_createtable(L, n, 0);
    for (i = 0; i < n; i++) {
        lua_pushstring(L, names[i]);
        lua_rawseti(L, -2, i + 1);
        free(names[i]);
    }
    free(names);
    return 1;
}

/* core.base64_encode(s) -> standard base64 (RFC 4648 section 4, padded) */
static int l_base64_encode(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    size_t olen = 4 * ((len + 2) / 3);
    char *out;
    if (len > (size_t)0x3fffffff) return luaL_error(L, "base64_encode: input too large");
    out = malloc(olen + 1);
    if (!out) return luaL_error(L, "base64_encode: out of memory");
    EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)s, (int)len);
    lua_pushlstring(L, out, olen);
    free(out);
    return 1;
}

/* core.base64_decode(s) -> bytes | nil, message (standard alphabet, padded) */
static int l_base64_decode(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    char *out;
    int n;
    size_t pad = 0;
    if (len % 4 != 0 || len > (size_t)0x3fffffff) {
        lua_pushnil(L);
        lua_pushliteral(L, "base64: length is not a multiple of 4");
        return 2;
    }
    if (len == 0) {
        lua_pushliteral(L, "");
        return 1;
    }
    out = malloc(len / 4 * 3 + 1);
    if (!out) return luaL_error(L, "base64_decode: out of memory");
    n = EVP_DecodeBlock((unsigned char *)out, (const unsigned char *)s, (int)len);
    if (n < 0) {
        free(out);
        lua_pushnil(L);
        lua_pushliteral(L, "base64: invalid character");
        return 2;
    }
    if (s[len - 1] == '=') pad++;
    if (s[len - 2] == '=') pad++;
    lua_pushlstring(L, out, (size_t)n - pad);
    free(out);
    return 1;
}

/*
 * core.e164_parse(input, default_region) ->
 *   { e164, valid, possible, type, region, country_code, national_number,
 *     extension } | nil, message, code
 * region is nil when no territory of the calling code fits; extension is
 * nil when none was written. default_region may be nil.
 */
/* Arguments of e164_parse / e164_normalize: the number must be a string
 * (a Lua number would lose leading zeros and '+'), the region a string or
 * nil. Raises with the same words as telua.e164's documentation. */
static const char *e164_args(lua_State *L, size_t *len, const char **region)
{
    int t = lua_type(L, 2);
    if (lua_type(L, 1) != LUA_TSTRING)
        luaL_error(L, "e164: number must be a string, got %s", luaL_typename(L, 1));
    if (t != LUA_TNONE && t != LUA_TNIL && t != LUA_TSTRING)
        luaL_error(L, "e164: default region must be a string (ISO 3166 alpha-2, e.g. \"US\") or nil, got %s",
                   luaL_typename(L, 2));
    *region = (t == LUA_TSTRING) ? lua_tostring(L, 2) : NULL;
    return lua_tolstring(L, 1, len);
}

/* nil, message, code for a parse error (raises when out of memory) */
static int push_e164_error(lua_State *L, int rc)
{
    if (rc == TL_E164_ENOMEM) return luaL_error(L, "e164: out of memory");
    lua_pushnil(L);
    lua_pushstring(L, tl_e164_error_message(rc));
    lua_pushstring(L, tl_e164_error_name(rc));
    return 3;
}

static int l_e164_parse(lua_State *L)
{
    size_t len;
    const char *region;
    const char *s = e164_args(L, &len, &region);
    tl_e164_number n;
    int rc = tl_e164_parse(s, len, region, &n);
    if (rc != TL_E164_OK) return push_e164_error(L, rc);
    lua_createtable(L, 0, 8);
    lua_pushstring(L, n.e164);
    lua_setfield(L, -2, "e164");
    lua_pushboolean(L, n.valid);
    lua_setfield(L, -2, "valid");
    lua_pushboolean(L, n.possible);
    lua_setfield(L, -2, "possible");
    lua_pushstring(L, tl_e164_type_name(n.type));
    lua_setfield(L, -2, "type");
    if (n.region[0]) {
        lua_pushstring(L, n.region);
        lua_setfield(L, -2, "region");
    }
    lua_pushinteger(L, n.country_code);
    lua_setfield(L, -2, "country_code");
    lua_pushstring(L, n.national);
    lua_setfield(L, -2, "national_number");
    if (n.extension[0]) {
        lua_pushstring(L, n.extension);
        lua_setfield(L, -2, "extension");
    }
    return 1;
}

/* core.e164_normalize(input, default_region) -> "+..." | nil, message, code
 * (the E.164 string only for a valid number: code NOT_VALID otherwise) */
static int l_e164_normalize(lua_State *L)
{
    static const char tail[] = " is not a valid number";
    static const char fits[] = " (its length fits, but no number range matches)";
    size_t len, k;
    const char *region;
    const char *s = e164_args(L, &len, &region);
    char msg[sizeof ((tl_e164_number *)0)->e164 + sizeof tail + sizeof fits];
    tl_e164_number n;
    int rc = tl_e164_parse(s, len, region, &n);
    if (rc != TL_E164_OK) return push_e164_error(L, rc);
    if (n.valid) {
        lua_pushstring(L, n.e164);
        return 1;
    }
    k = strlen(n.e164); /* "+100442079460958 is not a valid number" */
    memcpy(msg, n.e164, k);
    memcpy(msg + k, tail, sizeof tail - 1);
    k += sizeof tail - 1;
    if (n.possible) {
        memcpy(msg + k, fits, sizeof fits - 1);
        k += sizeof fits - 1;
    }
    lua_pushnil(L);
    lua_pushlstring(L, msg, k);
    lua_pushliteral(L, "NOT_VALID");
    return 3;
}

/* core.e164_region_known(region) -> boolean */
static int l_e164_region_known(lua_State *L)
{
    lua_pushboolean(L, tl_e164_region_known(luaL_checkstring(L, 1)));
    return 1;
}

/*
 * core.tz_of_number(e164) -> { zone names } (libphonenumber's time-zone
 * mapping: the zones of the number's longest listed prefix; empty when
 * none). e164 is "+" and digits (or digits alone); anything else, or more
 * than 15 digits, gives an empty list.
 */
static int l_tz_of_number(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    const char *zones[64];
    if (len > 0 && s[0] == '+') s++, len--;
    size_t n = len >= 1 && len <= 15 ? tl_tz_of_number(s, len, zones, 64) : 0;
    if (n > 64) n = 64;
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        lua_pushstring(L, zones[i]);
        lua_rawseti(L, -2, (int)i + 1);
    }
    return 1;
}

/*
 * core.tz_at(zone, t) -> utoff (seconds east of UTC), isdst, abbreviation
 *   | nil, message, code ("BAD_ZONE_NAME", "NO_ZONE", "BAD_ZONE_FILE")
 * t: seconds since the epoch (a number; fractions are dropped).
 */
static int l_tz_at(lua_State *L)
{
    const char *zone = luaL_checkstring(L, 1);
    lua_Number t = luaL_checknumber(L, 2);
    luaL_argcheck(L, t > -9.2e18 && t < 9.2e18, 2, "time out of range");
    tl_tz_local loc;
    int rc = tl_tz_at(zone, (int64_t)t - (t < (int64_t)t), &loc);
    if (rc != TL_TZ_OK) {
        lua_pushnil(L);
        if (rc == TL_TZ_BAD_NAME) {
            lua_pushliteral(L, "not a time zone name");
            lua_pushliteral(L, "BAD_ZONE_NAME");
        } else if (rc == TL_TZ_NO_ZONE) {
            lua_pushfstring(L, "no time zone %s in the system's tzdata", zone);
            lua_pushliteral(L, "NO_ZONE");
        } else {
            lua_pushfstring(L, "the tzdata file of %s cannot be read", zone);
            lua_pushliteral(L, "BAD_ZONE_FILE");
        }
        return 3;
    }
    lua_pushinteger(L, loc.utoff);
    lua_pushboolean(L, loc.isdst);
    lua_pushstring(L, loc.abbr);
    return 3;
}

/* non-GSM graphemes into the list at the top of the stack */
typedef struct {
    lua_State *L;
    const char *text;
    int n;
} nongsm_list;

static void push_nongsm(void *ud, size_t off, size_t len)
{
    nongsm_list *l = ud;
    lua_pushlstring(l->L, l->text + off, len);
    lua_rawseti(l->L, -2, ++l->n);
}

/*
 * core.segments_count(text, encoding, smart, list) ->
 *   encoding ("GSM-7" | "UCS-2"), segments, characters, graphemes[, non_gsm list][, smart text]
 *   | nil, message, code
 * encoding: "auto" (or nil), "GSM-7", "UCS-2"; smart: apply Smart Encoding
 * first (the smart text is then returned last); list: also return the
 * non-GSM graphemes in order. Codes: INVALID_UTF8, NOT_GSM.
 */
static int l_segments_count(lua_State *L)
{
    size_t len, where = 0;
    const char *text = luaL_checklstring(L, 1, &len);
    const char *enc = luaL_optstring(L, 2, "auto");
    int smart = lua_toboolean(L, 3), list = lua_toboolean(L, 4), mode, rc, nret;
    tl_seg_result r;
    nongsm_list nl;
    if (strcmp(enc, "auto") == 0) mode = TL_SEG_AUTO;
    else if (strcmp(enc, "GSM-7") == 0) mode = TL_SEG_GSM7;
    else if (strcmp(enc, "UCS-2") == 0) mode = TL_SEG_UCS2;
    else return luaL_argerror(L, 2, "encoding must be \"auto\", \"GSM-7\" or \"UCS-2\"");
    if (smart) {
        size_t n = tl_seg_smart_len(text, len);
        char *buf;
        if (n == (size_t)-1) {
            tl_seg_count(text, len, mode, &r, NULL, NULL, &where); /* finds the offset */
            lua_pushnil(L);
            lua_pushfstring(L, "text is not valid UTF-8 (byte %d)", (int)where + 1);
            lua_pushliteral(L, "INVALID_UTF8");
            return 3;
        }
        buf = lua_newuserdata(L, n ? n : 1);
        tl_seg_smart_encode(text, len, buf);
        lua_pushlstring(L, buf, n);
        lua_replace(L, 1); /* the text counted from here on is the smart one */
        text = lua_tolstring(L, 1, &len);
    }
    if (list) lua_newtable(L);
    nl.L = L;
    nl.text = text;
    nl.n = 0;
    rc = tl_seg_count(text, len, mode, &r, list ? push_nongsm : NULL, &nl, &where);
    if (rc == TL_SEG_ENOMEM) return luaL_error(L, "segments: out of memory");
    if (rc != TL_SEG_OK) {
        lua_pushnil(L);
        if (rc == TL_SEG_EUTF8) {
            lua_pushfstring(L, "text is not valid UTF-8 (byte %d)", (int)where + 1);
            lua_pushliteral(L, "INVALID_UTF8");
        } else {
            lua_pushfstring(L, "GSM-7 was asked for but the text has a character GSM 03.38 lacks (byte %d)",
                            (int)where + 1);
            lua_pushliteral(L, "NOT_GSM");
        }
        return 3;
    }
    lua_pushstring(L, r.ucs2 ? "UCS-2" : "GSM-7");
    lua_pushinteger(L, (lua_Integer)r.segments);
    lua_pushinteger(L, (lua_Integer)r.characters);
    lua_pushinteger(L, (lua_Integer)r.graphemes);
    nret = 4;
    if (list) {
        lua_pushvalue(L, -5); /* the list, below the four results */
        nret++;
    }
    if (smart) {
        lua_pushvalue(L, 1);
        nret++;
    }
    return nret;
}

/* ---- GCRA limiters (userdata "telua.GCRA" holding a tl_gcra_limit) ---- */

#define GCRA_MT "telua.GCRA"

static uint64_t check_u64(lua_State *L, int idx, const char *what)
{
    lua_Number v = luaL_checknumber(L, idx);
    if (!(v >= 0) || v > 9007199254740992.0) luaL_error(L, "gcra: %s must be a non-negative number", what);
    return (uint64_t)v;
}

/* core.gcra_new(count, period_ns, burst, queue_ns) -> limiter */
static int l_gcra_new(lua_State *L)
{
    tl_gcra_limit *g;
    uint64_t count = check_u64(L, 1, "count"), period = check_u64(L, 2, "period"),
             burst = check_u64(L, 3, "burst"), queue = check_u64(L, 4, "queue");
    if (!count || !period || !burst) return luaL_error(L, "gcra: rate and burst must be positive");
    g = lua_newuserdata(L, sizeof *g);
    g->count = count;
    g->period_ns = period;
    g->burst = burst;
    g->queue_ns = queue;
    tl_gcra_prepare(g);
    luaL_setmetatable(L, GCRA_MT);
    return 1;
}

/* shared by incoming and incoming_at: the key at k, cost at k+1, commit at k+2 */
static int gcra_decide(lua_State *L, tl_gcra_limit *g, int k, uint64_t now)
{
    size_t len;
    const char *key = luaL_checklstring(L, k, &len);
    lua_Number c = luaL_optnumber(L, k + 1, 1);
    int commit = lua_isnoneornil(L, k + 2) ? 1 : lua_toboolean(L, k + 2);
    uint64_t wait = 0;
    int rc;
    if (!(c >= 0) || c > 1e9 || c != (lua_Number)(uint64_t)c)
        return luaL_argerror(L, k + 1, "cost must be a whole number >= 0");
    rc = tl_gcra_incoming(g, key, len, (uint64_t)c, commit, now, &wait);
    switch (rc) {
    case TL_GCRA_NOW: lua_pushinteger(L, 0); return 1;
    case TL_GCRA_DELAYED: lua_pushnumber(L, (lua_Number)wait / 1e9); return 1;
    case TL_GCRA_REJECTED:
        lua_pushnil(L);
        lua_pushliteral(L, "rejected");
        lua_pushnumber(L, (lua_Number)wait / 1e9);
        return 3;
    case TL_GCRA_TOO_LARGE:
        lua_pushnil(L);
        lua_pushliteral(L, "too_large");
        return 2;
    default: return luaL_error(L, "gcra: %s", rc == TL_GCRA_ENOMEM ? "out of memory" : "bad limit");
    }
}

/* lim:incoming(key [, cost [, commit]]) -> delay | nil, "rejected", wait | nil, "too_large" */
static int l_gcra_incoming(lua_State *L)
{
    return gcra_decide(L, luaL_checkudata(L, 1, GCRA_MT), 2, tl_gcra_now());
}

/* lim:incoming_at(now_seconds, key [, cost [, commit]]): the same at a given monotonic time */
static int l_gcra_incoming_at(lua_State *L)
{
    tl_gcra_limit *g = luaL_checkudata(L, 1, GCRA_MT);
    lua_Number now = luaL_checknumber(L, 2);
    if (!(now >= 0) || now > 9.0e9) return luaL_argerror(L, 2, "now must be seconds >= 0");
    return gcra_decide(L, g, 3, (uint64_t)(now * 1e9 + 0.5));
}

/* lim:uncommit(key [, cost]) */
static int l_gcra_uncommit(lua_State *L)
{
    tl_gcra_limit *g = luaL_checkudata(L, 1, GCRA_MT);
    size_t len;
    const char *key = luaL_checklstring(L, 2, &len);
    lua_Number c = luaL_optnumber(L, 3, 1);
    if (!(c >= 0) || c > 1e9 || c != (lua_Number)(uint64_t)c)
        return luaL_argerror(L, 3, "cost must be a whole number >= 0");
    tl_gcra_uncommit(g, key, len, (uint64_t)c);
    return 0;
}

/* core.gcra_now() -> monotonic seconds */
static int l_gcra_now(lua_State *L)
{
    lua_pushnumber(L, (lua_Number)tl_gcra_now() / 1e9);
    return 1;
}

/* core.gcra_stats() -> keys, capacity, evicted */
static int l_gcra_stats(lua_State *L)
{
    tl_gcra_stats st;
    tl_gcra_stats_get(&st);
    lua_pushinteger(L, (lua_Integer)st.keys);
    lua_pushinteger(L, (lua_Integer)st.capacity);
    lua_pushinteger(L, (lua_Integer)st.evicted);
    return 3;
}

/* core.gcra_share([keys]) -> true | nil, message: the store in memory
 * shared with the processes forked after (see tl_gcra_share) */
static int l_gcra_share(lua_State *L)
{
    lua_Number keys = luaL_optnumber(L, 1, 0);
    int rc;
    if (!(keys >= 0) || keys > 1e9) return luaL_argerror(L, 1, "keys must be a number 0..1e9");
    rc = tl_gcra_share((size_t)keys);
    if (rc == 0) {
        lua_pushboolean(L, 1);
        return 1;
    }
    lua_pushnil(L);
    lua_pushstring(L, rc == -1 ? "gcra: the limiters' store is in use already: share it before the first decision "
                                 "(nginx: in init_by_lua)"
                               : "gcra: cannot map shared memory for the limiters' store");
    return 2;
}

/* core.gcra_shared() -> boolean */
static int l_gcra_shared(lua_State *L)
{
    lua_pushboolean(L, tl_gcra_is_shared());
    return 1;
}

static const luaL_Reg gcra_methods[] = {
    { "incoming", l_gcra_incoming },
    { "incoming_at", l_gcra_incoming_at },
    { "uncommit", l_gcra_uncommit },
    { NULL, NULL }
};

static const luaL_Reg core_funcs[] = {
    { "gcra_new", l_gcra_new },
    { "gcra_now", l_gcra_now },
    { "gcra_stats", l_gcra_stats },
    { "gcra_share", l_gcra_share },
    { "gcra_shared", l_gcra_shared },
    { "segments_count", l_segments_count },
    { "e164_parse", l_e164_parse },
    { "e164_normalize", l_e164_normalize },
    { "e164_region_known", l_e164_region_known },
    { "tz_of_number", l_tz_of_number },
    { "tz_at", l_tz_at },
    { "signature", l_signature },
    { "validate", l_validate },
    { "form_decode", l_form_decode },
    { "form_encode", l_form_encode },
    { "xml_check", l_xml_check },
    { "xml_escape", l_xml_escape },
    { "sha256_hex", l_sha256_hex },
    { "sleep", l_sleep },
    { "monotonic", l_monotonic },
    { "time", l_time },
    { "random_hex", l_random_hex },
    { "base64_encode", l_base64_encode },
    { "list_dir", l_list_dir },
    { "base64_decode", l_base64_decode },
    { NULL, NULL }
};

int luaopen_telua_core(lua_State *L)
{
    if (luaL_newmetatable(L, SIGKEY_MT)) {
        lua_pushcfunction(L, sigkey_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
    if (luaL_newmetatable(L, GCRA_MT)) {
        luaL_newlib(L, gcra_methods);
        lua_setfield(L, -2, "__index");
    }
    lua_pop(L, 1);
    luaL_newlib(L, core_funcs);
    lua_pushliteral(L, "tag"); /* the renderer's keys, at hand (pushing a C string looks it up with strcmp) */
    lua_pushliteral(L, "attrs");
    lua_pushcclosure(L, l_xml_render, 2);
    lua_setfield(L, -2, "xml_render");
    lua_pushliteral(L, TELUA_VERSION);
    lua_setfield(L, -2, "_VERSION");
    tl_open_sqlite(L);
    lua_setfield(L, -2, "sqlite_open");
    tl_open_http(L);
    tl_open_redis(L);
    lua_pushliteral(L, TL_E164_META_SOURCE);
    lua_setfield(L, -2, "e164_metadata");
    lua_pushstring(L, tl_tz_source());
    lua_setfield(L, -2, "tz_source");
    lua_pushliteral(L, TL_SEG_SOURCE);
    lua_setfield(L, -2, "segments_source");
    return 1;
}
