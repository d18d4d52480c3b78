/*
 * http.c - HTTP client for telua.core on libcurl's multi interface.
 *
 * One CURLM per lua_State (kept in the registry, cleaned up by __gc), so
 * connections are kept alive and reused across calls and HTTP/2 streams
 * are multiplexed where the server offers them. A single request blocks
 * the calling thread (plain Lua); a batch runs all its requests at once.
 * TLS verification is always on (a test or a private CA passes `cainfo`).
 *
 * Errors are values: nil, message, code with code one of "timeout",
 * "connect", "dns", "tls", "send", "recv", "too_large", "bad_request",
 * "failed". Messages come from libcurl's error text and never contain the
 * URL or credentials.
 */
#include "compat.h"
#include "telua_core.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define HTTP_MT "telua.HTTP"
#define MAX_BODY (64u * 1024 * 1024)

#define FREE_EASY 64

typedef struct {
    CURLM *multi;
    CURL *free_easy[FREE_EASY]; /* reset handles kept for the next requests */
    int nfree;
} http_pool;

typedef struct {
    CURL *easy;
    http_pool *pool;        /* where the handle goes back */
    struct curl_slist *headers;
    char *body;             /* response body */
    size_t len, cap;
    int too_large;
    int status_lines;       /* header block count (1xx, redirects) */
    char *hdr;              /* response headers, "name: value\n" of the last block */
    size_t hlen, hcap;
    char errbuf[CURL_ERROR_SIZE];
    CURLcode result;
    int done;
} http_req;

static int grow(char **buf, size_t *cap, size_t need)
{
    size_t nc;
    char *nb;
    if (need <= *cap) return 0;
    nc = *cap ? *cap : 1024;
    while (nc < need) nc *= 2;
    nb = realloc(*buf, nc);
    if (!nb) return -1;
    *buf = nb;
    *cap = nc;
    return 0;
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    http_req *r = ud;
    size_t k = size * n;
    if (r->len + k > MAX_BODY) {
        r->too_large = 1;
        return 0; /* makes libcurl stop with CURLE_WRITE_ERROR */
    }
    if (grow(&r->body, &r->cap, r->len + k) != 0) return 0;
    memcpy(r->body + r->len, p, k);
    r->len += k;
    return k;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    http_req *r = ud;
    size_t k = size * n;
    if (k >= 5 && memcmp(p, "HTTP/", 5) == 0) { /* a new response: keep only the last one's headers */
        r->hlen = 0;
        r->status_lines++;
        return k;
    }
    if (grow(&r->hdr, &r->hcap, r->hlen + k + 1) != 0) return 0;
    memcpy(r->hdr + r->hlen, p, k);
    r->hlen += k;
    return k;
}

/* A handle goes back to its pool (reset: no option or credential of this
 * request stays on it) unless the pool is full or closed. */
static void req_free(http_req *r)
{
    if (r->easy) {
        http_pool *p = r->pool;
        if (p && p->multi && p->nfree < FREE_EASY) {
            curl_easy_reset(r->easy);
            p->free_easy[p->nfree++] = r->easy;
        } else {
            curl_easy_cleanup(r->easy);
        }
        r->easy = NULL;
    }
    curl_slist_free_all(r->headers);
    free(r->body);
    free(r->hdr);
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_setup(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

void tl_http_global_init(void) { pthread_once(&curl_once, curl_setup); }

static http_pool *pool_of(lua_State *L)
{
    http_pool *p;
    lua_getfield(L, LUA_REGISTRYINDEX, HTTP_MT ".pool");
    p = lua_touserdata(L, -1);
    lua_pop(L, 1);
    if (p && p->multi) return p;
    tl_http_global_init();
    p = lua_newuserdata(L, sizeof *p);
    p->nfree = 0;
    p->multi = curl_multi_init();
    if (!p->multi) luaL_error(L, "http: cannot start libcurl");
    curl_multi_setopt(p->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    curl_multi_setopt(p->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 32L);
    luaL_setmetatable(L, HTTP_MT);
    lua_setfield(L, LUA_REGISTRYINDEX, HTTP_MT ".pool");
    return p;
}

static int pool_gc(lua_State *L)
{
    http_pool *p = luaL_checkudata(L, 1, HTTP_MT);
    while (p->nfree > 0) curl_easy_cleanup(p->free_easy[--p->nfree]);
    if (p->multi) curl_multi_cleanup(p->multi);
    p->multi = NULL;
    return 0;
}

static const char *opt_string(lua_State *L, int idx, const char *field, const char *def)
{
    const char *v = def;
    lua_getfield(L, idx, field);
    if (!lua_isnil(L, -1)) {
        if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "http: %s must be a string", field);
        v = lua_tostring(L, -1);
    }
    lua_pop(L, 1); /* the string stays reachable from the options table */
    return v;
}

static lua_Number opt_seconds(lua_State *L, int idx, const char *field, lua_Number def)
{
    lua_Number v;
    lua_getfield(L, idx, field);
    v = lua_isnil(L, -1) ? def : luaL_checknumber(L, -1);
    lua_pop(L, 1);
    if (!(v > 0) || v > 86400) luaL_error(L, "http: %s must be seconds > 0", field);
    return v;
}

/* Reads one request table at idx into r. Every option is checked before
 * anything is allocated, so a raise leaks nothing. */
static void setup_req(lua_State *L, int idx, http_req *r)
{
    const char *url, *method, *body, *cainfo, *user, *password;
    size_t blen = 0;
    lua_Number timeout, ctimeout;
    memset(r, 0, sizeof *r);
    luaL_checktype(L, idx, LUA_TTABLE);
    url = opt_string(L, idx, "url", NULL);
    if (!url || (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0))
        luaL_error(L, "http: url must be an http:// or https:// URL");
    method = opt_string(L, idx, "method", "GET");
    if (!*method || strpbrk(method, " \r\n")) luaL_error(L, "http: method must be a token such as \"POST\"");
    lua_getfield(L, idx, "body");
    body = lua_isnil(L, -1) ? NULL : luaL_checklstring(L, -1, &blen);
    lua_pop(L, 1);
    timeout = opt_seconds(L, idx, "timeout", 30);
    ctimeout = opt_seconds(L, idx, "connect_timeout", 10);
    cainfo = opt_string(L, idx, "cainfo", NULL);
    user = opt_string(L, idx, "user", NULL);
    password = opt_string(L, idx, "password", NULL);
    lua_getfield(L, idx, "headers");
    if (!lua_isnil(L, -1)) {
        luaL_checktype(L, -1, LUA_TTABLE);
        lua_pushnil(L);
        while (lua_next(L, -2)) { /* check first, build after */
            const char *k, *v;
            if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
                luaL_error(L, "http: headers must map names to strings");
            k = lua_tostring(L, -2);
            v = lua_tostring(L, -1);
            if (!*k || strpbrk(k, ": \r\n") || strpbrk(v, "\r\n"))
                luaL_error(L, "http: a header name holds ':', a space, CR or LF, or its value CR or LF");
            lua_pop(L, 1);
        }
    }
    /* all checked: build */
    r->pool = pool_of(L);
    r->easy = r->pool->nfree > 0 ? r->pool->free_easy[--r->pool->nfree] : curl_easy_init();
    if (!r->easy) luaL_error(L, "http: out of memory");
    if (lua_istable(L, -1)) {
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            lua_pushfstring(L, "%s: %s", lua_tostring(L, -2), lua_tostring(L, -1));
            r->headers = curl_slist_append(r->headers, lua_tostring(L, -1));
            lua_pop(L, 2);
        }
        curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, r->headers);
    }
    lua_pop(L, 1);
    curl_easy_setopt(r->easy, CURLOPT_URL, url);
    curl_easy_setopt(r->easy, CURLOPT_CUSTOMREQUEST, method);
    if (strcmp(method, "HEAD") == 0) curl_easy_setopt(r->easy, CURLOPT_NOBODY, 1L);
    if (body) {
        curl_easy_setopt(r->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)blen);
        curl_easy_setopt(r->easy, CURLOPT_COPYPOSTFIELDS, body);
    }
    curl_easy_setopt(r->easy, CURLOPT_TIMEOUT_MS, (long)(timeout * 1000));
    curl_easy_setopt(r->easy, CURLOPT_CONNECTTIMEOUT_MS, (long)(ctimeout * 1000));
    curl_easy_setopt(r->easy, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS); /* h2 where offered */
    curl_easy_setopt(r->easy, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(r->easy, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(r->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(r->easy, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(r->easy, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(r->easy, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(r->easy, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(r->easy, CURLOPT_ERRORBUFFER, r->errbuf);
    curl_easy_setopt(r->easy, CURLOPT_PRIVATE, r);
    if (cainfo) curl_easy_setopt(r->easy, CURLOPT_CAINFO, cainfo);
    if (user) curl_easy_setopt(r->easy, CURLOPT_USERNAME, user);
    if (password) curl_easy_setopt(r->easy, CURLOPT_PASSWORD, password);
}

static const char *code_of(CURLcode c, int too_large)
{
    if (too_large) return "too_large";
    switch (c) {
    case CURLE_OPERATION_TIMEDOUT: return "timeout";
    case CURLE_COULDNT_RESOLVE_HOST: case CURLE_COULDNT_RESOLVE_PROXY: return "dns";
    case CURLE_COULDNT_CONNECT: return "connect";
    case CURLE_SSL_CONNECT_ERROR: case CURLE_PEER_FAILED_VERIFICATION: case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CACERT_BADFILE: case CURLE_SSL_CIPHER: return "tls";
    case CURLE_SEND_ERROR: return "send";
    case CURLE_RECV_ERROR: case CURLE_GOT_NOTHING: case CURLE_PARTIAL_FILE: return "recv";
    case CURLE_URL_MALFORMAT: case CURLE_UNSUPPORTED_PROTOCOL: return "bad_request";
    default: return "failed";
    }
}

/* Pushes the result of r: a response table, or nil, message, code. */
static int push_result(lua_State *L, http_req *r)
{
    long status = 0, ver = 0;
    size_t i, start = 0;
    if (r->result != CURLE_OK || r->too_large) {
        lua_pushnil(L);
        if (r->too_large) lua_pushliteral(L, "http: response body over 64 MiB");
        else lua_pushfstring(L, "http: %s", r->errbuf[0] ? r->errbuf : curl_easy_strerror(r->result));
        lua_pushstring(L, code_of(r->result, r->too_large));
        return 3;
    }
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(r->easy, CURLINFO_HTTP_VERSION, &ver);
    lua_createtable(L, 0, 4);
    lua_pushinteger(L, status);
    lua_setfield(L, -2, "status");
    lua_pushstring(L, ver == CURL_HTTP_VERSION_2_0 ? "2" : ver == CURL_HTTP_VERSION_1_0 ? "1.0" : "1.1");
    lua_setfield(L, -2, "http_version");
    lua_pushlstring(L, r->body ? r->body : "", r->len);
    lua_setfield(L, -2, "body");
    lua_newtable(L); /* headers: lower-case names; repeated ones joined with ", " */
    for (i = 0; i <= r->hlen; i++) {
        if (i == r->hlen || r->hdr[i] == '\n') {
            size_t e = i, c;
            while (e > start && (r->hdr[e - 1] == '\r' || r->hdr[e - 1] == '\n')) e--;
            for (c = start; c < e && r->hdr[c] != ':'; c++) {}
            if (c < e && c > start) {
                size_t k, vs = c + 1;
                luaL_Buffer b;
                while (vs < e && (r->hdr[vs] == ' ' || r->hdr[vs] == '\t')) vs++;
                luaL_buffinit(L, &b);
                for (k = start; k < c; k++) {
                    char ch = r->hdr[k];
                    luaL_addchar(&b, (ch >= 'A' && ch <= 'Z') ? (char)(ch + 32) : ch);
                }
                luaL_pushresult(&b);
                lua_pushvalue(L, -1);
                lua_rawget(L, -3);
                if (lua_isstring(L, -1)) {
                    lua_pushliteral(L, ", ");
                    lua_pushlstring(L, r->hdr + vs, e - vs);
                    lua_concat(L, 3);
                } else {
                    lua_pop(L, 1);
                    lua_pushlstring(L, r->hdr + vs, e - vs);
                }
                lua_rawset(L, -3);
            }
            start = i + 1;
        }
    }
    lua_setfield(L, -2, "headers");
    return 1;
}

/* Runs every request of reqs[0..n) on the state's multi handle. At most
 * `window` are in the multi at once, the next added as one finishes:
 * libcurl's work per step grows with the handles it holds, so a long list
 * streams through a small window (twice the connections) instead. */
static void run_window(lua_State *L, http_req *reqs, int n, int window)
{
    http_pool *p = pool_of(L);
    int i, running = 0, left = n, next = 0;
    for (; next < n && next < window; next++) curl_multi_add_handle(p->multi, reqs[next].easy);
    while (left > 0) {
        CURLMsg *m;
        int q, added = 0;
        if (curl_multi_perform(p->multi, &running) != CURLM_OK) break;
        while ((m = curl_multi_info_read(p->multi, &q)) != NULL) {
            if (m->msg == CURLMSG_DONE) {
                http_req *r = NULL;
                curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
                if (r && !r->done) {
                    r->result = m->data.result;
                    r->done = 1;
                    left--;
                    curl_multi_remove_handle(p->multi, r->easy);
                    if (next < n) {
                        curl_multi_add_handle(p->multi, reqs[next++].easy);
                        added = 1;
                    }
                }
            }
        }
        /* a handle just added starts on the next perform, not after a poll */
        if (left > 0 && !added) curl_multi_poll(p->multi, NULL, 0, 100, NULL);
    }
    for (i = 0; i < n; i++) {
        if (!reqs[i].done) {
            reqs[i].result = CURLE_ABORTED_BY_CALLBACK;
            if (i < next) curl_multi_remove_handle(p->multi, reqs[i].easy);
        }
    }
}

static void run_all(lua_State *L, http_req *reqs, int n) { run_window(L, reqs, n, n); }

/* core.http_request(opts) -> response | nil, message, code */
static int l_http_request(lua_State *L)
{
    http_req r;
    int n;
    setup_req(L, 1, &r);
    run_all(L, &r, 1);
    n = push_result(L, &r);
    req_free(&r);
    return n;
}

/* A batch's requests live in a userdata whose __gc frees what a raise
 * (bad options in a later item) left behind. */
typedef struct {
    int n;
    http_req *reqs;
} http_batch;

static int batch_gc(lua_State *L)
{
    http_batch *b = lua_touserdata(L, 1);
    int i;
    for (i = 0; b && b->reqs && i < b->n; i++) req_free(&b->reqs[i]);
    if (b) {
        free(b->reqs);
        b->reqs = NULL;
        b->n = 0;
    }
    return 0;
}

/* Pushes the list of answers of a batch: a response table each, or
 * { error = message, code = code }. */
static void push_results(lua_State *L, http_req *reqs, int n)
{
    int i;
    lua_createtable(L, n, 0);
    for (i = 0; i < n; i++) {
        if (push_result(L, &reqs[i]) == 3) {
            lua_createtable(L, 0, 2);
            lua_pushvalue(L, -3);
            lua_setfield(L, -2, "error");
            lua_pushvalue(L, -2);
            lua_setfield(L, -2, "code");
            lua_replace(L, -4);
            lua_pop(L, 2);
        }
        lua_rawseti(L, -2, i + 1);
    }
}

/* core.http_batch({opts, ...} [, max_connections]) ->
 *   { response | {error = message, code = code}, ... }
 * At most max_connections (default 32) connections per host: libcurl keeps
 * the other requests pending and starts each as a connection frees, so a
 * long list streams through a fixed pool. */
static int l_http_batch(lua_State *L)
{
    int n, i;
    http_batch *b;
    lua_Integer maxc = luaL_optinteger(L, 2, 32);
    luaL_checktype(L, 1, LUA_TTABLE);
    if (maxc < 1 || maxc > 1024) return luaL_error(L, "http: max_connections must be 1..1024");
    lua_settop(L, 1);
    curl_multi_setopt(pool_of(L)->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)maxc);
    n = (int)tl_rawlen(L, 1);
    b = lua_newuserdata(L, sizeof *b);
    b->n = 0;
    b->reqs = NULL;
    luaL_setmetatable(L, HTTP_MT ".batch");
    if (n > 0 && !(b->reqs = calloc((size_t)n, sizeof *b->reqs))) return luaL_error(L, "http: out of memory");
    for (i = 0; i < n; i++) {
        lua_rawgeti(L, 1, i + 1);
        if (!lua_istable(L, -1)) return luaL_error(L, "http: batch item %d must be a table", i + 1);
        setup_req(L, lua_gettop(L), &b->reqs[i]);
        b->n = i + 1;
        lua_pop(L, 1);
    }
    run_window(L, b->reqs, n, 2 * (int)maxc);
    push_results(L, b->reqs, n);
    lua_pushcfunction(L, batch_gc);
    lua_pushvalue(L, -3); /* the userdata */
    lua_call(L, 1, 0);
    return 1;
}

/* ---- a flight: requests that each finish on their own ---------------- */

/* core.http_flight([max_connections]) -> flight, with
 *   flight:add(opts) -> id       starts a request (options as http_request)
 *   flight:poll(seconds) -> { {id, response} | {id, nil, message, code}, ... }
 *                                 what finished, waiting up to `seconds` for
 *                                 a first answer when none is in (0: a look)
 *   flight:count() -> n           requests in flight
 * Each request holds only its own connection: a slow one never holds back
 * the answers of the others (the sender sends through one). The flight has
 * a multi handle of its own, so a blocking request made meanwhile on the
 * state's pool never sees its transfers. */
#define FLIGHT_MT HTTP_MT ".flight"

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct {
    CURLM *multi;
    http_req **reqs;  /* in flight, any order */
    lua_Integer *ids;
    int n, cap;
    lua_Integer next_id;
} http_flight;

static http_flight *check_flight(lua_State *L)
{
    http_flight *f = luaL_checkudata(L, 1, FLIGHT_MT);
    if (!f->multi) luaL_error(L, "http: the flight is closed");
    return f;
}

static int flight_gc(lua_State *L)
{
    http_flight *f = luaL_checkudata(L, 1, FLIGHT_MT);
    for (int i = 0; i < f->n; i++) {
        if (f->multi) curl_multi_remove_handle(f->multi, f->reqs[i]->easy);
        req_free(f->reqs[i]);
        free(f->reqs[i]);
    }
    free(f->reqs);
    free(f->ids);
    f->reqs = NULL;
    f->ids = NULL;
    f->n = f->cap = 0;
    if (f->multi) curl_multi_cleanup(f->multi);
    f->multi = NULL;
    return 0;
}

static int l_http_flight(lua_State *L)
{
    lua_Integer maxc = luaL_optinteger(L, 1, 32);
    if (maxc < 1 || maxc > 1024) return luaL_error(L, "http: max_connections must be 1..1024");
    tl_http_global_init();
    http_flight *f = lua_newuserdata(L, sizeof *f);
    memset(f, 0, sizeof *f);
    luaL_setmetatable(L, FLIGHT_MT);
    f->multi = curl_multi_init();
    if (!f->multi) return luaL_error(L, "http: cannot start libcurl");
    curl_multi_setopt(f->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    curl_multi_setopt(f->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)maxc);
    return 1;
}

static int flight_add(lua_State *L)
{
    http_flight *f = check_flight(L);
    luaL_checktype(L, 2, LUA_TTABLE);
    if (f->n == f->cap) {
        int nc = f->cap ? 2 * f->cap : 16;
        http_req **nr = realloc(f->reqs, (size_t)nc * sizeof *nr);
        if (!nr) return luaL_error(L, "http: out of memory");
        f->reqs = nr;
        lua_Integer *ni = realloc(f->ids, (size_t)nc * sizeof *ni);
        if (!ni) return luaL_error(L, "http: out of memory");
        f->ids = ni;
        f->cap = nc;
    }
    /* the request's memory is a userdata until it is in the flight, so a
     * raise in setup_req (a bad option) leaks nothing */
    http_req *tmp = lua_newuserdata(L, sizeof *tmp);
    setup_req(L, 2, tmp);
    http_req *r = malloc(sizeof *r);
    if (!r) {
        req_free(tmp);
        return luaL_error(L, "http: out of memory");
    }
    *r = *tmp;
    curl_easy_setopt(r->easy, CURLOPT_WRITEDATA, r); /* the callbacks' pointers follow the copy */
    curl_easy_setopt(r->easy, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(r->easy, CURLOPT_ERRORBUFFER, r->errbuf);
    curl_easy_setopt(r->easy, CURLOPT_PRIVATE, r);
    if (curl_multi_add_handle(f->multi, r->easy) != CURLM_OK) {
        req_free(r);
        free(r);
        return luaL_error(L, "http: cannot start the request");
    }
    f->reqs[f->n] = r;
    f->ids[f->n] = ++f->next_id;
    f->n++;
    lua_pushinteger(L, f->next_id);
    return 1;
}

/* Moves what finished into the list at the top of the stack; returns how many. */
static int flight_collect(lua_State *L, http_flight *f, int *k)
{
    CURLMsg *m;
    int q, got = 0;
    while ((m = curl_multi_info_read(f->multi, &q)) != NULL) {
        if (m->msg != CURLMSG_DONE) continue;
        for (int i = 0; i < f->n; i++) {
            http_req *r = f->reqs[i];
            if (r->easy != m->easy_handle) continue;
            r->result = m->data.result;
            r->done = 1;
            curl_multi_remove_handle(f->multi, r->easy);
            lua_createtable(L, 4, 0);
            lua_pushinteger(L, f->ids[i]);
            lua_rawseti(L, -2, 1);
            int nret = push_result(L, r); /* 1 value, or nil, message, code: entry[2..] */
            for (int j = nret; j >= 1; j--) lua_rawseti(L, -(j + 1), j + 1);
            req_free(r);
            free(r);
            f->reqs[i] = f->reqs[f->n - 1];
            f->ids[i] = f->ids[f->n - 1];
            f->n--;
            lua_rawseti(L, -2, ++*k);
            got++;
            break;
        }
    }
    return got;
}

static int flight_poll(lua_State *L)
{
    http_flight *f = check_flight(L);
    lua_Number wait = luaL_optnumber(L, 2, 0);
    int running = 0, k = 0;
    if (!(wait >= 0) || wait > 3600) return luaL_argerror(L, 2, "seconds must be 0..3600");
    lua_settop(L, 2);
    lua_newtable(L);
    if (f->n == 0) return 1;
    curl_multi_perform(f->multi, &running);
    if (flight_collect(L, f, &k) == 0 && wait > 0) {
        double end = mono_now() + wait;
        for (;;) {
            double left = end - mono_now();
            if (left <= 0) break;
            curl_multi_poll(f->multi, NULL, 0, (int)(left * 1000) + 1, NULL);
            curl_multi_perform(f->multi, &running);
            if (flight_collect(L, f, &k) > 0) break;
        }
    }
    return 1;
}

static int flight_count(lua_State *L)
{
    lua_pushinteger(L, check_flight(L)->n);
    return 1;
}

/* ---- prepared requests, for a host that runs them on its own loop ----- */

struct tl_http_job {
    int n;
    http_req *reqs;
};

tl_http_job *tl_http_prepare(lua_State *L, int idx, int batch)
{
    tl_http_job *j;
    int i, n;
    idx = tl_absindex(L, idx);
    luaL_checktype(L, idx, LUA_TTABLE);
    n = batch ? (int)tl_rawlen(L, idx) : 1;
    /* a userdata owns the job until it is handed over, so a raise in a
     * later item frees what the earlier ones built */
    {
        http_batch *b = lua_newuserdata(L, sizeof *b);
        b->n = 0;
        b->reqs = NULL;
        luaL_setmetatable(L, HTTP_MT ".batch");
        if (n > 0 && !(b->reqs = calloc((size_t)n, sizeof *b->reqs))) luaL_error(L, "http: out of memory");
        for (i = 0; i < n; i++) {
            if (batch) {
                lua_rawgeti(L, idx, i + 1);
                if (!lua_istable(L, -1)) luaL_error(L, "http: batch item %d must be a table", i + 1);
                setup_req(L, lua_gettop(L), &b->reqs[i]);
                lua_pop(L, 1);
            } else {
                setup_req(L, idx, &b->reqs[i]);
            }
            b->n = i + 1;
        }
        j = calloc(1, sizeof *j);
        if (!j) luaL_error(L, "http: out of memory"); /* b still owns the requests */
        j->n = b->n;
        j->reqs = b->reqs;
        b->n = 0; /* handed over */
        b->reqs = NULL;
        lua_pop(L, 1);
    }
    return j;
}

int tl_http_job_count(const tl_http_job *j) { return j->n; }

CURL *tl_http_job_easy(tl_http_job *j, int i) { return j->reqs[i].easy; }

int tl_http_job_done(tl_http_job *j, CURL *easy, CURLcode result)
{
    int i, left = 0;
    for (i = 0; i < j->n; i++) {
        if (j->reqs[i].easy == easy && !j->reqs[i].done) {
            j->reqs[i].result = result;
            j->reqs[i].done = 1;
        }
        if (!j->reqs[i].done) left++;
    }
    return left;
}

void tl_http_job_abort(tl_http_job *j)
{
    int i;
    for (i = 0; i < j->n; i++)
        if (!j->reqs[i].done) {
            j->reqs[i].result = CURLE_ABORTED_BY_CALLBACK;
            j->reqs[i].done = 1;
        }
}

void tl_http_job_expire(tl_http_job *j)
{
    int i;
    for (i = 0; i < j->n; i++)
        if (!j->reqs[i].done) {
            j->reqs[i].result = CURLE_OPERATION_TIMEDOUT;
            j->reqs[i].done = 1;
        }
}

int tl_http_job_push(lua_State *L, tl_http_job *j, int batch)
{
    if (!batch) return push_result(L, &j->reqs[0]);
    push_results(L, j->reqs, j->n);
    return 1;
}

void tl_http_job_free(tl_http_job *j)
{
    int i;
    if (!j) return;
    for (i = 0; i < j->n; i++) req_free(&j->reqs[i]);
    free(j->reqs);
    free(j);
}

void tl_open_http(lua_State *L)
{
    if (luaL_newmetatable(L, HTTP_MT)) {
        lua_pushcfunction(L, pool_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
    if (luaL_newmetatable(L, HTTP_MT ".batch")) {
        lua_pushcfunction(L, batch_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
    if (luaL_newmetatable(L, FLIGHT_MT)) {
        static const luaL_Reg methods[] = { { "add", flight_add }, { "poll", flight_poll },
                                            { "count", flight_count }, { "close", flight_gc }, { NULL, NULL } };
        lua_pushcfunction(L, flight_gc);
        lua_setfield(L, -2, "__gc");
        luaL_newlib(L, methods);
        lua_setfield(L, -2, "__index");
    }
    lua_pop(L, 1);
    lua_pushcfunction(L, l_http_flight);
    lua_setfield(L, -2, "http_flight");
    lua_pushcfunction(L, l_http_request);
    lua_setfield(L, -2, "http_request");
    lua_pushcfunction(L, l_http_batch);
    lua_setfield(L, -2, "http_batch");
    lua_pushstring(L, curl_version());
    lua_setfield(L, -2, "http_version");
}
