/*
 * driver.c - runs a verified request's rules (see host.h).
 *
 * The handler runs as a coroutine of the worker's lua_State in the
 * request's generation. Each slice of it - building `req`, resuming,
 * taking a yield for I/O, reading the answer, building an error message
 * with its traceback - runs inside one lua_pcall of slice_cf, so no Lua
 * error (a bad answer, memory running out anywhere) can escape into the
 * host; what is left outside is plain C on the slice's results. A panic
 * would mean a bug in this file: the state's panic handler jumps back to
 * step(), the request gets a 500, and the generation is rebuilt.
 */
#include "host.h"
#include "log.h"
#include "vm.h"
#include "../core/form.h"
#include "watchdog.h"
#include "../lua/redis.h"

#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { A_ANSWER = 1, A_SLEEP, A_HTTP, A_REDIS, A_FAIL };

/* What one slice was asked to do and what it found. Pointers to strings
 * point into values slice_cf leaves on the state's stack. */
typedef struct slice {
    telua_host *h;
    req_ctx *c;
    /* in, for the first slice: the request */
    int first;
    const char *method, *path, *query, *url, *raw_body, *form_raw;
    const tl_param *params;
    size_t nparams, raw_len, form_len;
    /* out */
    int action;
    int rc;                   /* the last lua_resume status */
    int bad_result;           /* A_FAIL: the rules answered something that is no HTTP answer */
    int drop_co;              /* the coroutine must not be reused */
    int store_failed;         /* A_ANSWER: the router's 503 for a store write that failed */
    unsigned status;
    const char *ctype, *body, *err, *kind, *rule, *route;
    size_t blen;
    double sleep_s;
    tl_http_job *job;
    tl_redis_job *rjob;
    int batch;
} slice;

static void io_done(void *arg)
{
    req_ctx *c = arg;
    MHD_resume_connection(c->con);
}

/* A rule's "file:line" relative to the rules folder when it is in it
 * ("/srv/rules/sms.lua:12" -> "sms.lua:12"): the form logs and metric
 * labels show. */
static const char *in_rules(const telua_host *h, const char *rule)
{
    const char *dir = h->cfg.rules_dir;
    size_t n = strlen(dir);
    if (n && strncmp(rule, dir, n) == 0 && (rule[n] == '/' || dir[n - 1] == '/')) {
        rule += n;
        while (*rule == '/') rule++;
    }
    return rule;
}

/* lua_pcall'd by slice_cf: tl_http_prepare(options at 1, batch flag at 2),
 * the job stored through the pointer at 3 */
static int prepare_cf(lua_State *L)
{
    tl_http_job **out = lua_touserdata(L, 3);
    *out = tl_http_prepare(L, 1, lua_toboolean(L, 2));
    return 0;
}

/* The header lines of req.header_lines: "name: value\n", names in lower
 * case (what the router turns into req.headers when a rule reads it). */
static enum MHD_Result add_header_line(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    luaL_Buffer *b = cls;
    size_t i;
    (void)kind;
    for (i = 0; key[i]; i++) luaL_addchar(b, (char)((key[i] >= 'A' && key[i] <= 'Z') ? key[i] + 32 : key[i]));
    luaL_addlstring(b, ": ", 2);
    if (value) luaL_addstring(b, value);
    luaL_addchar(b, '\n');
    return MHD_YES;
}

/* A query field: into the params table at -1 unless the body had it. */
static int add_query_param(void *ud, const char *k, size_t kl, const char *v, size_t vl)
{
    lua_State *L = ud;
    lua_pushlstring(L, k, kl);
    if (lua_rawget(L, -2) == LUA_TNIL) {
        lua_pushlstring(L, k, kl);
        lua_pushlstring(L, v, vl);
        lua_rawset(L, -4);
    }
    lua_pop(L, 1);
    return 0;
}

static int no_param(void *ud, const char *k, size_t kl, const char *v, size_t vl)
{
    (void)ud, (void)k, (void)kl, (void)v, (void)vl;
    return 0;
}

/* req.params: the first value of each field, the body's before the
 * query's (a malformed query adds nothing, as telua.router does). */
static void push_params(lua_State *L, const slice *s)
{
    size_t i, qlen = s->query ? strlen(s->query) : 0;
    lua_createtable(L, 0, (int)s->nparams);
    for (i = s->nparams; i-- > 0;) { /* backwards: the first of a repeated field is set last */
        lua_pushlstring(L, s->params[i].key, s->params[i].key_len);
        lua_pushlstring(L, s->params[i].value, s->params[i].value_len);
        lua_rawset(L, -3);
    }
    if (qlen) {
        char small[1024];
        char *scratch = small;
        if (qlen > sizeof small) { /* held below the table until the end */
            scratch = lua_newuserdatauv(L, qlen, 0);
            lua_insert(L, -2);
        }
        if (tl_form_decode(s->query, qlen, scratch, no_param, NULL, NULL) == TL_FORM_OK)
            tl_form_decode(s->query, qlen, scratch, add_query_param, L, NULL);
        if (scratch != small) lua_remove(L, -2);
    }
}

/* The first slice's set-up: the coroutine (the last finished one of this
 * state, or a new one), `req` and `ctx`; leaves handler, req, ctx on co. */
static void start_request(lua_State *L, slice *s, tl_vm *vm)
{
    req_ctx *c = s->c;
    if (vm->idle_co_ref != LUA_NOREF) {
        c->co_ref = vm->idle_co_ref;
        vm->idle_co_ref = LUA_NOREF;
        lua_rawgeti(L, LUA_REGISTRYINDEX, c->co_ref);
        c->co = lua_tothread(L, -1);
        lua_pop(L, 1);
    } else {
        c->co = lua_newthread(L);
        c->co_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, vm->handler_ref);
    lua_createtable(L, 0, 24); /* req, in the host's cheaper forms, with room for the router's fields (Router:handle) */
    lua_pushstring(L, s->method);
    lua_setfield(L, -2, "method");
    lua_pushstring(L, s->path);
    lua_setfield(L, -2, "path");
    lua_pushstring(L, s->query ? s->query : "");
    lua_setfield(L, -2, "query");
    lua_pushstring(L, s->url);
    lua_setfield(L, -2, "url");
    push_params(L, s);
    lua_setfield(L, -2, "params");
    if (s->form_raw) {
        lua_pushlstring(L, s->form_raw, s->form_len);
        lua_setfield(L, -2, "form_raw");
    }
    {
        luaL_Buffer b;
        luaL_buffinit(L, &b);
        MHD_get_connection_values(c->con, MHD_HEADER_KIND, add_header_line, &b);
        luaL_pushresult(&b);
        lua_setfield(L, -2, "header_lines");
    }
    if (s->raw_body) {
        lua_pushlstring(L, s->raw_body, s->raw_len);
        lua_setfield(L, -2, "body");
    }
    lua_createtable(L, 0, 4); /* ctx: the router records kind, rule and route here */
    lua_pushvalue(L, -1);
    c->ctx_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_xmove(L, c->co, 3); /* handler, req, ctx */
}

/* A value of the answer, for the log: never through __tostring (rule code). */
static const char *describe(lua_State *L, int idx)
{
    switch (lua_type(L, idx)) {
    case LUA_TNUMBER: lua_pushvalue(L, idx); return lua_pushfstring(L, "%s", lua_tostring(L, -1));
    case LUA_TSTRING: {
        size_t n;
        const char *v = lua_tolstring(L, idx, &n);
        lua_pushlstring(L, v, n > 40 ? 40 : n);
        return lua_pushfstring(L, "\"%s\"", lua_tostring(L, -1));
    }
    default: return lua_pushstring(L, luaL_typename(L, idx));
    }
}

/* A result the host cannot send as an HTTP answer: a 500. */
static void bad_answer(slice *s, const char *err)
{
    s->err = err;
    s->action = A_FAIL;
    s->bad_result = 1;
}

/* The answer table at the top of L: rawget only (no metamethod of the
 * rules runs here, outside their budget). */
static void read_answer(lua_State *L, slice *s)
{
    int t = lua_gettop(L), isint = 0;
    lua_Integer status = 200;
    lua_pushliteral(L, "status");
    lua_rawget(L, t);
    lua_pushliteral(L, "content_type");
    lua_rawget(L, t);
    lua_pushliteral(L, "body");
    lua_rawget(L, t);
    if (!lua_isnil(L, t + 1)) {
        if (lua_type(L, t + 1) == LUA_TNUMBER) status = lua_tointegerx(L, t + 1, &isint);
        if (!isint || status < 100 || status > 599) {
            bad_answer(s, lua_pushfstring(L, "the answer's status is %s (want an integer from 100 to 599)",
                                          describe(L, t + 1)));
            return;
        }
    }
    if (!lua_isnil(L, t + 2)) {
        size_t n, i;
        const char *ct = lua_type(L, t + 2) == LUA_TSTRING ? lua_tolstring(L, t + 2, &n) : NULL;
        for (i = 0; ct && i < n; i++)
            if ((unsigned char)ct[i] < 0x20 || ct[i] == 0x7f) ct = NULL; /* no header injection */
        if (!ct || n > 200) {
            bad_answer(s, lua_pushfstring(L, "the answer's content_type is %s (want a header value)",
                                          describe(L, t + 2)));
            return;
        }
        s->ctype = ct;
    }
    if (!lua_isnil(L, t + 3) && lua_type(L, t + 3) != LUA_TSTRING) {
        bad_answer(s, lua_pushfstring(L, "the answer's body is a %s (want a string)", luaL_typename(L, t + 3)));
        return;
    }
    s->status = (unsigned)status;
    s->body = lua_isnil(L, t + 3) ? "" : lua_tolstring(L, t + 3, &s->blen);
    s->action = A_ANSWER;
    lua_pushliteral(L, "store_failed"); /* the router's 503 for a failed opt-out or other required write */
    lua_rawget(L, t);
    s->store_failed = lua_toboolean(L, -1);
}

/* lua_pcall'd with the slice at 1: runs the rules until they answer, fail
 * or wait for I/O. Leaves the strings s points into on the stack. */
static int slice_cf(lua_State *L)
{
    slice *s = lua_touserdata(L, 1);
    req_ctx *c = s->c;
    telua_host *h = s->h;
    tl_vm *vm = c->gen->vm[c->index];
    lua_State *co;
    int nargs = 0, nres = 0, rc;
    lua_settop(L, 0);
    if (s->first) {
        start_request(L, s, vm);
        nargs = 2;
    } else if (c->io_kind == IO_HTTP || c->io_kind == IO_BATCH) { /* back from I/O: its answer */
        nargs = tl_http_job_push(c->co, c->job, c->io_kind == IO_BATCH);
        tl_http_job_free(c->job);
        c->job = NULL;
    } else if (c->io_kind == IO_REDIS) { /* back from the Redis thread: the replies */
        nargs = tl_redis_job_push(c->co, c->rjob);
        tl_redis_job_free(c->rjob);
        c->rjob = NULL;
    }
    c->io_kind = 0;
    co = c->co;
    for (;;) {
        long long t0 = tl_now_ns();
        lua_rawgeti(L, LUA_REGISTRYINDEX, c->co_ref); /* telua.http yields only from this coroutine */
        lua_setfield(L, LUA_REGISTRYINDEX, "telua.host_co");
        if (h->cfg.cpu_ms) tl_vm_budget_start(vm, co, c->budget_ns, h->cfg.cpu_ms);
        rc = lua_resume(co, L, nargs, &nres);
        if (h->cfg.cpu_ms) c->budget_ns -= tl_vm_budget_stop(vm, co, t0);
        lua_pushboolean(L, 0);
        lua_setfield(L, LUA_REGISTRYINDEX, "telua.host_co");
        s->rc = rc;
        if (vm->budget_hit && (rc == LUA_OK || rc == LUA_YIELD)) {
            /* the rule caught the budget error (a coroutine it resumed ran
             * out, a pcall): past its budget the request fails all the same */
            lua_settop(co, 0);
            s->err = lua_pushfstring(L, "%s:%d: rule exceeded its CPU budget of %d ms (the error was caught, "
                                        "the request fails all the same)", vm->budget_file, vm->budget_line,
                                     (int)h->cfg.cpu_ms);
            s->action = A_FAIL;
            s->drop_co = 1;
            goto ctx;
        }
        if (rc != LUA_YIELD) break;
        { /* a wait: "telua.io", kind, arg */
            int base = lua_gettop(co) - nres + 1;
            const char *tag = nres >= 2 && lua_type(co, base) == LUA_TSTRING ? lua_tostring(co, base) : NULL;
            const char *kind = nres >= 2 && lua_type(co, base + 1) == LUA_TSTRING ? lua_tostring(co, base + 1) : NULL;
            tl_http_job *job = NULL;
            if (!tag || strcmp(tag, "telua.io") != 0 || !kind) {
                lua_settop(co, 0);
                s->err = lua_pushliteral(L, "a rule yielded something the host does not wait for (only telua.http, "
                                            "telua.http.sleep and the store on Redis may yield)");
                s->action = A_FAIL;
                s->drop_co = 1; /* suspended: it cannot run a new function */
                goto ctx;
            }
            if (strcmp(kind, "redis") == 0) { /* telua.store.redis: a pipeline for the worker's Redis thread */
                char jerr[300];
                tl_redis_job *rj;
                lua_pushvalue(co, base + 2);
                lua_xmove(co, L, 1);
                rj = tl_redis_job_new(L, -1, jerr, sizeof jerr);
                lua_pop(L, 1);
                lua_settop(co, 0);
                if (!rj) { /* bad commands: an error value, as the store's own connection gives */
                    lua_pushnil(co);
                    lua_pushstring(co, jerr);
                    lua_pushliteral(co, "bad_request");
                    nargs = 3;
                    continue;
                }
                s->rjob = rj;
                s->action = A_REDIS;
                return 0;
            }
            if (strcmp(kind, "sleep") == 0) {
                s->sleep_s = lua_tonumber(co, base + 2);
                lua_settop(co, 0);
                s->action = A_SLEEP;
                return 0;
            }
            s->batch = strcmp(kind, "batch") == 0;
            lua_pushcfunction(L, prepare_cf);
            lua_pushvalue(co, base + 2);
            lua_xmove(co, L, 1);
            lua_pushboolean(L, s->batch);
            lua_pushlightuserdata(L, &job);
            if (lua_pcall(L, 3, 0, 0) != LUA_OK) { /* bad options: an error value, as http.request gives */
                lua_settop(co, 0);
                lua_pushnil(co);
                lua_xmove(L, co, 1);
                lua_pushliteral(co, "bad_request");
                nargs = 3;
                continue;
            }
            lua_settop(co, 0);
            s->job = job;
            s->action = A_HTTP;
            return 0;
        }
    }
    if (rc == LUA_OK && nres >= 1 && lua_istable(co, lua_gettop(co) - nres + 1)) {
        lua_settop(co, lua_gettop(co) - nres + 1);
        lua_xmove(co, L, 1);
        read_answer(L, s);
    } else if (rc == LUA_OK) {
        lua_settop(co, 0);
        bad_answer(s, lua_pushliteral(L, "the handler returned no answer table"));
    } else {
        tl_vm_push_error(vm, L, co, rc);
        s->err = lua_tostring(L, -1);
        s->action = A_FAIL;
        s->drop_co = 1;
    }
ctx: /* what the router recorded: the kind of webhook and the rule's file:line */
    lua_rawgeti(L, LUA_REGISTRYINDEX, c->ctx_ref);
    lua_pushliteral(L, "kind");
    lua_rawget(L, -2);
    s->kind = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "voice";
    lua_pushliteral(L, "rule");
    lua_rawget(L, -3);
    s->rule = lua_type(L, -1) == LUA_TSTRING ? in_rules(s->h, lua_tostring(L, -1)) : NULL;
    lua_pushliteral(L, "route");
    lua_rawget(L, -4);
    s->route = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    return lua_gettop(L);
}

/* Ends a request's Lua side: the coroutine (kept for the next request
 * when it finished normally: a dead coroutine in status LUA_OK can run a
 * new function) and the generation. */
static void end_rules(telua_host *h, req_ctx *c, int drop_co)
{
    tl_vm *vm = c->gen->vm[c->index];
    lua_State *L = vm->L;
    if (c->co && !drop_co && vm->idle_co_ref == LUA_NOREF && lua_status(c->co) == LUA_OK &&
        lua_gettop(c->co) == 0)
        vm->idle_co_ref = c->co_ref;
    else
        luaL_unref(L, LUA_REGISTRYINDEX, c->co_ref);
    luaL_unref(L, LUA_REGISTRYINDEX, c->ctx_ref);
    c->co = NULL;
    c->co_ref = c->ctx_ref = LUA_NOREF;
    if (c->job) {
        tl_http_job_free(c->job);
        c->job = NULL;
    }
    tl_redis_job_free(c->rjob);
    c->rjob = NULL;
    if (vm->broken) tl_gens_refresh(&h->gens);
    vm->panic_jmp = NULL;
    tl_gen_release(c->gen);
    c->gen = NULL;
    atomic_fetch_sub(&h->inflight, 1);
}

/* The file of a rule's "file:line" ("-": none). */
static void rule_file(const char *rule, char *out, size_t outlen)
{
    const char *colon = rule ? strrchr(rule, ':') : NULL;
    if (!rule) snprintf(out, outlen, "-");
    else if (colon) snprintf(out, outlen, "%.*s", (int)(colon - rule), rule);
    else snprintf(out, outlen, "%s", rule);
}

/* A failed request: the log line, and the fallback TwiML for voice and
 * messaging (Twilio plays or sends nothing worse), a 500 for a status
 * callback or an answer that is no HTTP answer. */
static enum MHD_Result fail(telua_host *h, req_ctx *c, const slice *s, unsigned *status)
{
    tl_vm *vm = c->gen->vm[c->index];
    const char *kind = s->kind ? s->kind : "voice", *fallback;
    int gen = c->gen->id;
    char file[300];
    const char *labels[2] = { file, NULL };
    rule_file(s->rule, file, sizeof file);
    atomic_fetch_add(&h->errors, 1);
    tl_metrics_record(h->metrics, c->index, TL_M_RULE_ERRORS, labels, 1);
    if (s->bad_result) {
        atomic_fetch_add(&h->bad_results, 1);
        tl_log("error", "rule %s answered %s %s (generation %d) with a bad result: %s; answering 500",
               s->rule ? s->rule : "?", c->method, c->path, gen, s->err ? s->err : "?");
        *status = 500;
        return tl_reply(c->con, 500, "text/plain; charset=utf-8", "rule answered a bad result\n", 27, gen);
    }
    if (vm->budget_hit && vm->budget_file[0]) {
        labels[1] = "cpu";
        tl_metrics_record(h->metrics, c->index, TL_M_BUDGET_HITS, labels, 1);
        atomic_fetch_add(&h->budget_hits, 1);
        tl_log("error", "rule %s failed on %s %s (generation %d): CPU budget of %u ms ran out at %s:%d: %s",
               s->rule ? s->rule : "?", c->method, c->path, gen, h->cfg.cpu_ms, vm->budget_file, vm->budget_line,
               s->err ? s->err : "?");
    } else {
        if (s->rc == LUA_ERRMEM) {
            labels[1] = "memory";
            tl_metrics_record(h->metrics, c->index, TL_M_BUDGET_HITS, labels, 1);
            atomic_fetch_add(&h->mem_hits, 1);
        }
        tl_log("error", "rule %s failed on %s %s (generation %d): %s", s->rule ? s->rule : "?", c->method, c->path,
               gen, s->err ? s->err : "error");
    }
    if (strcmp(kind, "status") == 0) {
        *status = 500;
        return tl_reply(c->con, 500, "text/plain", "status handler failed\n", 22, gen);
    }
    fallback = strcmp(kind, "voice") == 0 ? h->fallback_voice : h->fallback_messaging;
    *status = 200;
    return tl_reply(c->con, 200, "text/xml", fallback, strlen(fallback), gen);
}

/* An answered webhook: its metrics and its access line. Called before the
 * slice's strings leave the state's stack. */
static void account(telua_host *h, req_ctx *c, const slice *s, unsigned status)
{
    long long ns = tl_now_ns() - c->arrived_ns;
    double secs = (double)ns / 1e9;
    const char *kind = s->route ? (s->kind ? s->kind : "voice") : "unmatched";
    if (h->metrics) {
        char st[4] = { (char)('0' + status / 100 % 10), (char)('0' + status / 10 % 10), (char)('0' + status % 10), 0 };
        const char *v[3] = { kind, s->route ? s->route : "unmatched", st };
        tl_metrics_record(h->metrics, c->index, TL_M_WEBHOOKS, v, 1);
        tl_metrics_record(h->metrics, c->index, TL_M_WEBHOOK_SECONDS, &kind, secs);
    }
    if (h->access)
        tl_log_access(h->access, c->index, c->method, c->path, status, ns, s->rule ? s->rule : "-", kind, c->id,
                      c->gen->id);
}

/* Runs slices until the request is answered or waits for I/O. Touches the
 * state only through lua_pcall of slice_cf and the unrefs of end_rules. */
static enum MHD_Result step_inner(telua_host *h, req_ctx *c, slice *s)
{
    tl_vm *vm = c->gen->vm[c->index];
    lua_State *L = vm->L;
    int top = lua_gettop(L), prc;
    unsigned answered = 500;
    enum MHD_Result ret;
    for (;;) {
        s->action = 0;
        s->err = s->kind = s->rule = s->route = s->ctype = NULL;
        s->bad_result = 0;
        lua_pushcfunction(L, slice_cf);
        lua_pushlightuserdata(L, s);
        prc = lua_pcall(L, 1, LUA_MULTRET, 0);
        s->first = 0;
        if (prc != LUA_OK) { /* the slice itself failed: out of memory building req or a message */
            s->action = A_FAIL;
            s->rc = prc;
            s->drop_co = 1;
            s->err = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "error";
        }
        if (s->action == A_SLEEP) {
            long long left = c->wall_due_ns - tl_now_ns();
            double sec = s->sleep_s > 0 ? s->sleep_s : 0;
            if ((double)left < sec * 1e9) sec = left > 0 ? (double)left / 1e9 : 0;
            lua_settop(L, top);
            c->io_kind = IO_SLEEP;
            if (sec > 0 && tl_io_sleep(h->w[c->index].io, sec, io_done, c) == 0) {
                MHD_suspend_connection(c->con);
                return MHD_YES;
            }
            continue; /* past the request's deadline, or the host is stopping: go on at once */
        }
        if (s->action == A_REDIS) {
            lua_settop(L, top);
            c->rjob = s->rjob;
            c->io_kind = IO_REDIS;
            if (tl_io_redis(h->w[c->index].io, s->rjob, io_done, c) == 0) {
                MHD_suspend_connection(c->con);
                return MHD_YES;
            }
            tl_redis_job_fail(s->rjob, "failed", "redis: the host is stopping");
            continue; /* resumes at once with the failure */
        }
        if (s->action == A_HTTP) {
            lua_settop(L, top);
            c->job = s->job;
            c->io_kind = s->batch ? IO_BATCH : IO_HTTP;
            if (tl_io_http(h->w[c->index].io, s->job, c->wall_due_ns, io_done, c) == 0) {
                MHD_suspend_connection(c->con);
                return MHD_YES;
            }
            tl_http_job_abort(s->job); /* the host is stopping */
            continue;
        }
        break;
    }
    if (s->action == A_ANSWER && s->store_failed) atomic_fetch_add(&h->store_failures, 1);
    if (s->action == A_ANSWER) {
        answered = s->status;
        ret = tl_reply(c->con, s->status, s->ctype ? s->ctype : "text/xml", s->body, s->blen, c->gen->id);
    } else {
        ret = fail(h, c, s, &answered);
    }
    account(h, c, s, answered);
    lua_settop(L, top);
    end_rules(h, c, s->drop_co);
    return ret;
}

/* After a panic nothing of the state is touched again: the references it
 * holds go with it when the rebuilt generation replaces it. */
static enum MHD_Result panicked(telua_host *h, req_ctx *c)
{
    tl_gen *gen = c->gen;
    enum MHD_Result ret;
    gen->vm[c->index]->panic_jmp = NULL;
    tl_log("error", "%s %s (generation %d): failed after a Lua panic; rebuilding the rules states", c->method,
           c->path, gen->id);
    atomic_fetch_add(&h->errors, 1);
    if (c->job) tl_http_job_free(c->job);
    c->job = NULL;
    tl_redis_job_free(c->rjob);
    c->rjob = NULL;
    c->co = NULL;
    c->gen = NULL;
    atomic_fetch_sub(&h->inflight, 1);
    tl_gens_refresh(&h->gens);
    ret = tl_reply(c->con, 500, "text/plain; charset=utf-8", "internal error\n", 15, gen->id);
    {
        slice none;
        memset(&none, 0, sizeof none);
        c->gen = gen;
        account(h, c, &none, 500);
        c->gen = NULL;
    }
    tl_gen_release(gen);
    return ret;
}

/* The recovery point is armed for the whole step; it is disarmed by
 * end_rules (the state may be freed with its generation right after) or,
 * when the request waits for I/O, here. */
static enum MHD_Result step(telua_host *h, req_ctx *c, slice *s)
{
    jmp_buf jb;
    enum MHD_Result ret;
    c->gen->vm[c->index]->panic_jmp = &jb;
    tl_log_request(c->id); /* the rule's req.log lines carry the request id */
    if (setjmp(jb) == 0) ret = step_inner(h, c, s);
    else ret = panicked(h, c);
    tl_log_request(NULL);
    if (c->gen) c->gen->vm[c->index]->panic_jmp = NULL;
    return ret;
}

enum MHD_Result tl_driver_resume(telua_host *h, req_ctx *c)
{
    slice s;
    memset(&s, 0, sizeof s);
    s.h = h;
    s.c = c;
    return step(h, c, &s);
}

/* A request id: 16 hex digits from the worker's generator (splitmix64,
 * seeded from the kernel's random source when the worker started). */
static void request_id(worker *w, char out[17])
{
    static const char hex[] = "0123456789abcdef";
    unsigned long long z = (w->rng += 0x9e3779b97f4a7c15ULL);
    int i;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    for (i = 15; i >= 0; i--, z >>= 4) out[i] = hex[z & 15];
    out[16] = 0;
}

enum MHD_Result tl_driver_run(telua_host *h, int index, struct MHD_Connection *con, req_ctx *c,
                              const char *method, const char *path, const char *query, const char *url,
                              const tl_param *params, size_t nparams, const char *form_raw, size_t form_len,
                              const char *raw_body, size_t raw_len)
{
    tl_gen *gen = tl_gen_acquire(&h->gens);
    slice s;
    if (!gen) return tl_send_text(con, 503, "no rules loaded\n");
    if (gen->vm[index]->broken == 2) { /* panicked: the rebuild is on its way */
        tl_gens_refresh(&h->gens);
        tl_gen_release(gen);
        return tl_send_text(con, 503, "rules are being reloaded\n");
    }
    atomic_fetch_add(&h->inflight, 1);
    if (h->wd_started) tl_wd_join(); /* this worker's watchdog slot (made once) */
    c->gen = gen;
    c->index = index;
    c->con = con;
    c->co = NULL;
    c->co_ref = c->ctx_ref = LUA_NOREF;
    c->budget_ns = (long long)h->cfg.cpu_ms * 1000000LL;
    c->wall_due_ns = tl_now_ns() + (long long)(h->cfg.request_timeout_s ? h->cfg.request_timeout_s : 14) * 1000000000LL;
    snprintf(c->method, sizeof c->method, "%s", method);
    request_id(&h->w[index], c->id);
    free(c->path);
    c->path = strdup(path);
    if (!c->path) {
        atomic_fetch_sub(&h->inflight, 1);
        c->gen = NULL;
        tl_gen_release(gen);
        return MHD_NO;
    }
    memset(&s, 0, sizeof s);
    s.h = h;
    s.c = c;
    s.first = 1;
    s.method = method;
    s.path = path;
    s.query = query;
    s.url = url;
    s.params = params;
    s.nparams = nparams;
    s.form_raw = form_raw;
    s.form_len = form_len;
    s.raw_body = raw_body;
    s.raw_len = raw_len;
    return step(h, c, &s);
}

void tl_driver_abandon(telua_host *h, req_ctx *c)
{
    tl_vm *vm = c->gen->vm[c->index];
    if (vm->broken == 2) { /* never touch a panicked state */
        if (c->job) tl_http_job_free(c->job);
        c->job = NULL;
        tl_redis_job_free(c->rjob);
        c->rjob = NULL;
        tl_gen_release(c->gen);
        c->gen = NULL;
        atomic_fetch_sub(&h->inflight, 1);
        return;
    }
    end_rules(h, c, 1);
}
