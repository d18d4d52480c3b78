/*
 * redis.c - a Redis connection for telua.core: TCP, a Unix socket, or
 * TLS (OpenSSL), speaking RESP through hiredis's own encoder and reply
 * reader (redisFormatCommandArgv, redisReader); the sockets are ours
 * because Debian 12's hiredis 0.14 has no TLS.
 *
 * Blocking with timeouts (SO_SNDTIMEO/SO_RCVTIMEO: each send and each read
 * waits at most `timeout` seconds). A connection that failed mid-exchange
 * is closed; the next exchange connects again. Used three ways: by Lua
 * directly (core.redis_connect: plain Lua, scripts, the sender thread),
 * and by the telua host's workers through prepared jobs that a worker's
 * Redis thread runs while the rule's coroutine waits (redis.h).
 *
 * No message built here holds the password.
 */
#include "compat.h"
#include "redis.h"

#include <hiredis/hiredis.h>
#include <hiredis/read.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define REDIS_MT "telua.Redis"

struct tl_redis {
    tl_redis_opts o;
    int fd;
    SSL_CTX *ctx;
    SSL *ssl;
    redisReader *reader;
};

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

void tl_redis_opts_free(tl_redis_opts *o)
{
    free(o->host);
    free(o->path);
    free(o->user);
    if (o->password) {
        memset(o->password, 0, strlen(o->password));
        free(o->password);
    }
    free(o->cainfo);
    free(o->servername);
    memset(o, 0, sizeof *o);
}

int tl_redis_opts_copy(tl_redis_opts *dst, const tl_redis_opts *src)
{
    *dst = *src;
    dst->host = dup_or_null(src->host);
    dst->path = dup_or_null(src->path);
    dst->user = dup_or_null(src->user);
    dst->password = dup_or_null(src->password);
    dst->cainfo = dup_or_null(src->cainfo);
    dst->servername = dup_or_null(src->servername);
    if ((src->host && !dst->host) || (src->path && !dst->path) || (src->user && !dst->user) ||
        (src->password && !dst->password) || (src->cainfo && !dst->cainfo) ||
        (src->servername && !dst->servername)) {
        tl_redis_opts_free(dst);
        return -1;
    }
    return 0;
}

static void set_err(char *err, size_t len, const char **code, const char *c, const char *fmt, const char *a)
{
    if (code) *code = c;
    if (err && len) snprintf(err, len, fmt, a ? a : "");
}

static void drop(tl_redis *r)
{
    if (r->ssl) {
        SSL_free(r->ssl);
        r->ssl = NULL;
    }
    if (r->fd >= 0) close(r->fd);
    r->fd = -1;
    if (r->reader) redisReaderFree(r->reader);
    r->reader = NULL;
}

static void set_timeouts(int fd, double s)
{
    struct timeval tv;
    tv.tv_sec = (time_t)s;
    tv.tv_usec = (suseconds_t)((s - (double)tv.tv_sec) * 1e6);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

/* connect() on a non-blocking socket, waiting at most ms. */
static int connect_within(int fd, const struct sockaddr *sa, socklen_t salen, int ms)
{
    int fl = fcntl(fd, F_GETFL, 0), soerr = 0;
    socklen_t sl = sizeof soerr;
    struct pollfd p;
    fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    if (connect(fd, sa, salen) != 0) {
        if (errno != EINPROGRESS) return -1;
        p.fd = fd;
        p.events = POLLOUT;
        p.revents = 0;
        if (poll(&p, 1, ms) != 1) {
            errno = ETIMEDOUT;
            return -1;
        }
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr) {
            errno = soerr ? soerr : EIO;
            return -1;
        }
    }
    fcntl(fd, F_SETFL, fl);
    return 0;
}

static int io_write(tl_redis *r, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n;
        if (r->ssl) {
            int k = SSL_write(r->ssl, buf, (int)(len > 1 << 30 ? 1 << 30 : len));
            if (k <= 0) return -1;
            n = k;
        } else {
            n = send(r->fd, buf, len, MSG_NOSIGNAL);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return -1;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

static ssize_t io_read(tl_redis *r, char *buf, size_t len)
{
    for (;;) {
        ssize_t n;
        if (r->ssl) {
            int k = SSL_read(r->ssl, buf, (int)len);
            return k > 0 ? k : -1;
        }
        n = recv(r->fd, buf, len, 0);
        if (n < 0 && errno == EINTR) continue;
        return n > 0 ? n : -1;
    }
}

static int open_socket(tl_redis *r, char *err, size_t errlen, const char **code)
{
    int ms = (int)(r->o.connect_timeout * 1000);
    if (ms <= 0) ms = 1000;
    if (r->o.path) {
        struct sockaddr_un sun;
        if (strlen(r->o.path) >= sizeof sun.sun_path) {
            set_err(err, errlen, code, "connect", "redis: socket path too long: %s", r->o.path);
            return -1;
        }
        memset(&sun, 0, sizeof sun);
        sun.sun_family = AF_UNIX;
        strcpy(sun.sun_path, r->o.path);
        r->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (r->fd < 0 || connect_within(r->fd, (struct sockaddr *)&sun, sizeof sun, ms) != 0) {
            set_err(err, errlen, code, errno == ETIMEDOUT ? "timeout" : "connect", "redis: cannot connect to %s: ",
                    r->o.path);
            if (err) strncat(err, strerror(errno), errlen - strlen(err) - 1);
            drop(r);
            return -1;
        }
    } else {
        struct addrinfo hints, *res = NULL, *ai;
        char port[16];
        int rc, e = 0;
        memset(&hints, 0, sizeof hints);
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_family = AF_UNSPEC;
        snprintf(port, sizeof port, "%d", r->o.port ? r->o.port : 6379);
        rc = getaddrinfo(r->o.host ? r->o.host : "127.0.0.1", port, &hints, &res);
        if (rc != 0) {
            set_err(err, errlen, code, "dns", "redis: cannot resolve %s", r->o.host);
            return -1;
        }
        for (ai = res; ai; ai = ai->ai_next) {
            r->fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
            if (r->fd < 0) continue;
            if (connect_within(r->fd, ai->ai_addr, ai->ai_addrlen, ms) == 0) break;
            e = errno;
            close(r->fd);
            r->fd = -1;
        }
        freeaddrinfo(res);
        if (r->fd < 0) {
            char where[300];
            snprintf(where, sizeof where, "%s:%d", r->o.host ? r->o.host : "127.0.0.1", r->o.port ? r->o.port : 6379);
            set_err(err, errlen, code, e == ETIMEDOUT ? "timeout" : "connect", "redis: cannot connect to %s: ", where);
            if (err) strncat(err, strerror(e), errlen - strlen(err) - 1);
            return -1;
        }
        rc = 1;
        setsockopt(r->fd, IPPROTO_TCP, TCP_NODELAY, &rc, sizeof rc);
    }
    set_timeouts(r->fd, r->o.timeout > 0 ? r->o.timeout : 1.0);
    return 0;
}

static int start_tls(tl_redis *r, char *err, size_t errlen, const char **code)
{
    const char *name = r->o.servername ? r->o.servername : r->o.host;
    unsigned char ip[16];
    int is_ip = name && (inet_pton(AF_INET, name, ip) == 1 || inet_pton(AF_INET6, name, ip) == 1);
    if (!r->ctx) {
        r->ctx = SSL_CTX_new(TLS_client_method());
        if (!r->ctx) goto fail;
        SSL_CTX_set_min_proto_version(r->ctx, TLS1_2_VERSION);
        SSL_CTX_set_verify(r->ctx, SSL_VERIFY_PEER, NULL);
        if (r->o.cainfo ? SSL_CTX_load_verify_locations(r->ctx, r->o.cainfo, NULL) != 1
                        : SSL_CTX_set_default_verify_paths(r->ctx) != 1) {
            set_err(err, errlen, code, "tls", "redis: cannot load the CA certificates %s",
                    r->o.cainfo ? r->o.cainfo : "(system)");
            return -1;
        }
    }
    r->ssl = SSL_new(r->ctx);
    if (!r->ssl) goto fail;
    SSL_set_fd(r->ssl, r->fd);
    if (name) {
        if (is_ip) X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(r->ssl), name);
        else {
            SSL_set_tlsext_host_name(r->ssl, name);
            SSL_set1_host(r->ssl, name);
        }
    }
    if (SSL_connect(r->ssl) != 1) {
        long v = SSL_get_verify_result(r->ssl);
        if (v != X509_V_OK)
            set_err(err, errlen, code, "tls", "redis: TLS certificate not accepted: %s",
                    X509_verify_cert_error_string(v));
        else {
            char buf[160];
            ERR_error_string_n(ERR_get_error(), buf, sizeof buf);
            set_err(err, errlen, code, "tls", "redis: TLS handshake failed: %s", buf);
        }
        ERR_clear_error();
        return -1;
    }
    return 0;
fail:
    set_err(err, errlen, code, "tls", "redis: TLS set-up failed%s", NULL);
    ERR_clear_error();
    return -1;
}

/* Reads replies until n are in (out[0..n-1]; the caller frees them). */
static int read_replies(tl_redis *r, redisReply **out, int n, char *err, size_t errlen, const char **code)
{
    int got = 0;
    char buf[16384];
    while (got < n) {
        void *rep = NULL;
        ssize_t k;
        if (redisReaderGetReply(r->reader, &rep) != REDIS_OK) {
            set_err(err, errlen, code, "protocol", "redis: protocol error: %s", r->reader->errstr);
            goto fail;
        }
        if (rep) {
            out[got++] = rep;
            continue;
        }
        k = io_read(r, buf, sizeof buf);
        if (k <= 0) {
            int timeout = errno == EAGAIN || errno == EWOULDBLOCK;
            set_err(err, errlen, code, timeout ? "timeout" : "recv",
                    timeout ? "redis: no answer within the timeout%s" : "redis: connection lost%s", NULL);
            goto fail;
        }
        redisReaderFeed(r->reader, buf, (size_t)k);
    }
    return 0;
fail:
    while (got > 0) freeReplyObject(out[--got]);
    drop(r);
    return -1;
}

/* AUTH and SELECT on a new connection, in one round trip. */
static int handshake(tl_redis *r, char *err, size_t errlen, const char **code)
{
    char *cmd = NULL;
    int n = 0, i, len, rc = 0;
    redisReply *rep[2] = { NULL, NULL };
    if (r->o.password) {
        const char *argv[3] = { "AUTH", r->o.user ? r->o.user : r->o.password, r->o.password };
        len = redisFormatCommandArgv(&cmd, r->o.user ? 3 : 2, argv, NULL);
        if (len < 0 || io_write(r, cmd, (size_t)len) != 0) goto io;
        free(cmd);
        cmd = NULL;
        n++;
    }
    if (r->o.db > 0) {
        char db[16];
        const char *argv[2] = { "SELECT", db };
        snprintf(db, sizeof db, "%d", r->o.db);
        len = redisFormatCommandArgv(&cmd, 2, argv, NULL);
        if (len < 0 || io_write(r, cmd, (size_t)len) != 0) goto io;
        free(cmd);
        cmd = NULL;
        n++;
    }
    if (n == 0) return 0;
    if (read_replies(r, rep, n, err, errlen, code) != 0) return -1;
    for (i = 0; i < n; i++)
        if (rep[i]->type == REDIS_REPLY_ERROR && rc == 0) {
            /* the server's own words ("WRONGPASS invalid username-password pair"): no secret in them */
            set_err(err, errlen, code, i == 0 && r->o.password ? "auth" : "redis", "redis: %s", rep[i]->str);
            rc = -1;
        }
    for (i = 0; i < n; i++) freeReplyObject(rep[i]);
    if (rc) drop(r);
    return rc;
io:
    free(cmd);
    set_err(err, errlen, code, "send", "redis: cannot send to the server%s", NULL);
    drop(r);
    return -1;
}

static int ensure_open(tl_redis *r, char *err, size_t errlen, const char **code)
{
    if (r->fd >= 0) return 0;
    if (open_socket(r, err, errlen, code) != 0) return -1;
    if (r->o.tls && start_tls(r, err, errlen, code) != 0) {
        drop(r);
        return -1;
    }
    r->reader = redisReaderCreate();
    if (!r->reader) {
        set_err(err, errlen, code, "failed", "redis: out of memory%s", NULL);
        drop(r);
        return -1;
    }
    return handshake(r, err, errlen, code);
}

tl_redis *tl_redis_new(const tl_redis_opts *o)
{
    tl_redis *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    if (tl_redis_opts_copy(&r->o, o) != 0) {
        free(r);
        return NULL;
    }
    r->fd = -1;
    return r;
}

void tl_redis_free(tl_redis *r)
{
    if (!r) return;
    drop(r);
    if (r->ctx) SSL_CTX_free(r->ctx);
    tl_redis_opts_free(&r->o);
    free(r);
}

int tl_redis_exchange(tl_redis *r, const char *buf, size_t len, int n, redisReply **out, char *err, size_t errlen,
                      const char **code)
{
    int tries;
    if (r->fd >= 0) {
        /* a kept connection between exchanges has nothing to read; bytes on the socket
         * (or unread in OpenSSL's buffer) mean the server closed it (a restart) or the
         * stream is out of step: start again on a new one */
        struct pollfd p;
        int waiting;
        p.fd = r->fd;
        p.events = POLLIN;
        p.revents = 0;
        waiting = poll(&p, 1, 0) != 0 || (r->ssl && SSL_pending(r->ssl) > 0);
        if (waiting) drop(r);
    }
    for (tries = 0; tries < 2; tries++) {
        int fresh = r->fd < 0;
        if (ensure_open(r, err, errlen, code) != 0) return -1;
        if (io_write(r, buf, len) != 0) {
            drop(r);
            /* a kept connection the server closed meanwhile (a restart, an idle timeout): once more, new */
            if (!fresh) continue;
            set_err(err, errlen, code, "send", "redis: cannot send to the server%s", NULL);
            return -1;
        }
        return read_replies(r, out, n, err, errlen, code);
    }
    set_err(err, errlen, code, "send", "redis: cannot send to the server%s", NULL);
    return -1;
}

/* ---- commands: a Lua list of argument lists, formatted as RESP */

int tl_redis_format(lua_State *L, int idx, char **buf, size_t *len, int *n)
{
    size_t cap = 0, used = 0;
    int i, count;
    char *out = NULL;
    idx = tl_absindex(L, idx);
    luaL_checktype(L, idx, LUA_TTABLE);
    count = (int)tl_rawlen(L, idx);
    for (i = 1; i <= count; i++) {
        const char *sargv[64], **argv = sargv;
        size_t sargl[64], *argl = sargl;
        int argc, j, k, cmdidx, extra = 0;
        char *cmd = NULL;
        lua_rawgeti(L, idx, i);
        cmdidx = lua_gettop(L);
        if (!lua_istable(L, -1)) {
            free(out);
            return luaL_error(L, "redis: command %d is not a list of arguments", i);
        }
        argc = (int)tl_rawlen(L, -1);
        if (argc < 1) {
            free(out);
            return luaL_error(L, "redis: command %d has no arguments", i);
        }
        /* the stack stays as deep for any number of arguments (a C function is
         * promised only LUA_MINSTACK free slots): a string argument is held by the
         * command's table, a number's string form by a scratch table; Lua's
         * collector does not move strings, so their pointers hold until formatted */
        if (!lua_checkstack(L, 8)) {
            free(out);
            return luaL_error(L, "redis: out of stack space");
        }
        lua_createtable(L, 0, 0); /* scratch: cmdidx + 1 */
        extra = 1;
        if (argc > 64) { /* a long command (EVALSHA with a batch): arrays the GC owns */
            void *ud = lua_newuserdata(L, (size_t)argc * (sizeof(char *) + sizeof(size_t)));
            argl = (size_t *)ud;
            argv = (const char **)(argl + argc);
            extra = 2;
        }
        for (j = 0; j < argc; j++) {
            int t;
            lua_rawgeti(L, cmdidx, j + 1);
            t = lua_type(L, -1);
            if (t != LUA_TSTRING && t != LUA_TNUMBER) {
                free(out);
                return luaL_error(L, "redis: argument %d of command %d is a %s", j + 1, i, luaL_typename(L, -1));
            }
            argv[j] = lua_tolstring(L, -1, &argl[j]); /* a number becomes a string on the stack copy */
            if (t == LUA_TNUMBER) lua_rawseti(L, cmdidx + 1, j + 1); /* held by the scratch table */
            else lua_pop(L, 1);                                     /* held by the command's table */
        }
        k = redisFormatCommandArgv(&cmd, argc, argv, argl);
        lua_pop(L, 1 + extra);
        if (k < 0) {
            free(out);
            return luaL_error(L, "redis: out of memory");
        }
        if (used + (size_t)k > cap) {
            char *nb;
            cap = (used + (size_t)k) * 2 + 256;
            nb = realloc(out, cap);
            if (!nb) {
                free(cmd);
                free(out);
                return luaL_error(L, "redis: out of memory");
            }
            out = nb;
        }
        memcpy(out + used, cmd, (size_t)k);
        used += (size_t)k;
        free(cmd);
    }
    if (count == 0) {
        free(out);
        return luaL_error(L, "redis: no command");
    }
    *buf = out;
    *len = used;
    *n = count;
    return 0;
}

/* One reply as Lua: string, integer, table, nil (inside a table: false),
 * an error as nil, message at the top or { err = message } inside. */
static void push_reply(lua_State *L, const redisReply *r, int nested)
{
    size_t i;
    switch (r->type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
        lua_pushlstring(L, r->str, r->len);
        break;
    case REDIS_REPLY_INTEGER:
        lua_pushinteger(L, (lua_Integer)r->integer);
        break;
    case REDIS_REPLY_ARRAY:
        if (!lua_checkstack(L, 4)) { /* nested past any real reply: a server gone wrong */
            lua_pushboolean(L, 0);
            break;
        }
        lua_createtable(L, (int)r->elements, 0);
        for (i = 0; i < r->elements; i++) {
            push_reply(L, r->element[i], 1);
            lua_rawseti(L, -2, (int)i + 1);
        }
        break;
    case REDIS_REPLY_ERROR:
        lua_createtable(L, 0, 1);
        lua_pushlstring(L, r->str, r->len);
        lua_setfield(L, -2, "err");
        break;
    default:
        if (nested) lua_pushboolean(L, 0);
        else lua_pushnil(L);
    }
}

int tl_redis_push_replies(lua_State *L, redisReply **rep, int n)
{
    int i;
    lua_createtable(L, n, 0);
    for (i = 0; i < n; i++) {
        push_reply(L, rep[i], 1);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

/* ---- options from a Lua table */

static char *opt_string(lua_State *L, int t, const char *name)
{
    char *s = NULL;
    lua_getfield(L, t, name);
    if (lua_type(L, -1) == LUA_TSTRING) s = strdup(lua_tostring(L, -1));
    else if (!lua_isnil(L, -1)) luaL_error(L, "redis: option %s must be a string", name);
    lua_pop(L, 1);
    return s;
}

static double opt_number(lua_State *L, int t, const char *name, double dflt)
{
    double v = dflt;
    lua_getfield(L, t, name);
    if (lua_type(L, -1) == LUA_TNUMBER) v = lua_tonumber(L, -1);
    else if (!lua_isnil(L, -1)) luaL_error(L, "redis: option %s must be a number", name);
    lua_pop(L, 1);
    return v;
}

void tl_redis_opts_read(lua_State *L, int t, tl_redis_opts *o)
{
    t = tl_absindex(L, t);
    luaL_checktype(L, t, LUA_TTABLE);
    memset(o, 0, sizeof *o);
    o->port = (int)opt_number(L, t, "port", 6379);
    o->db = (int)opt_number(L, t, "db", 0);
    o->timeout = opt_number(L, t, "timeout", 1.0);
    o->connect_timeout = opt_number(L, t, "connect_timeout", 1.0);
    lua_getfield(L, t, "tls");
    o->tls = lua_toboolean(L, -1);
    lua_pop(L, 1);
    /* strings last: a raise above leaks nothing */
    o->host = opt_string(L, t, "host");
    o->path = opt_string(L, t, "path");
    o->user = opt_string(L, t, "user");
    o->password = opt_string(L, t, "password");
    o->cainfo = opt_string(L, t, "cainfo");
    o->servername = opt_string(L, t, "servername");
}

/* ---- Lua: core.redis_connect(opts) -> conn; conn:pipeline(cmds), conn:call(...) */

typedef struct {
    tl_redis *r;
} lconn;

static tl_redis *check_conn(lua_State *L)
{
    lconn *c = luaL_checkudata(L, 1, REDIS_MT);
    if (!c->r) luaL_error(L, "redis: connection is closed");
    return c->r;
}

/* Runs the commands at idx; pushes the replies (a list) or nil, message, code. */
static int run_list(lua_State *L, tl_redis *r, int idx)
{
    char *buf = NULL, err[512];
    size_t len;
    int n, rc, i;
    const char *code = "failed";
    redisReply **rep;
    tl_redis_format(L, idx, &buf, &len, &n);
    rep = calloc((size_t)n, sizeof *rep);
    if (!rep) {
        free(buf);
        return luaL_error(L, "redis: out of memory");
    }
    err[0] = 0;
    rc = tl_redis_exchange(r, buf, len, n, rep, err, sizeof err, &code);
    free(buf);
    if (rc != 0) {
        free(rep);
        lua_pushnil(L);
        lua_pushstring(L, err);
        lua_pushstring(L, code);
        return 3;
    }
    tl_redis_push_replies(L, rep, n);
    for (i = 0; i < n; i++) freeReplyObject(rep[i]);
    free(rep);
    return 1;
}

static int l_pipeline(lua_State *L)
{
    tl_redis *r = check_conn(L);
    return run_list(L, r, 2);
}

static int l_call(lua_State *L)
{
    tl_redis *r = check_conn(L);
    int i, top = lua_gettop(L), n;
    lua_createtable(L, 1, 0);
    lua_createtable(L, top - 1, 0);
    for (i = 2; i <= top; i++) {
        lua_pushvalue(L, i);
        lua_rawseti(L, -2, i - 1);
    }
    lua_rawseti(L, -2, 1);
    n = run_list(L, r, top + 1);
    if (n == 3) return 3;
    lua_rawgeti(L, -1, 1);
    if (lua_istable(L, -1)) {
        lua_getfield(L, -1, "err");
        if (lua_type(L, -1) == LUA_TSTRING) {
            lua_pushnil(L);
            lua_insert(L, -2);
            lua_pushliteral(L, "redis");
            return 3;
        }
        lua_pop(L, 1);
    }
    if (lua_type(L, -1) == LUA_TBOOLEAN && !lua_toboolean(L, -1)) lua_pushnil(L);
    return 1;
}

static int l_close(lua_State *L)
{
    lconn *c = luaL_checkudata(L, 1, REDIS_MT);
    tl_redis_free(c->r);
    c->r = NULL;
    return 0;
}

static int l_tostring(lua_State *L)
{
    lconn *c = luaL_checkudata(L, 1, REDIS_MT);
    if (!c->r) lua_pushliteral(L, "telua.Redis (closed)");
    else if (c->r->o.path) lua_pushfstring(L, "telua.Redis (%s)", c->r->o.path);
    else lua_pushfstring(L, "telua.Redis (%s:%d%s)", c->r->o.host ? c->r->o.host : "127.0.0.1", c->r->o.port,
                         c->r->o.tls ? ", TLS" : "");
    return 1;
}

static int l_connect(lua_State *L)
{
    tl_redis_opts o;
    lconn *c;
    char err[512];
    const char *code = "failed";
    c = lua_newuserdata(L, sizeof *c);
    c->r = NULL;
    luaL_setmetatable(L, REDIS_MT);
    tl_redis_opts_read(L, 1, &o);
    c->r = tl_redis_new(&o);
    tl_redis_opts_free(&o);
    if (!c->r) return luaL_error(L, "redis: out of memory");
    err[0] = 0;
    if (ensure_open(c->r, err, sizeof err, &code) != 0) {
        tl_redis_free(c->r);
        c->r = NULL;
        lua_pushnil(L);
        lua_pushstring(L, err);
        lua_pushstring(L, code);
        return 3;
    }
    return 1;
}

/* core.sha1_hex(s): a script's SHA1, as EVALSHA names it */
static int l_sha1_hex(lua_State *L)
{
    size_t len, i;
    const char *s = luaL_checklstring(L, 1, &len);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    char out[2 * EVP_MAX_MD_SIZE + 1];
    if (EVP_Digest(s, len, md, &n, EVP_sha1(), NULL) != 1) return luaL_error(L, "sha1 failed");
    for (i = 0; i < n; i++) snprintf(out + 2 * i, 3, "%02x", md[i]);
    lua_pushlstring(L, out, 2 * n);
    return 1;
}

/* ---- a view of a key prefix kept by Redis (client-side caching)
 *
 * A process-wide table of which keys under a prefix exist, for reads
 * that every webhook makes (is there an opt-out for this recipient?).
 * It is kept exact by Redis's own invalidation messages, as its
 * client-side caching describes (https://redis.io/docs/manual/client-side-caching/):
 * a thread subscribes to __redis__:invalidate on one connection and, on a
 * second, turns on CLIENT TRACKING in broadcasting mode for the prefix
 * with its messages redirected to the first; every write of a key under
 * the prefix, by any client of that server, then names the key on the
 * first connection, and the key is dropped from the table. A fill is kept
 * only when no invalidation came between the read and the fill (the
 * epoch); while the subscription is not live (connecting, lost, Redis
 * down) the table is empty and every lookup goes to Redis. One view per
 * server and prefix, for the life of the process. */

#define VIEW_BUCKETS 16384
#define VIEW_MAX 200000

typedef struct ventry {
    struct ventry *next;
    unsigned char exists;
    char key[];
} ventry;

typedef struct view {
    struct view *next;           /* the process's views */
    char *id;                    /* the store's spec and the prefix */
    char *prefix;
    tl_redis_opts o;
    pthread_mutex_t mu;
    int live;                    /* guarded by mu */
    unsigned long long epoch;    /* guarded by mu: moves at every invalidation */
    size_t count;
    ventry *b[VIEW_BUCKETS];
} view;

static pthread_mutex_t views_mu = PTHREAD_MUTEX_INITIALIZER;
static view *views;

static unsigned view_hash(const char *k, size_t len)
{
    unsigned h = 2166136261u;
    size_t i;
    for (i = 0; i < len; i++) h = (h ^ (unsigned char)k[i]) * 16777619u;
    return h % VIEW_BUCKETS;
}

static void view_clear(view *v) /* mu held */
{
    size_t i;
    for (i = 0; i < VIEW_BUCKETS; i++) {
        ventry *e = v->b[i], *n;
        for (; e; e = n) {
            n = e->next;
            free(e);
        }
        v->b[i] = NULL;
    }
    v->count = 0;
    v->epoch++;
}

static void view_drop(view *v, const char *k, size_t len) /* mu held */
{
    ventry **pp = &v->b[view_hash(k, len)];
    v->epoch++;
    while (*pp) {
        ventry *e = *pp;
        if (strlen(e->key) == len && memcmp(e->key, k, len) == 0) {
            *pp = e->next;
            free(e);
            v->count--;
            return;
        }
        pp = &e->next;
    }
}

/* One command on r, its one reply (to free) or NULL. */
static redisReply *view_cmd(tl_redis *r, int argc, const char **argv)
{
    char *cmd = NULL, err[256];
    const char *code;
    redisReply *rep = NULL;
    int len = redisFormatCommandArgv(&cmd, argc, argv, NULL);
    if (len < 0) return NULL;
    if (tl_redis_exchange(r, cmd, (size_t)len, 1, &rep, err, sizeof err, &code) != 0) rep = NULL;
    free(cmd);
    return rep;
}

static void view_set_live(view *v, int live)
{
    pthread_mutex_lock(&v->mu);
    if (v->live != live || !live) view_clear(v);
    v->live = live;
    pthread_mutex_unlock(&v->mu);
}

/* Subscribes and turns tracking on: 0 when live. */
static int view_subscribe(view *v, tl_redis *sub, tl_redis *ctl)
{
    char id[32];
    const char *a_id[2] = { "CLIENT", "ID" };
    const char *a_sub[2] = { "SUBSCRIBE", "__redis__:invalidate" };
    const char *a_tr[8] = { "CLIENT", "TRACKING", "ON", "REDIRECT", id, "BCAST", "PREFIX", v->prefix };
    redisReply *rep = view_cmd(sub, 2, a_id);
    int ok;
    if (!rep || rep->type != REDIS_REPLY_INTEGER) {
        if (rep) freeReplyObject(rep);
        return -1;
    }
    snprintf(id, sizeof id, "%lld", rep->integer);
    freeReplyObject(rep);
    rep = view_cmd(sub, 2, a_sub);
    ok = rep && rep->type == REDIS_REPLY_ARRAY;
    if (rep) freeReplyObject(rep);
    if (!ok) return -1;
    rep = view_cmd(ctl, 8, a_tr);
    ok = rep && rep->type == REDIS_REPLY_STATUS;
    if (rep) freeReplyObject(rep);
    return ok ? 0 : -1;
}

/* An invalidation message: ["message", "__redis__:invalidate", [keys] or nil]. */
static void view_apply(view *v, redisReply *m)
{
    redisReply *keys;
    size_t i;
    if (m->type != REDIS_REPLY_ARRAY || m->elements != 3 || m->element[0]->type != REDIS_REPLY_STRING ||
        strcmp(m->element[0]->str, "message") != 0)
        return;
    keys = m->element[2];
    pthread_mutex_lock(&v->mu);
    if (keys->type == REDIS_REPLY_ARRAY) {
        for (i = 0; i < keys->elements; i++)
            if (keys->element[i]->type == REDIS_REPLY_STRING) view_drop(v, keys->element[i]->str, keys->element[i]->len);
    } else {
        view_clear(v); /* nil: FLUSHALL / FLUSHDB, everything goes */
    }
    pthread_mutex_unlock(&v->mu);
}

static void *view_main(void *arg)
{
    view *v = arg;
    tl_redis *sub = tl_redis_new(&v->o), *ctl = tl_redis_new(&v->o);
    const char *ping[1] = { "PING" };
    useconds_t backoff;
    if (!sub || !ctl) {
        tl_redis_free(sub);
        tl_redis_free(ctl);
        return NULL;
    }
    backoff = 100000;
    for (;;) {
        if (view_subscribe(v, sub, ctl) != 0) { /* down, or not allowed (ACL): lookups go to Redis meanwhile */
            drop(sub);
            drop(ctl);
            usleep(backoff);
            if (backoff < 5000000) backoff *= 2;
            continue;
        }
        backoff = 100000;
        view_set_live(v, 1);
        for (;;) { /* messages until the connection is lost */
            redisReply *m = NULL;
            struct pollfd p;
            int k;
            if (redisReaderGetReply(sub->reader, (void **)&m) != REDIS_OK) break;
            if (m) {
                view_apply(v, m);
                freeReplyObject(m);
                continue;
            }
            /* bytes OpenSSL already read from the socket are not seen by poll: read those first */
            if (!sub->ssl || SSL_pending(sub->ssl) == 0) {
                p.fd = sub->fd;
                p.events = POLLIN;
                p.revents = 0;
                k = poll(&p, 1, 1000);
                if (k < 0 && errno == EINTR) continue;
                if (k == 0) { /* quiet for a second: is the tracking connection still there? */
                    redisReply *r = view_cmd(ctl, 1, ping);
                    int ok = r && r->type == REDIS_REPLY_STATUS;
                    if (r) freeReplyObject(r);
                    if (!ok) break;
                    continue;
                }
            }
            {
                char buf[16384];
                ssize_t n = io_read(sub, buf, sizeof buf);
                if (n <= 0) break;
                redisReaderFeed(sub->reader, buf, (size_t)n);
            }
        }
        view_set_live(v, 0);
        drop(sub);
        drop(ctl);
        usleep(100000);
    }
    return NULL;
}

/* The view of (spec, prefix), made and started at its first use. */
static view *view_get(const char *spec, const char *prefix, const tl_redis_opts *o)
{
    view *v;
    size_t n = strlen(spec) + strlen(prefix) + 2;
    char *id = malloc(n);
    pthread_t t;
    pthread_attr_t at;
    if (!id) return NULL;
    snprintf(id, n, "%s\n%s", spec, prefix);
    pthread_mutex_lock(&views_mu);
    for (v = views; v; v = v->next)
        if (strcmp(v->id, id) == 0) break;
    if (v) {
        pthread_mutex_unlock(&views_mu);
        free(id);
        return v;
    }
    v = calloc(1, sizeof *v);
    if (!v || !(v->prefix = strdup(prefix)) || tl_redis_opts_copy(&v->o, o) != 0) {
        if (v) free(v->prefix);
        free(v);
        free(id);
        pthread_mutex_unlock(&views_mu);
        return NULL;
    }
    if (!views) { /* the thread outlives any lua_close: the code it runs must stay mapped (no dlclose) */
        Dl_info dli;
        if (dladdr((void *)view_main, &dli) && dli.dli_fname) dlopen(dli.dli_fname, RTLD_LAZY | RTLD_NOLOAD | RTLD_NODELETE);
    }
    v->id = id;
    v->o.timeout = 1.0;
    pthread_mutex_init(&v->mu, NULL);
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &at, view_main, v) != 0) {
        pthread_attr_destroy(&at);
        tl_redis_opts_free(&v->o);
        free(v->prefix);
        free(v->id);
        free(v);
        pthread_mutex_unlock(&views_mu);
        return NULL;
    }
    pthread_attr_destroy(&at);
    v->next = views;
    views = v;
    pthread_mutex_unlock(&views_mu);
    return v;
}

#define VIEW_MT "telua.RedisView"

/* core.redis_view(spec, prefix, opts): the process's view of the keys
 * under prefix on that server (see above), made at its first use. */
static int l_view(lua_State *L)
{
    const char *spec = luaL_checkstring(L, 1), *prefix = luaL_checkstring(L, 2);
    tl_redis_opts o;
    view *v;
    view **ud;
    tl_redis_opts_read(L, 3, &o);
    v = view_get(spec, prefix, &o);
    tl_redis_opts_free(&o);
    if (!v) return luaL_error(L, "redis: cannot start the view of %s", prefix);
    ud = lua_newuserdata(L, sizeof *ud);
    *ud = v;
    luaL_setmetatable(L, VIEW_MT);
    return 1;
}

/* view:get(key): true/false when the view knows whether key exists; else
 * nil and the epoch to hand to put. */
static int l_view_get(lua_State *L)
{
    view *v = *(view **)luaL_checkudata(L, 1, VIEW_MT);
    size_t len;
    const char *k = luaL_checklstring(L, 2, &len);
    ventry *e;
    int found = -1;
    unsigned long long epoch;
    pthread_mutex_lock(&v->mu);
    epoch = v->epoch;
    if (v->live)
        for (e = v->b[view_hash(k, len)]; e; e = e->next)
            if (strlen(e->key) == len && memcmp(e->key, k, len) == 0) {
                found = e->exists;
                break;
            }
    pthread_mutex_unlock(&v->mu);
    if (found >= 0) {
        lua_pushboolean(L, found);
        return 1;
    }
    lua_pushnil(L);
    lua_pushnumber(L, (lua_Number)epoch);
    return 2;
}

/* view:put(key, exists, epoch): keeps what a read found, unless the view
 * moved since get gave the epoch (an invalidation came between). */
static int l_view_put(lua_State *L)
{
    view *v = *(view **)luaL_checkudata(L, 1, VIEW_MT);
    size_t len;
    const char *k = luaL_checklstring(L, 2, &len);
    int exists = lua_toboolean(L, 3);
    unsigned long long epoch = (unsigned long long)luaL_checknumber(L, 4);
    ventry *e;
    unsigned h = view_hash(k, len);
    int kept = 0;
    pthread_mutex_lock(&v->mu);
    if (v->live && v->epoch == epoch) {
        if (v->count >= VIEW_MAX) view_clear(v); /* full: start again (the epoch moves, this fill goes too) */
        else if ((e = malloc(sizeof *e + len + 1)) != NULL) {
            memcpy(e->key, k, len);
            e->key[len] = 0;
            e->exists = (unsigned char)exists;
            e->next = v->b[h];
            v->b[h] = e;
            v->count++;
            kept = 1;
        }
    }
    pthread_mutex_unlock(&v->mu);
    lua_pushboolean(L, kept);
    return 1;
}

/* view:drop(key): forgets key now (this process wrote it: its own later
 * reads must not wait for the invalidation message). */
static int l_view_drop(lua_State *L)
{
    view *v = *(view **)luaL_checkudata(L, 1, VIEW_MT);
    size_t len;
    const char *k = luaL_checklstring(L, 2, &len);
    pthread_mutex_lock(&v->mu);
    view_drop(v, k, len);
    pthread_mutex_unlock(&v->mu);
    return 0;
}

/* view:live(): whether the subscription is up (the view answers). */
static int l_view_live(lua_State *L)
{
    view *v = *(view **)luaL_checkudata(L, 1, VIEW_MT);
    int live;
    pthread_mutex_lock(&v->mu);
    live = v->live;
    pthread_mutex_unlock(&v->mu);
    lua_pushboolean(L, live);
    return 1;
}

/* ---- Lua: core.redis_encode(cmds) and core.redis_reader(), for a socket
 * that is not ours (OpenResty's cosockets): hiredis's encoder and reply
 * reader over bytes the caller moves */

#define READER_MT "telua.RedisReader"

/* core.redis_encode(cmds) -> wire, n: the commands in RESP, as one string */
static int l_encode(lua_State *L)
{
    char *buf = NULL;
    size_t len;
    int n;
    tl_redis_format(L, 1, &buf, &len, &n);
    lua_pushlstring(L, buf, len);
    free(buf);
    lua_pushinteger(L, n);
    return 2;
}

typedef struct {
    redisReader *r;
} lreader;

static redisReader *check_reader(lua_State *L)
{
    lreader *x = luaL_checkudata(L, 1, READER_MT);
    if (!x->r) luaL_error(L, "redis: reader is closed");
    return x->r;
}

/* core.redis_reader() -> reader with feed(bytes) and next() */
static int l_reader(lua_State *L)
{
    lreader *x = lua_newuserdata(L, sizeof *x);
    x->r = NULL;
    luaL_setmetatable(L, READER_MT);
    x->r = redisReaderCreate();
    if (!x->r) return luaL_error(L, "redis: out of memory");
    return 1;
}

/* reader:feed(bytes) */
static int l_reader_feed(lua_State *L)
{
    redisReader *r = check_reader(L);
    size_t len;
    const char *b = luaL_checklstring(L, 2, &len);
    if (redisReaderFeed(r, b, len) != REDIS_OK) return luaL_error(L, "redis: out of memory");
    return 0;
}

/* reader:next() -> true, reply (as in a pipeline's list: nil as false, an
 * error as { err = message }) | false (more bytes needed) | nil, message */
static int l_reader_next(lua_State *L)
{
    redisReader *r = check_reader(L);
    void *rep = NULL;
    if (redisReaderGetReply(r, &rep) != REDIS_OK) {
        lua_pushnil(L);
        lua_pushfstring(L, "redis: protocol error: %s", r->errstr);
        return 2;
    }
    if (!rep) {
        lua_pushboolean(L, 0);
        return 1;
    }
    lua_pushboolean(L, 1);
    push_reply(L, rep, 1);
    freeReplyObject(rep);
    return 2;
}

static int l_reader_gc(lua_State *L)
{
    lreader *x = luaL_checkudata(L, 1, READER_MT);
    if (x->r) redisReaderFree(x->r);
    x->r = NULL;
    return 0;
}

void tl_open_redis(lua_State *L)
{
    if (luaL_newmetatable(L, REDIS_MT)) {
        lua_newtable(L);
        lua_pushcfunction(L, l_pipeline);
        lua_setfield(L, -2, "pipeline");
        lua_pushcfunction(L, l_call);
        lua_setfield(L, -2, "call");
        lua_pushcfunction(L, l_close);
        lua_setfield(L, -2, "close");
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, l_close);
        lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, l_tostring);
        lua_setfield(L, -2, "__tostring");
    }
    lua_pop(L, 1);
    if (luaL_newmetatable(L, VIEW_MT)) {
        lua_newtable(L);
        lua_pushcfunction(L, l_view_get);
        lua_setfield(L, -2, "get");
        lua_pushcfunction(L, l_view_put);
        lua_setfield(L, -2, "put");
        lua_pushcfunction(L, l_view_drop);
        lua_setfield(L, -2, "drop");
        lua_pushcfunction(L, l_view_live);
        lua_setfield(L, -2, "live");
        lua_setfield(L, -2, "__index");
    }
    lua_pop(L, 1);
    if (luaL_newmetatable(L, READER_MT)) {
        lua_newtable(L);
        lua_pushcfunction(L, l_reader_feed);
        lua_setfield(L, -2, "feed");
        lua_pushcfunction(L, l_reader_next);
        lua_setfield(L, -2, "next");
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, l_reader_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
    lua_pushcfunction(L, l_encode);
    lua_setfield(L, -2, "redis_encode");
    lua_pushcfunction(L, l_reader);
    lua_setfield(L, -2, "redis_reader");
    lua_pushcfunction(L, l_view);
    lua_setfield(L, -2, "redis_view");
    lua_pushcfunction(L, l_connect);
    lua_setfield(L, -2, "redis_connect");
    lua_pushcfunction(L, l_sha1_hex);
    lua_setfield(L, -2, "sha1_hex");
}

/* ---- jobs: prepared on a worker's state, run on its Redis thread */

struct tl_redis_job {
    tl_redis_opts o;
    char *key;                /* the connection it runs on (the store's spec) */
    char *buf;
    size_t len;
    int n;
    redisReply **rep;
    char err[512];
    const char *code;
    int failed;
};

/* The parts of prepare that may raise, run by the caller under lua_pcall
 * with the job as light userdata at 2 and the table at 1. */
static int prepare_parts(lua_State *L)
{
    tl_redis_job *j = lua_touserdata(L, 2);
    lua_getfield(L, 1, "opts");
    tl_redis_opts_read(L, -1, &j->o);
    lua_getfield(L, 1, "cmds");
    tl_redis_format(L, -1, &j->buf, &j->len, &j->n);
    return 0;
}

tl_redis_job *tl_redis_job_new(lua_State *L, int idx, char *err, size_t errlen)
{
    tl_redis_job *j = calloc(1, sizeof *j);
    if (!j) {
        snprintf(err, errlen, "redis: out of memory");
        return NULL;
    }
    idx = tl_absindex(L, idx);
    lua_getfield(L, idx, "key");
    if (lua_type(L, -1) == LUA_TSTRING) j->key = strdup(lua_tostring(L, -1));
    lua_pop(L, 1);
    lua_pushcfunction(L, prepare_parts);
    lua_pushvalue(L, idx);
    lua_pushlightuserdata(L, j);
    if (!j->key || lua_pcall(L, 2, 0, 0) != LUA_OK) {
        snprintf(err, errlen, "%s", j->key && lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1)
                                                                              : "redis job: bad options");
        if (j->key) lua_pop(L, 1);
        tl_redis_job_free(j);
        return NULL;
    }
    j->rep = calloc((size_t)j->n, sizeof *j->rep);
    if (!j->rep) {
        snprintf(err, errlen, "redis: out of memory");
        tl_redis_job_free(j);
        return NULL;
    }
    return j;
}

const char *tl_redis_job_key(const tl_redis_job *j) { return j->key; }
const tl_redis_opts *tl_redis_job_opts(const tl_redis_job *j) { return &j->o; }

void tl_redis_job_run(tl_redis_job *j, tl_redis *r)
{
    j->code = "failed";
    j->failed = tl_redis_exchange(r, j->buf, j->len, j->n, j->rep, j->err, sizeof j->err, &j->code) != 0;
}

void tl_redis_jobs_run(tl_redis_job **jobs, int n, tl_redis *r)
{
    size_t len = 0, off = 0;
    int total = 0, i, k = 0, rc;
    char *buf;
    redisReply **rep;
    if (n == 1) {
        tl_redis_job_run(jobs[0], r);
        return;
    }
    for (i = 0; i < n; i++) {
        len += jobs[i]->len;
        total += jobs[i]->n;
    }
    buf = malloc(len);
    rep = calloc((size_t)total, sizeof *rep);
    if (!buf || !rep) { /* one at a time, then */
        free(buf);
        free(rep);
        for (i = 0; i < n; i++) tl_redis_job_run(jobs[i], r);
        return;
    }
    for (i = 0; i < n; i++) {
        memcpy(buf + off, jobs[i]->buf, jobs[i]->len);
        off += jobs[i]->len;
    }
    jobs[0]->code = "failed";
    rc = tl_redis_exchange(r, buf, len, total, rep, jobs[0]->err, sizeof jobs[0]->err, &jobs[0]->code);
    for (i = 0; i < n; i++) {
        if (rc != 0) {
            if (i > 0) tl_redis_job_fail(jobs[i], jobs[0]->code, jobs[0]->err);
            jobs[i]->failed = 1;
        } else {
            memcpy(jobs[i]->rep, rep + k, (size_t)jobs[i]->n * sizeof *rep);
            k += jobs[i]->n;
            jobs[i]->failed = 0;
        }
    }
    free(buf);
    free(rep);
}

void tl_redis_job_fail(tl_redis_job *j, const char *code, const char *message)
{
    j->failed = 1;
    j->code = code;
    snprintf(j->err, sizeof j->err, "%s", message);
}

int tl_redis_job_failed(const tl_redis_job *j, const char **code, char *err, size_t errlen)
{
    if (!j->failed) return 0;
    *code = j->code ? j->code : "failed";
    snprintf(err, errlen, "%s", j->err);
    return 1;
}

int tl_redis_job_push(lua_State *L, tl_redis_job *j)
{
    if (j->failed) {
        lua_pushnil(L);
        lua_pushstring(L, j->err);
        lua_pushstring(L, j->code ? j->code : "failed");
        return 3;
    }
    return tl_redis_push_replies(L, j->rep, j->n);
}

void tl_redis_job_free(tl_redis_job *j)
{
    int i;
    if (!j) return;
    if (j->rep)
        for (i = 0; i < j->n; i++)
            if (j->rep[i]) freeReplyObject(j->rep[i]);
    free(j->rep);
    free(j->buf);
    free(j->key);
    tl_redis_opts_free(&j->o);
    free(j);
}
