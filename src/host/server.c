/*
 * server.c - the webhook server: libmicrohttpd front end, signature check
 * in C, rules in the worker's lua_State of the current generation.
 *
 * Threading: one single-threaded MHD daemon per worker, all listening on
 * the same address with SO_REUSEPORT, so the kernel spreads connections
 * evenly (MHD's own thread pool shares one accept queue and left one core
 * idle under load). Worker i only ever runs lua_State i of a generation,
 * so a state is touched by one thread. Handlers do no blocking network I/O
 * (the only I/O rules have is the SQLite store on local disk).
 */
#include "telua.h"
#include "gen.h"
#include "io.h"
#include "log.h"
#include "vm.h"

#include "../core/form.h"
#include "../core/signature.h"

#include <lauxlib.h>
#include <microhttpd.h>
#include <openssl/crypto.h>
#include <sqlite3.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <time.h>

#define DEFAULT_FALLBACK_VOICE                                                              \
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Say>We are sorry, an application " \
    "error has occurred. Please try again later.</Say><Hangup/></Response>"
#define DEFAULT_FALLBACK_MESSAGING "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>"

typedef struct worker {
    struct telua_host *h;
    int index;
    struct MHD_Daemon *daemon;
    tl_io *io;                /* the rules' HTTP requests and timers */
} worker;

struct telua_host {
    telua_config cfg;
    tl_vm *sender;            /* the sender thread's state (NULL: no sender) */
    pthread_t sender_thread;
    atomic_int stopping;
    worker *w;
    char *public_url, *fallback_voice, *fallback_messaging;
    tl_sig_key *key;          /* the auth token, prepared; the token itself is not kept */
    size_t public_len;
    tl_gens gens;
    atomic_ulong requests, rejected, errors;
    atomic_int inflight;      /* requests whose rules have not finished (some wait on I/O) */
    unsigned port;
    /* rejection log lines (400/403/413), at most REJECT_LOG_PER_S a second */
    pthread_mutex_t reject_mu;
    time_t reject_sec;
    unsigned reject_logged;
    unsigned long reject_unlogged;
};

/* Anyone can send requests that are turned away; a flood of them must not
 * become a flood of log lines. Past this many in a second, they are only
 * counted, and the count is logged with the next one logged. */
#define REJECT_LOG_PER_S 10

typedef struct req_ctx {
    char *uri;          /* raw request target as received: path + "?" + query */
    char *body;
    size_t len, cap;
    int started, too_large;
    /* the rules' coroutine, while the request runs (it may wait on I/O) */
    struct MHD_Connection *con;
    tl_gen *gen;        /* acquired for the whole request */
    int index;          /* the worker */
    lua_State *co;
    int co_ref, ctx_ref;
    tl_http_job *job;   /* the I/O it waits for */
    int io_kind;        /* IO_HTTP, IO_BATCH, IO_SLEEP; 0: none */
    long long budget_ns;
    char method[16];
    char *path;
} req_ctx;

enum { IO_HTTP = 1, IO_BATCH, IO_SLEEP };

void telua_config_defaults(telua_config *c)
{
    memset(c, 0, sizeof *c);
    c->listen = "127.0.0.1:8080";
    c->store = "memory";
    c->workers = 2;
    c->max_body = 64 * 1024;
    c->timeout_s = 10;
    c->cpu_ms = 200;
    c->mem_limit = 64u * 1024 * 1024;
    c->debounce_ms = 150;
    c->send_concurrency = 8;
}

static const char *lua_dir_of(const telua_config *c)
{
#ifndef TELUA_LUADIR
#define TELUA_LUADIR "/usr/local/share/lua/5.4"
#endif
    if (c->lua_dir) return c->lua_dir;
    if (getenv("TELUA_LUA_DIR")) return getenv("TELUA_LUA_DIR");
    return TELUA_LUADIR;
}

/* ---- the sender thread (lua/telua/sender.lua) -------------------------- */

static int sender_stopping(lua_State *L)
{
    telua_host *h = lua_touserdata(L, lua_upvalueindex(1));
    lua_pushboolean(L, atomic_load(&h->stopping));
    return 1;
}

static void *sender_main(void *arg)
{
    telua_host *h = arg;
    lua_State *L = h->sender->L;
    /* the stack holds: telua.host.sender, opts (built by start_sender) */
    if (tl_vm_pcall(h->sender, 1, 0, 0) != LUA_OK)
        tl_log("error", "sender stopped: %s", lua_tostring(L, -1));
    lua_settop(L, 0);
    return NULL;
}

/* Starts the sender when an account SID is configured. The auth token is
 * handed to the sender's client (kept in that state only). */
static int start_sender(telua_host *h, const telua_config *cfg, char *err, size_t errlen)
{
    lua_State *L;
    if (!cfg->account_sid) return 0;
    if (strncmp(cfg->store, "sqlite:", 7) != 0) {
        tl_log("warn", "outbound sending needs --store sqlite:FILE (the workers and the sender share it); no sender");
        return 0;
    }
    h->sender = tl_vm_new(0, 0, lua_dir_of(cfg));
    if (!h->sender) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    L = h->sender->L;
    lua_getglobal(L, "require");
    lua_pushliteral(L, "telua.host");
    if (tl_vm_pcall(h->sender, 1, 1, 0) != LUA_OK) {
        snprintf(err, errlen, "sender: %s", lua_tostring(L, -1));
        return -1;
    }
    lua_getfield(L, -1, "sender");
    lua_remove(L, -2);
    lua_createtable(L, 0, 8);
    lua_pushstring(L, cfg->store);
    lua_setfield(L, -2, "store");
    lua_pushstring(L, cfg->account_sid);
    lua_setfield(L, -2, "account_sid");
    lua_pushstring(L, cfg->auth_token);
    lua_setfield(L, -2, "auth_token");
    if (cfg->twilio_base_url) {
        lua_pushstring(L, cfg->twilio_base_url);
        lua_setfield(L, -2, "base_url");
    }
    if (cfg->send_rates) {
        lua_pushstring(L, cfg->send_rates);
        lua_setfield(L, -2, "rates");
    }
    lua_pushinteger(L, cfg->send_concurrency > 0 ? cfg->send_concurrency : 8);
    lua_setfield(L, -2, "concurrency");
    lua_pushlightuserdata(L, h);
    lua_pushcclosure(L, sender_stopping, 1);
    lua_setfield(L, -2, "stopping");
    if (pthread_create(&h->sender_thread, NULL, sender_main, h) != 0) {
        snprintf(err, errlen, "cannot start the sender thread");
        return -1;
    }
    return 0;
}


/* ---- responses ------------------------------------------------------- */

static enum MHD_Result reply(struct MHD_Connection *con, unsigned status, const char *ctype,
                            const char *body, size_t len)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    enum MHD_Result ret;
    if (!r) return MHD_NO;
    if (ctype) MHD_add_response_header(r, "Content-Type", ctype);
    ret = MHD_queue_response(con, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result send_text(struct MHD_Connection *con, unsigned status, const char *text)
{
    return reply(con, status, "text/plain; charset=utf-8", text, strlen(text));
}

/* GET /-/status: current generation and the last reload error (no secrets). */
static enum MHD_Result send_status(struct MHD_Connection *con, telua_host *h)
{
    char buf[8192], num[64];
    tl_gens *g = &h->gens;
    tl_gen *cur;
    /* build the JSON with a small fixed buffer writer */
    size_t o = 0;
#define PUT(...) o += (size_t)snprintf(buf + o, o < sizeof buf ? sizeof buf - o : 0, __VA_ARGS__)
    pthread_mutex_lock(&g->mu);
    cur = g->current;
    PUT("{\"generation\":%d,\"sha256\":\"%s\",\"loaded_at\":%lld,\"files\":%d,",
        cur ? cur->id : 0, cur ? cur->hash : "", cur ? (long long)cur->loaded_at : 0LL,
        cur ? cur->nfiles : 0);
    PUT("\"workers\":%d,\"reloads\":%lu,\"reload_failures\":%lu,", h->cfg.workers, g->reloads,
        g->failures);
    snprintf(num, sizeof num, "%lu", (unsigned long)atomic_load(&h->requests));
    PUT("\"requests\":%s,\"rejected\":%lu,\"rule_errors\":%lu,\"last_reload_error\":", num,
        (unsigned long)atomic_load(&h->rejected), (unsigned long)atomic_load(&h->errors));
    if (g->has_error) {
        /* escape file and message */
        const char *parts[2] = { g->last_error.file, g->last_error.message };
        char esc[2][2100];
        int i;
        for (i = 0; i < 2; i++) {
            const char *s = parts[i];
            size_t e = 0;
            for (; *s && e < sizeof esc[i] - 8; s++) {
                unsigned char c = (unsigned char)*s;
                if (c == '"' || c == '\\') { esc[i][e++] = '\\'; esc[i][e++] = (char)c; }
                else if (c < 0x20) e += (size_t)snprintf(esc[i] + e, 8, "\\u%04x", c);
                else esc[i][e++] = (char)c;
            }
            esc[i][e] = 0;
        }
        PUT("{\"file\":\"%s\",\"line\":", esc[0]);
        if (g->last_error.line) PUT("%d", g->last_error.line);
        else PUT("null");
        PUT(",\"message\":\"%s\",\"at\":%lld}", esc[1], (long long)g->last_error.at);
    } else {
        PUT("null");
    }
    PUT("}\n");
    pthread_mutex_unlock(&g->mu);
#undef PUT
    if (o >= sizeof buf) return send_text(con, 500, "status too large\n");
    return reply(con, 200, "application/json", buf, o);
}

/* ---- request context -------------------------------------------------- */

/* MHD_OPTION_URI_LOG_CALLBACK: sees the request target before MHD decodes
 * it; what it returns becomes the connection's request context. */
static void *uri_logger(void *cls, const char *uri, struct MHD_Connection *con)
{
    req_ctx *c = calloc(1, sizeof *c);
    (void)cls;
    (void)con;
    if (c) c->uri = strdup(uri ? uri : "/");
    return c;
}

static void completed(void *cls, struct MHD_Connection *con, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    req_ctx *c = *con_cls;
    (void)con;
    (void)toe;
    if (!c) return;
    if (c->gen) { /* ended while its rule was still running (the host stops) */
        lua_State *L = c->gen->vm[c->index]->L;
        atomic_fetch_sub(&((telua_host *)cls)->inflight, 1);
        luaL_unref(L, LUA_REGISTRYINDEX, c->co_ref);
        luaL_unref(L, LUA_REGISTRYINDEX, c->ctx_ref);
        tl_http_job_free(c->job);
        tl_gen_release(c->gen);
    }
    free(c->path);
    free(c->uri);
    free(c->body);
    free(c);
    *con_cls = NULL;
}

/* ---- the Lua call ----------------------------------------------------- */

static enum MHD_Result push_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    lua_State *L = cls;
    char lower[256];
    size_t i;
    (void)kind;
    for (i = 0; key[i] && i < sizeof lower - 1; i++)
        lower[i] = (char)((key[i] >= 'A' && key[i] <= 'Z') ? key[i] + 32 : key[i]);
    lower[i] = 0;
    lua_pushstring(L, value ? value : "");
    lua_setfield(L, -2, lower);
    return MHD_YES;
}

typedef struct {
    tl_param *p;
    size_t n, cap;
    int oom;
} param_list;

/* Collects decoded pairs as tl_param pointing into a private copy. */
static int collect_param(void *ud, const char *k, size_t kl, const char *v, size_t vl)
{
    param_list *l = ud;
    char *copy;
    if (l->n == l->cap) {
        size_t nc = l->cap ? 2 * l->cap : 32;
        tl_param *np = realloc(l->p, nc * sizeof *np);
        if (!np) { l->oom = 1; return 1; }
        l->p = np;
        l->cap = nc;
    }
    copy = malloc(kl + vl + 1);
    if (!copy) { l->oom = 1; return 1; }
    memcpy(copy, k, kl);
    memcpy(copy + kl, v, vl);
    l->p[l->n].key = copy;
    l->p[l->n].key_len = kl;
    l->p[l->n].value = copy + kl;
    l->p[l->n].value_len = vl;
    l->n++;
    return 0;
}

static void free_params(param_list *l)
{
    size_t i;
    for (i = 0; i < l->n; i++) free((void *)l->p[i].key);
    free(l->p);
}

/* The I/O thread calls this when what a rule waits for is done. */
static void io_done(void *arg)
{
    req_ctx *c = arg;
    MHD_resume_connection(c->con);
}

/* lua_pcall'd: tl_http_prepare(options at 1, batch flag at 2) -> job in upvalue */
static int prepare_cf(lua_State *L)
{
    tl_http_job **out = lua_touserdata(L, lua_upvalueindex(1));
    *out = tl_http_prepare(L, 1, lua_toboolean(L, 2));
    return 0;
}

/* Ends a request's Lua side: the coroutine (kept for the next request
 * when it finished normally: a dead coroutine in status LUA_OK can run a
 * new function) and the generation. */
static void end_rules(req_ctx *c)
{
    tl_vm *vm = c->gen->vm[c->index];
    lua_State *L = vm->L;
    if (vm->idle_co_ref == LUA_NOREF && lua_status(c->co) == LUA_OK && lua_gettop(c->co) == 0)
        vm->idle_co_ref = c->co_ref;
    else
        luaL_unref(L, LUA_REGISTRYINDEX, c->co_ref);
    luaL_unref(L, LUA_REGISTRYINDEX, c->ctx_ref);
    c->co = NULL;
    tl_gen_release(c->gen);
    c->gen = NULL;
}

/* Resumes the rules' coroutine with nargs values on its stack and acts on
 * how it stops: an answer, an error (fallback), or a wait for I/O (the
 * connection is suspended until the I/O thread is done). */
static enum MHD_Result step(telua_host *h, req_ctx *c, int nargs)
{
    struct MHD_Connection *con = c->con;
    tl_vm *vm = c->gen->vm[c->index];
    lua_State *L = vm->L, *co = c->co;
    int rc, nres = 0;
    enum MHD_Result ret;
    for (;;) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, c->co_ref); /* telua.http yields only from this coroutine */
        lua_setfield(L, LUA_REGISTRYINDEX, "telua.host_co");
        rc = tl_vm_resume(vm, co, nargs, &nres, h->cfg.cpu_ms ? &c->budget_ns : NULL);
        lua_pushboolean(L, 0);
        lua_setfield(L, LUA_REGISTRYINDEX, "telua.host_co");
        if (rc != LUA_YIELD) break;
        /* a wait: "telua.io", kind, arg [, arg2] */
        {
            int base = lua_gettop(co) - nres + 1;
            const char *tag = nres >= 2 ? lua_tostring(co, base) : NULL;
            const char *kind = nres >= 2 ? lua_tostring(co, base + 1) : NULL;
            if (!tag || strcmp(tag, "telua.io") != 0 || !kind) {
                lua_settop(co, 0);
                lua_pushliteral(co, "a rule yielded something the host does not wait for (only telua.http and "
                                    "telua.http.sleep may yield)");
                rc = LUA_ERRRUN;
                break;
            }
            if (strcmp(kind, "sleep") == 0) {
                double sec = lua_tonumber(co, base + 2);
                lua_settop(co, 0);
                if (tl_io_sleep(h->w[c->index].io, sec > 0 ? sec : 0, io_done, c) == 0) {
                    c->io_kind = IO_SLEEP;
                    MHD_suspend_connection(con);
                    return MHD_YES;
                }
                nargs = 0; /* the host is stopping: go on at once */
                continue;
            } else {
                int batch = strcmp(kind, "batch") == 0;
                tl_http_job *job = NULL;
                lua_pushlightuserdata(L, &job);
                lua_pushcclosure(L, prepare_cf, 1);
                lua_pushvalue(co, base + 2);
                lua_xmove(co, L, 1);
                lua_pushboolean(L, batch);
                if (lua_pcall(L, 2, 0, 0) != LUA_OK) { /* bad options: an error value, as http.request gives */
                    lua_settop(co, 0);
                    lua_pushnil(co);
                    lua_pushstring(co, lua_tostring(L, -1));
                    lua_pushliteral(co, "bad_request");
                    lua_pop(L, 1);
                    nargs = 3;
                    continue;
                }
                lua_settop(co, 0);
                if (tl_io_http(h->w[c->index].io, job, io_done, c) == 0) {
                    c->job = job;
                    c->io_kind = batch ? IO_BATCH : IO_HTTP;
                    MHD_suspend_connection(con);
                    return MHD_YES;
                }
                tl_http_job_abort(job); /* the host is stopping */
                nargs = tl_http_job_push(co, job, batch);
                tl_http_job_free(job);
                continue;
            }
        }
    }
    if (rc == LUA_OK && nres >= 1 && lua_istable(co, -nres)) {
        int t = lua_gettop(co) - nres + 1;
        unsigned status;
        const char *ctype, *body;
        size_t blen = 0;
        lua_getfield(co, t, "status");
        status = (unsigned)luaL_optinteger(co, -1, 200);
        lua_getfield(co, t, "content_type");
        ctype = lua_isstring(co, -1) ? lua_tostring(co, -1) : "text/xml";
        lua_getfield(co, t, "body");
        body = lua_isstring(co, -1) ? lua_tolstring(co, -1, &blen) : "";
        ret = reply(con, status, ctype, body, blen);
    } else {
        const char *kind, *rule, *fallback;
        const char *err = rc == LUA_OK ? "handler returned no response table"
                                       : (lua_isstring(co, -1) ? lua_tostring(co, -1) : "error");
        lua_rawgeti(L, LUA_REGISTRYINDEX, c->ctx_ref);
        lua_getfield(L, -1, "kind");
        kind = lua_isstring(L, -1) ? lua_tostring(L, -1) : "voice";
        lua_getfield(L, -2, "rule");
        rule = lua_isstring(L, -1) ? lua_tostring(L, -1) : "?";
        atomic_fetch_add(&h->errors, 1);
        tl_log("error", "rule %s failed on %s %s (generation %d): %s", rule, c->method, c->path, c->gen->id, err);
        fallback = strcmp(kind, "voice") == 0 ? h->fallback_voice : h->fallback_messaging;
        if (strcmp(kind, "status") == 0) ret = send_text(con, 500, "status handler failed\n");
        else ret = reply(con, 200, "text/xml", fallback, strlen(fallback));
        lua_pop(L, 3);
    }
    lua_settop(co, 0);
    end_rules(c);
    atomic_fetch_sub(&h->inflight, 1);
    return ret;
}

/* MHD calls the handler again for a resumed connection: the I/O is done;
 * hand its result to the coroutine and go on. */
static enum MHD_Result resume_rules(telua_host *h, req_ctx *c)
{
    int n = 0;
    if (c->io_kind == IO_HTTP || c->io_kind == IO_BATCH) {
        n = tl_http_job_push(c->co, c->job, c->io_kind == IO_BATCH);
        tl_http_job_free(c->job);
        c->job = NULL;
    }
    c->io_kind = 0;
    return step(h, c, n);
}

/* Runs the rules for one verified request, as a coroutine of the worker's
 * state in the current generation, and queues the answer (now, or after
 * the I/O the rules wait for). */
static enum MHD_Result run_rules(telua_host *h, int index, struct MHD_Connection *con, req_ctx *c,
                                 const char *method, const char *path, const char *query, const char *url,
                                 param_list *params, const char *raw_body, size_t raw_len)
{
    tl_gen *gen = tl_gen_acquire(&h->gens);
    tl_vm *vm;
    lua_State *L, *co;
    size_t i;
    if (!gen) return send_text(con, 503, "no rules loaded\n");
    vm = gen->vm[index];
    L = vm->L;
    if (vm->idle_co_ref != LUA_NOREF) { /* reuse the last finished coroutine */
        c->co_ref = vm->idle_co_ref;
        vm->idle_co_ref = LUA_NOREF;
        lua_rawgeti(L, LUA_REGISTRYINDEX, c->co_ref);
        co = lua_tothread(L, -1);
        lua_pop(L, 1);
    } else {
        co = lua_newthread(L);
        c->co_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    atomic_fetch_add(&h->inflight, 1);
    c->co = co;
    c->gen = gen;
    c->index = index;
    c->con = con;
    c->budget_ns = (long long)h->cfg.cpu_ms * 1000000LL;
    snprintf(c->method, sizeof c->method, "%s", method);
    free(c->path);
    c->path = strdup(path);
    lua_rawgeti(L, LUA_REGISTRYINDEX, vm->handler_ref);
    lua_createtable(L, 0, 8); /* req */
    lua_pushstring(L, method);
    lua_setfield(L, -2, "method");
    lua_pushstring(L, path);
    lua_setfield(L, -2, "path");
    lua_pushstring(L, query ? query : "");
    lua_setfield(L, -2, "query");
    lua_pushstring(L, url);
    lua_setfield(L, -2, "url");
    lua_createtable(L, (int)params->n, 0);
    for (i = 0; i < params->n; i++) {
        lua_createtable(L, 2, 0);
        lua_pushlstring(L, params->p[i].key, params->p[i].key_len);
        lua_rawseti(L, -2, 1);
        lua_pushlstring(L, params->p[i].value, params->p[i].value_len);
        lua_rawseti(L, -2, 2);
        lua_rawseti(L, -2, (int)i + 1);
    }
    lua_setfield(L, -2, "form");
    lua_newtable(L);
    MHD_get_connection_values(con, MHD_HEADER_KIND, push_header, L);
    lua_setfield(L, -2, "headers");
    if (raw_body) {
        lua_pushlstring(L, raw_body, raw_len);
        lua_setfield(L, -2, "body");
    }
    lua_newtable(L); /* ctx: the router records kind and rule here */
    lua_pushvalue(L, -1);
    c->ctx_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_xmove(L, co, 3); /* handler, req, ctx */
    return step(h, c, 2);
}

/* Logs a turned-away request ("400 ...", "403 ...", "413 ...") unless this
 * second's share is used up; the path is attacker-chosen, so it goes
 * through "%s" only, cut at 200 bytes. */
static void log_rejected(telua_host *h, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    time_t now = time(NULL);
    unsigned long unlogged = 0;
    int go;
    pthread_mutex_lock(&h->reject_mu);
    if (now != h->reject_sec) {
        h->reject_sec = now;
        h->reject_logged = 0;
    }
    go = h->reject_logged < REJECT_LOG_PER_S;
    if (go) {
        h->reject_logged++;
        unlogged = h->reject_unlogged;
        h->reject_unlogged = 0;
    } else {
        h->reject_unlogged++;
    }
    pthread_mutex_unlock(&h->reject_mu);
    if (!go) return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (unlogged)
        tl_log("warn", "%s (and %lu more turned away, not logged: over %d lines a second)", msg, unlogged,
               REJECT_LOG_PER_S);
    else
        tl_log("warn", "%s", msg);
}

static int is_form(const char *ctype)
{
    static const char f[] = "application/x-www-form-urlencoded";
    return ctype && strncasecmp(ctype, f, sizeof f - 1) == 0 &&
           (ctype[sizeof f - 1] == 0 || ctype[sizeof f - 1] == ';' || ctype[sizeof f - 1] == ' ');
}

static enum MHD_Result handle(telua_host *h, int index, struct MHD_Connection *con, req_ctx *c,
                              const char *method)
{
    char *path, *query, *url, *scratch = NULL;
    const char *sig, *ctype, *raw_body = NULL;
    param_list params = { NULL, 0, 0, 0 };
    size_t ulen, pos = 0, raw_len = 0;
    int src;
    enum MHD_Result ret;

    atomic_fetch_add(&h->requests, 1);
    if (c->too_large) return send_text(con, 413, "request body too large\n");
    path = strdup(c->uri);
    if (!path) return MHD_NO;
    query = strchr(path, '?');
    if (query) *query++ = 0;
    if (strcmp(method, "GET") == 0 && strcmp(path, "/-/status") == 0) {
        free(path);
        return send_status(con, h);
    }
    if (strcmp(method, "GET") == 0 && strcmp(path, "/-/health") == 0) {
        free(path);
        return send_text(con, 200, "ok\n");
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0) {
        free(path);
        return send_text(con, 405, "webhooks are GET or POST\n");
    }
    /* the URL Twilio requested: public base + the request target as received */
    ulen = h->public_len + strlen(c->uri);
    url = malloc(ulen + 1);
    if (!url) {
        free(path);
        return MHD_NO;
    }
    memcpy(url, h->public_url, h->public_len);
    strcpy(url + h->public_len, c->uri);

    ctype = MHD_lookup_connection_value(con, MHD_HEADER_KIND, "Content-Type");
    sig = MHD_lookup_connection_value(con, MHD_HEADER_KIND, "X-Twilio-Signature");
    if (c->len > 0 && !is_form(ctype)) {
        raw_body = c->body;
        raw_len = c->len;
    } else if (c->len > 0) {
        scratch = malloc(c->len);
        if (!scratch) {
            ret = MHD_NO;
            goto out;
        }
        if (tl_form_decode(c->body, c->len, scratch, collect_param, &params, &pos) != TL_FORM_OK ||
            params.oom) {
            char msg[96];
            atomic_fetch_add(&h->rejected, 1);
            snprintf(msg, sizeof msg, "malformed form body (bad percent escape at byte %zu)\n", pos + 1);
            log_rejected(h, "400 %s %.200s: malformed form body", method, path);
            ret = send_text(con, 400, params.oom ? "out of memory\n" : msg);
            goto out;
        }
    }
    src = tl_sig_validate_key(h->key, url, ulen, params.p, params.n,
                          sig ? sig : "", sig ? strlen(sig) : 0, raw_body, raw_len);
    if (src != TL_SIG_VALID) {
        atomic_fetch_add(&h->rejected, 1);
        log_rejected(h, "403 %s %.200s: %s", method, path, tl_sig_reason(src));
        ret = send_text(con, 403, "invalid Twilio signature\n");
        goto out;
    }
    ret = run_rules(h, index, con, c, method, path, query, url, &params, raw_body, raw_len);
out:
    free_params(&params);
    free(scratch);
    free(url);
    free(path);
    return ret;
}

static enum MHD_Result access_cb(void *cls, struct MHD_Connection *con, const char *url,
                                 const char *method, const char *version, const char *upload,
                                 size_t *upload_size, void **con_cls)
{
    worker *w = cls;
    telua_host *h = w->h;
    req_ctx *c = *con_cls;
    (void)url;
    (void)version;
    if (!c) return MHD_NO;
    if (c->gen) return resume_rules(h, c); /* back from I/O */
    if (!c->started) {
        const char *cl = MHD_lookup_connection_value(con, MHD_HEADER_KIND, "Content-Length");
        c->started = 1;
        /* far over the limit: answer now and drop the connection; a little
         * over: read and discard, so the client sees the 413 */
        if (cl && strtoull(cl, NULL, 10) > h->cfg.max_body + (size_t)1024 * 1024) {
            atomic_fetch_add(&h->requests, 1);
            atomic_fetch_add(&h->rejected, 1);
            log_rejected(h, "413 %s: body of %.30s bytes over the %zu byte limit", method, cl, h->cfg.max_body);
            return send_text(con, 413, "request body too large\n");
        }
        return MHD_YES;
    }
    if (*upload_size) {
        size_t n = *upload_size;
        if (!c->too_large && c->len + n > h->cfg.max_body) {
            c->too_large = 1;
            free(c->body);
            c->body = NULL;
            c->len = c->cap = 0;
        }
        if (!c->too_large) {
            if (c->len + n > c->cap) {
                size_t nc = c->cap ? c->cap : 1024;
                char *nb;
                while (nc < c->len + n) nc *= 2;
                if (nc > h->cfg.max_body) nc = h->cfg.max_body;
                nb = realloc(c->body, nc);
                if (!nb) return MHD_NO;
                c->body = nb;
                c->cap = nc;
            }
            memcpy(c->body + c->len, upload, n);
            c->len += n;
        }
        *upload_size = 0;
        return MHD_YES;
    }
    return handle(h, w->index, con, c, method);
}

/* ---- start / stop ----------------------------------------------------- */

static int parse_listen(const char *s, struct sockaddr_storage *ss, socklen_t *len, int *v6)
{
    char host[256];
    const char *colon;
    long port;
    memset(ss, 0, sizeof *ss);
    if (s[0] == '[') {
        const char *end = strchr(s, ']');
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
        if (!end || end[1] != ':' || (size_t)(end - s - 1) >= sizeof host) return -1;
        memcpy(host, s + 1, (size_t)(end - s - 1));
        host[end - s - 1] = 0;
        port = strtol(end + 2, NULL, 10);
        if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1) return -1;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((unsigned short)port);
        *len = sizeof *a;
        *v6 = 1;
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)ss;
        colon = strrchr(s, ':');
        if (!colon || (size_t)(colon - s) >= sizeof host) return -1;
        memcpy(host, s, (size_t)(colon - s));
        host[colon - s] = 0;
        port = strtol(colon + 1, NULL, 10);
        if (inet_pton(AF_INET, host, &a->sin_addr) != 1) return -1;
        a->sin_family = AF_INET;
        a->sin_port = htons((unsigned short)port);
        *len = sizeof *a;
        *v6 = 0;
    }
    return (port < 0 || port > 65535) ? -1 : 0;
}

/* The I/O threads first: they finish or abort what rules wait for and
 * resume those connections, so no connection stays suspended; then the
 * daemons, which let in-flight requests end. */
/* Waits until no request's rules are running, for at most `seconds`. */
static void wait_inflight(telua_host *h, double seconds)
{
    long long deadline = tl_now_ns() + (long long)(seconds * 1e9);
    struct timespec tick = { 0, 10 * 1000000 };
    while (atomic_load(&h->inflight) > 0 && tl_now_ns() < deadline) nanosleep(&tick, NULL);
}

/* Stopping: no new connections; requests in flight (rules waiting on
 * HTTP or a sleep) get STOP_GRACE_S to finish; then their I/O is aborted
 * (the rules see a transport error and still answer), and the daemons
 * stop. Twilio gives up on a webhook after 15 s, so waiting longer than
 * that would help no one. */
#define STOP_GRACE_S 10.0
static void stop_daemons(telua_host *h)
{
    int i;
    for (i = 0; i < h->cfg.workers; i++)
        if (h->w[i].daemon) {
            MHD_socket fd = MHD_quiesce_daemon(h->w[i].daemon);
            if (fd != MHD_INVALID_SOCKET) close(fd);
        }
    wait_inflight(h, STOP_GRACE_S);
    for (i = 0; i < h->cfg.workers; i++) tl_io_stop(h->w[i].io);
    wait_inflight(h, 1.0); /* the aborted ones answer */
    for (i = 0; i < h->cfg.workers; i++)
        if (h->w[i].daemon) {
            MHD_stop_daemon(h->w[i].daemon);
            h->w[i].daemon = NULL;
        }
    for (i = 0; i < h->cfg.workers; i++) {
        tl_io_free(h->w[i].io);
        h->w[i].io = NULL;
    }
}

static void host_free(telua_host *h)
{
    tl_sig_key_free(h->key);
    free(h->public_url);
    free(h->fallback_voice);
    free(h->fallback_messaging);
    free(h->w);
    pthread_mutex_destroy(&h->reject_mu);
    free(h);
}

int telua_host_start(const telua_config *cfg, telua_host **out, char *err, size_t errlen)
{
    telua_host *h;
    struct sockaddr_storage ss;
    socklen_t sl;
    int v6;
    tl_load_error le;
    const union MHD_DaemonInfo *info;
    int i;

    *out = NULL;
    if (!cfg->rules_dir || !cfg->public_url || !cfg->auth_token || !cfg->auth_token[0]) {
        snprintf(err, errlen, "rules_dir, public_url and auth_token are required");
        return -1;
    }
    if (parse_listen(cfg->listen, &ss, &sl, &v6) != 0) {
        snprintf(err, errlen, "cannot parse listen address '%s' (want HOST:PORT or [V6]:PORT)", cfg->listen);
        return -1;
    }
    h = calloc(1, sizeof *h);
    if (!h) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    h->cfg = *cfg;
    pthread_mutex_init(&h->reject_mu, NULL);
    if (h->cfg.workers < 1) h->cfg.workers = 1;
    h->key = tl_sig_key_new(cfg->auth_token, strlen(cfg->auth_token));
    h->public_url = strdup(cfg->public_url);
    h->fallback_voice = strdup(cfg->fallback_voice ? cfg->fallback_voice : DEFAULT_FALLBACK_VOICE);
    h->fallback_messaging = strdup(cfg->fallback_messaging ? cfg->fallback_messaging : DEFAULT_FALLBACK_MESSAGING);
    if (!h->key || !h->public_url || !h->fallback_voice || !h->fallback_messaging) {
        host_free(h);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    h->public_len = strlen(h->public_url);
    while (h->public_len > 0 && h->public_url[h->public_len - 1] == '/') h->public_url[--h->public_len] = 0;
    h->w = calloc((size_t)h->cfg.workers, sizeof *h->w);
    if (!h->w) {
        host_free(h);
        snprintf(err, errlen, "out of memory");
        return -1;
    }

    /* SQLite's allocation statistics take a process-wide mutex on every
     * malloc; the workers' connections would contend on it. Only possible
     * before SQLite initialises, so it is a no-op for an embedder that
     * already used SQLite. */
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    h->gens.rules_dir = cfg->rules_dir;
    h->gens.lua_dir = lua_dir_of(cfg);
    h->gens.store = cfg->store;
    h->gens.workers = h->cfg.workers;
    h->gens.mem_limit = cfg->mem_limit;
    h->gens.cpu_ms = cfg->cpu_ms;
    h->gens.debounce_ms = cfg->debounce_ms;
    if (tl_gens_init(&h->gens, &le) != 0) {
        if (le.line) snprintf(err, errlen, "%s:%d: %s", le.file, le.line, le.message);
        else snprintf(err, errlen, "%s: %s", le.file, le.message);
        host_free(h);
        return -1;
    }
    for (i = 0; i < h->cfg.workers; i++) {
        worker *w = &h->w[i];
        w->h = h;
        w->index = i;
        w->io = tl_io_start();
        if (!w->io) {
            snprintf(err, errlen, "cannot start an I/O thread");
            stop_daemons(h);
            tl_gens_close(&h->gens);
            host_free(h);
            return -1;
        }
        w->daemon = MHD_start_daemon(
            MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | (v6 ? MHD_USE_IPv6 : 0),
            0, NULL, NULL,
            access_cb, w,
            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
            MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u,
            MHD_OPTION_CONNECTION_TIMEOUT, cfg->timeout_s,
            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)16 * 1024, /* headers; MHD zeroes it per request */
            MHD_OPTION_CONNECTION_LIMIT, 4096u,
            MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u,
            MHD_OPTION_URI_LOG_CALLBACK, uri_logger, h,
            MHD_OPTION_NOTIFY_COMPLETED, completed, h,
            MHD_OPTION_END);
        if (!w->daemon) {
            snprintf(err, errlen, "cannot listen on %s", cfg->listen);
            stop_daemons(h);
            tl_gens_close(&h->gens);
            host_free(h);
            return -1;
        }
        if (i == 0) { /* the others share the port the first one bound (port 0 picks one) */
            info = MHD_get_daemon_info(w->daemon, MHD_DAEMON_INFO_BIND_PORT);
            h->port = info ? info->port : 0;
            if (v6) ((struct sockaddr_in6 *)&ss)->sin6_port = htons((unsigned short)h->port);
            else ((struct sockaddr_in *)&ss)->sin_port = htons((unsigned short)h->port);
        }
    }
    if (start_sender(h, cfg, err, errlen) != 0) {
        stop_daemons(h);
        tl_gens_close(&h->gens);
        tl_vm_free(h->sender);
        host_free(h);
        return -1;
    }
    if (tl_gens_watch(&h->gens) != 0) tl_log("warn", "cannot start the rules watcher; hot reload is off");
    *out = h;
    return 0;
}

unsigned telua_host_port(const telua_host *h) { return h->port; }

void telua_host_stop(telua_host *h)
{
    if (!h) return;
    stop_daemons(h); /* joins the workers: in-flight requests finish */
    if (h->sender) { /* the sender finishes the batch in flight, then returns */
        atomic_store(&h->stopping, 1);
        pthread_join(h->sender_thread, NULL);
        tl_vm_free(h->sender);
    }
    tl_gens_close(&h->gens);
    host_free(h);
}

int telua_check(const telua_config *c, FILE *out)
{
    char **files = NULL;
    int n = tl_list_rules(c->rules_dir, &files);
    tl_load_error err;
    tl_vm *vm;
    if (n < 0) {
        fprintf(out, "%s: cannot read the rules folder\n", c->rules_dir);
        return 1;
    }
    vm = tl_load_rules(c->rules_dir, lua_dir_of(c), "memory", c->mem_limit, c->cpu_ms, files, n, &err);
    if (!vm) {
        if (err.line) fprintf(out, "%s:%d: %s\n", err.file, err.line, err.message);
        else fprintf(out, "%s: %s\n", err.file, err.message);
        fprintf(out, "telua: rules in %s failed to load\n", c->rules_dir);
        tl_free_list(files, n);
        return 1;
    }
    fprintf(out, "telua: rules in %s are ok (%d files)\n", c->rules_dir, n);
    tl_vm_free(vm);
    tl_free_list(files, n);
    return 0;
}
