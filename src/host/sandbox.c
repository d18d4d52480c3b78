/*
 * sandbox.c - `telua sandbox`: Twilio's REST API on loopback.
 *
 * The behaviour lives in lua/telua/sandbox.lua; this file serves it. One
 * MHD daemon thread answers requests through the API state; a ticker
 * thread asks that state for the callbacks that are due, delivers them
 * with libcurl from a second state (so a slow webhook never holds up the
 * API), then reports how each went. A mutex guards the API state; the
 * delivery state belongs to the ticker alone.
 *
 *   telua sandbox [--listen ADDR] [--mps N] [--delivery-ms MS] [--verify-ttl S]
 *   telua sandbox inbound --to URL --from NUMBER --body TEXT [--number N] [--media URL]
 *   telua sandbox call --to URL --from NUMBER [--number N] [--digits D]
 *
 * Credentials: TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN (or
 * --auth-token-file), optionally TWILIO_API_KEY / TWILIO_API_SECRET. The
 * token is never printed.
 */
#include "telua.h"
#include "body.h"
#include "cli.h"
#include "clock.h"
#include "listen.h"
#include "log.h"
#include "vm.h"

#include <lauxlib.h>
#include <microhttpd.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SANDBOX_MAX_BODY (1024 * 1024)

typedef struct {
    pthread_mutex_t mu;
    tl_vm *api;          /* guarded by mu */
    int app_ref;
    tl_vm *dlv;          /* ticker thread only */
    int batch_ref;
    struct MHD_Daemon *daemon;
    pthread_t ticker;
    atomic_int stop;
} sandbox;

typedef struct {
    tl_body body;
    int started;
    char *uri;
    double arrived;     /* CLOCK_MONOTONIC seconds when the headers were in */
} sreq;

/* ---- API requests ------------------------------------------------------ */

static void *uri_logger(void *cls, const char *uri, struct MHD_Connection *con)
{
    sreq *r = calloc(1, sizeof *r);
    (void)cls;
    (void)con;
    if (r) r->uri = strdup(uri ? uri : "/");
    return r;
}

static void completed(void *cls, struct MHD_Connection *con, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    sreq *r = *con_cls;
    (void)cls;
    (void)con;
    (void)toe;
    if (!r) return;
    free(r->uri);
    tl_body_free(&r->body);
    free(r);
    *con_cls = NULL;
}

static enum MHD_Result answer(sandbox *s, struct MHD_Connection *con, sreq *r, const char *method)
{
    lua_State *L;
    int top, rc;
    struct MHD_Response *resp = NULL;
    unsigned status = 500;
    enum MHD_Result ret;

    if (r->body.too_large) {
        static const char msg[] = "{\"code\":20001,\"message\":\"request body too large\",\"status\":413}";
        resp = MHD_create_response_from_buffer(sizeof msg - 1, (void *)msg, MHD_RESPMEM_PERSISTENT);
        if (!resp) return MHD_NO;
        ret = MHD_queue_response(con, 413, resp);
        MHD_destroy_response(resp);
        return ret;
    }
    pthread_mutex_lock(&s->mu);
    L = s->api->L;
    top = lua_gettop(L);
    lua_rawgeti(L, LUA_REGISTRYINDEX, s->app_ref);
    lua_getfield(L, -1, "handle");
    lua_insert(L, -2); /* handle, app */
    lua_pushstring(L, method);
    lua_pushstring(L, r->uri);
    lua_createtable(L, 0, 1); /* the one header the sandbox reads */
    {
        const char *auth = MHD_lookup_connection_value(con, MHD_HEADER_KIND, "Authorization");
        if (auth) {
            lua_pushstring(L, auth);
            lua_setfield(L, -2, "authorization");
        }
    }
    lua_pushlstring(L, r->body.data ? r->body.data : "", r->body.len);
    lua_pushnumber(L, r->arrived);
    rc = tl_vm_pcall(s->api, 6, 4, 0);
    if (rc != LUA_OK) {
        tl_log("error", "sandbox: %s", lua_tostring(L, -1));
        lua_settop(L, top);
        pthread_mutex_unlock(&s->mu);
        {
            static const char msg[] = "{\"code\":20500,\"message\":\"sandbox internal error\",\"status\":500}";
            resp = MHD_create_response_from_buffer(sizeof msg - 1, (void *)msg, MHD_RESPMEM_PERSISTENT);
        }
    } else if (lua_type(L, top + 1) == LUA_TSTRING && strcmp(lua_tostring(L, top + 1), "drop") == 0) {
        lua_settop(L, top);
        pthread_mutex_unlock(&s->mu);
        return MHD_NO; /* an injected dropped connection: close without answering */
    } else {
        size_t blen = 0;
        const char *body = lua_tolstring(L, top + 3, &blen);
        status = (unsigned)lua_tointeger(L, top + 1);
        resp = MHD_create_response_from_buffer(blen, (void *)(body ? body : ""), MHD_RESPMEM_MUST_COPY);
        if (resp) {
            if (lua_isstring(L, top + 2)) MHD_add_response_header(resp, "Content-Type", lua_tostring(L, top + 2));
            if (lua_istable(L, top + 4)) {
                lua_pushnil(L);
                while (lua_next(L, top + 4)) {
                    if (lua_type(L, -2) == LUA_TSTRING && lua_isstring(L, -1))
                        MHD_add_response_header(resp, lua_tostring(L, -2), lua_tostring(L, -1));
                    lua_pop(L, 1);
                }
            }
        }
        lua_settop(L, top);
        pthread_mutex_unlock(&s->mu);
    }
    if (!resp) return MHD_NO;
    ret = MHD_queue_response(con, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result access_cb(void *cls, struct MHD_Connection *con, const char *url, const char *method,
                                 const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
    sreq *r = *con_cls;
    (void)url;
    (void)version;
    if (!r) return MHD_NO;
    if (!r->started) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        r->arrived = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
        r->started = 1;
        return MHD_YES;
    }
    if (*upload_size) {
        if (tl_body_append(&r->body, upload, *upload_size, SANDBOX_MAX_BODY) != 0) return MHD_NO;
        *upload_size = 0;
        return MHD_YES;
    }
    return answer(cls, con, r, method);
}

/* ---- callbacks --------------------------------------------------------- */

typedef struct {
    char *url, *body, *sig, *idem;
} delivery;

/* One round: take what is due, deliver it, report back. Returns the
 * seconds until the next event (capped), for the ticker's sleep. */
static double tick_once(sandbox *s)
{
    lua_State *A, *D = s->dlv->L;
    int top, rt, n = 0, i, out_ref = LUA_NOREF;
    double next = 0.005;
    delivery *d = NULL;

    pthread_mutex_lock(&s->mu);
    A = s->api->L;
    top = lua_gettop(A);
    lua_rawgeti(A, LUA_REGISTRYINDEX, s->app_ref);
    lua_getfield(A, -1, "tick");
    lua_insert(A, -2);
    if (tl_vm_pcall(s->api, 1, 2, 0) != LUA_OK) {
        tl_log("error", "sandbox tick: %s", lua_tostring(A, -1));
        lua_settop(A, top);
        pthread_mutex_unlock(&s->mu);
        return 0.05;
    }
    if (lua_isnumber(A, top + 2)) {
        next = lua_tonumber(A, top + 2);
        if (next > 0.005) next = 0.005;
    }
    n = (int)lua_rawlen(A, top + 1);
    if (n > 0) d = calloc((size_t)n, sizeof *d);
    for (i = 0; d && i < n; i++) {
        lua_rawgeti(A, top + 1, i + 1);
        lua_getfield(A, -1, "url");
        lua_getfield(A, -2, "body");
        lua_getfield(A, -3, "signature");
        lua_getfield(A, -4, "idempotency");
        d[i].url = strdup(luaL_optstring(A, -4, ""));
        d[i].body = strdup(luaL_optstring(A, -3, ""));
        d[i].sig = strdup(luaL_optstring(A, -2, ""));
        d[i].idem = strdup(luaL_optstring(A, -1, ""));
        lua_pop(A, 5);
    }
    if (n > 0) {
        lua_pushvalue(A, top + 1);
        out_ref = luaL_ref(A, LUA_REGISTRYINDEX); /* the callbacks, for `delivered` */
    }
    lua_settop(A, top);
    pthread_mutex_unlock(&s->mu);
    if (n == 0) return next;

    /* deliver from the delivery state */
    top = lua_gettop(D);
    lua_rawgeti(D, LUA_REGISTRYINDEX, s->batch_ref);
    lua_createtable(D, n, 0);
    for (i = 0; d && i < n; i++) {
        lua_createtable(D, 0, 6);
        lua_pushstring(D, d[i].url);
        lua_setfield(D, -2, "url");
        lua_pushliteral(D, "POST");
        lua_setfield(D, -2, "method");
        lua_pushstring(D, d[i].body);
        lua_setfield(D, -2, "body");
        lua_pushnumber(D, 15);
        lua_setfield(D, -2, "timeout");
        lua_pushnumber(D, 5);
        lua_setfield(D, -2, "connect_timeout");
        lua_createtable(D, 0, 4);
        lua_pushliteral(D, "application/x-www-form-urlencoded");
        lua_setfield(D, -2, "Content-Type");
        lua_pushstring(D, d[i].sig);
        lua_setfield(D, -2, "X-Twilio-Signature");
        lua_pushstring(D, d[i].idem);
        lua_setfield(D, -2, "I-Twilio-Idempotency-Token");
        lua_pushliteral(D, "TwilioProxy/1.1");
        lua_setfield(D, -2, "User-Agent");
        lua_setfield(D, -2, "headers");
        lua_rawseti(D, -2, i + 1);
    }
    if (tl_vm_pcall(s->dlv, 1, 1, 0) != LUA_OK) {
        tl_log("error", "sandbox delivery: %s", lua_tostring(D, -1));
        lua_settop(D, top);
        lua_newtable(D); /* every delivery failed */
    }
    /* report: app:delivered(cb, status, answer) for each */
    rt = lua_gettop(D); /* the results */
    pthread_mutex_lock(&s->mu);
    top = lua_gettop(A);
    lua_rawgeti(A, LUA_REGISTRYINDEX, out_ref);
    for (i = 0; i < n; i++) {
        long status = 0;
        size_t alen = 0;
        const char *ans = NULL;
        lua_rawgeti(D, rt, i + 1);
        if (lua_istable(D, -1)) {
            lua_getfield(D, -1, "status");
            status = (long)lua_tointeger(D, -1);
            lua_getfield(D, -2, "body");
            ans = lua_tolstring(D, -1, &alen);
        }
        lua_rawgeti(A, LUA_REGISTRYINDEX, s->app_ref);
        lua_getfield(A, -1, "delivered");
        lua_insert(A, -2);
        lua_rawgeti(A, top + 1, i + 1);
        lua_pushinteger(A, status);
        if (ans) lua_pushlstring(A, ans, alen);
        else lua_pushnil(A);
        if (tl_vm_pcall(s->api, 4, 0, 0) != LUA_OK) lua_pop(A, 1);
        if (status < 200 || status >= 300)
            tl_log("warn", "sandbox: callback to %s answered %ld", d[i].url, status);
        lua_settop(D, rt);
    }
    luaL_unref(A, LUA_REGISTRYINDEX, out_ref);
    lua_settop(A, top);
    pthread_mutex_unlock(&s->mu);
    lua_settop(D, 0);
    for (i = 0; d && i < n; i++) {
        free(d[i].url);
        free(d[i].body);
        free(d[i].sig);
        free(d[i].idem);
    }
    free(d);
    return 0; /* look again at once: more may be due */
}

static void *ticker(void *arg)
{
    sandbox *s = arg;
    while (!atomic_load(&s->stop)) {
        double next = tick_once(s);
        if (next > 0) tl_sleep_s(next);
    }
    return NULL;
}

/* ---- set-up ------------------------------------------------------------ */

static int host_log(lua_State *L)
{
    tl_log("info", "%s", luaL_checkstring(L, 1));
    return 0;
}

static char *read_token(const char *file)
{
    if (file) {
        FILE *f = fopen(file, "rb");
        char buf[4096];
        size_t n;
        if (!f) return NULL;
        n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ')) n--;
        buf[n] = 0;
        return strdup(buf);
    }
    return getenv("TWILIO_AUTH_TOKEN") ? strdup(getenv("TWILIO_AUTH_TOKEN")) : NULL;
}

static const char SANDBOX_USAGE[] =
    "usage: telua sandbox [options]           Twilio's REST API on loopback\n"
    "       telua sandbox inbound --to URL --from NUMBER --body TEXT [--number N] [--media URL]\n"
    "       telua sandbox call --to URL --from NUMBER [--number N] [--digits D]\n"
    "\n"
    "sandbox options:\n"
    "  --listen ADDR           HOST:PORT or [V6]:PORT (default 127.0.0.1:8090; port 0 picks one)\n"
    "  --public                allow a --listen address other than loopback (the sandbox's control\n"
    "                          endpoints list verification codes: never expose it unless you mean to)\n"
    "  --mps N                 messages a second each sender delivers (default 10)\n"
    "  --delivery-ms MS        time from queued to delivered (default 200)\n"
    "  --verify-ttl SECONDS    lifetime of a Verify code (default 600)\n"
    "  --auth-token-file FILE  read the auth token from FILE instead of TWILIO_AUTH_TOKEN\n"
    "inbound and call: a webhook signed as Twilio signs it, posted to --to\n"
    "  --to URL                the webhook URL (the host's public URL and path)\n"
    "  --from NUMBER           the sender (the user's phone)\n"
    "  --body TEXT             the message text (inbound)\n"
    "  --number N              the business's number they wrote to or called (default +15005550006)\n"
    "  --media URL             one media URL (inbound)\n"
    "  --digits D              keys pressed: the call follows each <Gather>'s action with them (call)\n"
    "  -h, --help              this text\n"
    "\n"
    "credentials: TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN (API keys: TWILIO_API_KEY, TWILIO_API_SECRET)\n";

void tl_sandbox_usage(FILE *f)
{
    fputs(SANDBOX_USAGE, f);
}

/* the options of `sandbox inbound` and `sandbox call` (one table: each
 * refuses the other's own), and of the sandbox itself */
static const struct option POST_OPTS[] = {
    { "to", required_argument, NULL, 't' },
    { "from", required_argument, NULL, 'f' },
    { "body", required_argument, NULL, 'b' },
    { "number", required_argument, NULL, 'n' },
    { "media", required_argument, NULL, 'm' },
    { "digits", required_argument, NULL, 'd' },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
};

static const struct option SANDBOX_OPTS[] = {
    { "listen", required_argument, NULL, 'l' },
    { "public", no_argument, NULL, 'p' },
    { "mps", required_argument, NULL, 'r' },
    { "delivery-ms", required_argument, NULL, 'D' },
    { "verify-ttl", required_argument, NULL, 'v' },
    { "auth-token-file", required_argument, NULL, 'a' },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
};

/* A listen address on loopback: 127.0.0.0/8 or ::1. */
static int is_loopback(const struct sockaddr_storage *sa)
{
    if (sa->ss_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
    if (sa->ss_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        return IN6_IS_ADDR_LOOPBACK(a) ||
               (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
    }
    return 0;
}

/* `sandbox inbound` / `sandbox call`: lua/telua/sandbox.lua's cli_post. */
static int post_inbound(const char *lua_dir, int voice, int argc, char **argv)
{
    tl_vm *vm = tl_vm_new(0, 0, lua_dir);
    lua_State *L;
    int opt, idx = 0, rc;
    char *token = read_token(NULL);
    if (!vm) return 1;
    L = vm->L;
    lua_getglobal(L, "require");
    lua_pushliteral(L, "telua.sandbox");
    if (tl_vm_pcall(vm, 1, 1, 0) != LUA_OK) {
        fprintf(stderr, "telua: %s\n", lua_tostring(L, -1));
        tl_vm_free(vm);
        free(token);
        return 1;
    }
    lua_getfield(L, -1, "cli_post");
    lua_createtable(L, 0, 8);
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":h", POST_OPTS, &idx)) != -1) {
        if (opt == 'h' || opt == '?' || opt == ':' || (voice ? opt == 'b' || opt == 'm' : opt == 'd')) {
            if (opt == 'h') fputs(SANDBOX_USAGE, stdout);
            else if (opt == '?' || opt == ':') tl_cli_refused(voice ? "sandbox call" : "sandbox inbound", argv, opt);
            else fprintf(stderr, "telua sandbox %s: --%s is for %s\n", voice ? "call" : "inbound",
                         POST_OPTS[idx].name, voice ? "inbound" : "call");
            tl_vm_free(vm);
            if (token) memset(token, 0, strlen(token));
            free(token);
            return opt == 'h' ? 0 : 2;
        }
        lua_pushstring(L, optarg);
        lua_setfield(L, -2, POST_OPTS[idx].name);
    }
    if (optind < argc) {
        fprintf(stderr, "telua sandbox %s: unexpected argument %s\n", voice ? "call" : "inbound", argv[optind]);
        tl_vm_free(vm);
        if (token) memset(token, 0, strlen(token));
        free(token);
        return 2;
    }
    lua_pushboolean(L, voice);
    lua_setfield(L, -2, "voice");
    if (token) {
        lua_pushstring(L, token);
        lua_setfield(L, -2, "auth_token");
        memset(token, 0, strlen(token));
        free(token);
    }
    if (getenv("TWILIO_ACCOUNT_SID")) {
        lua_pushstring(L, getenv("TWILIO_ACCOUNT_SID"));
        lua_setfield(L, -2, "account_sid");
    }
    rc = tl_vm_pcall(vm, 1, 2, 0);
    if (rc != LUA_OK || !lua_toboolean(L, -2)) {
        fprintf(stderr, "telua: %s\n", lua_tostring(L, -1) ? lua_tostring(L, -1) : "failed");
        tl_vm_free(vm);
        return 1;
    }
    fputs(lua_tostring(L, -2), stdout);
    tl_vm_free(vm);
    return 0;
}

int tl_sandbox_main(const char *lua_dir, int argc, char **argv)
{
    sandbox s;
    const char *listen = "127.0.0.1:8090", *token_file = NULL;
    double mps = 10, delivery_ms = 200, verify_ttl = 600;
    char *token, host[256], base[320];
    const char *sid = getenv("TWILIO_ACCOUNT_SID");
    struct sockaddr_storage sa;
    socklen_t salen;
    int v6;
    const union MHD_DaemonInfo *info;
    unsigned port;
    sigset_t set;
    int opt, sig, public = 0;
    lua_State *L;

    if (argc >= 1 && strcmp(argv[0], "inbound") == 0) return post_inbound(lua_dir, 0, argc, argv);
    if (argc >= 1 && strcmp(argv[0], "call") == 0) return post_inbound(lua_dir, 1, argc, argv);
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc + 1, argv - 1, ":h", SANDBOX_OPTS, NULL)) != -1) {
        switch (opt) {
        case 'h': fputs(SANDBOX_USAGE, stdout); return 0;
        case 'l': listen = optarg; break;
        case 'p': public = 1; break;
        case 'r': if (tl_cli_double("sandbox", "mps", optarg, 0.001, &mps) != 0) return 2; break;
        case 'D': if (tl_cli_double("sandbox", "delivery-ms", optarg, 0, &delivery_ms) != 0) return 2; break;
        case 'v': if (tl_cli_double("sandbox", "verify-ttl", optarg, 1, &verify_ttl) != 0) return 2; break;
        case 'a': token_file = optarg; break;
        default: return tl_cli_refused("sandbox", argv - 1, opt);
        }
    }
    if (optind < argc + 1) {
        fprintf(stderr, "telua sandbox: unexpected argument %s (telua sandbox --help)\n", argv[optind - 1]);
        return 2;
    }
    if (!(mps > 0) || delivery_ms < 0 || !(verify_ttl > 0)) {
        fprintf(stderr, "telua: --mps and --verify-ttl must be positive, --delivery-ms not negative\n");
        return 2;
    }
    if (tl_parse_listen(listen, &sa, &salen, &v6) != 0 || tl_listen_host(listen, host, sizeof host) != 0) {
        fprintf(stderr, "telua sandbox: bad --listen %s (want HOST:PORT or [V6]:PORT)\n", listen);
        return 2;
    }
    if (!public && !is_loopback(&sa)) {
        fprintf(stderr, "telua sandbox: --listen %s is not a loopback address; the sandbox lists verification "
                        "codes to anyone who asks, so add --public if you mean it\n", listen);
        return 2;
    }

    token = read_token(token_file);
    if (!sid || !token || !token[0]) {
        fprintf(stderr, "telua: the sandbox needs TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN (or --auth-token-file)\n");
        free(token);
        return 2;
    }
    memset(&s, 0, sizeof s);
    pthread_mutex_init(&s.mu, NULL);
    s.api = tl_vm_new(0, 0, lua_dir);
    s.dlv = tl_vm_new(0, 0, lua_dir);
    if (!s.api || !s.dlv) { free(token); return 1; }

    /* delivery state: http.batch */
    L = s.dlv->L;
    lua_getglobal(L, "require");
    lua_pushliteral(L, "telua.http");
    if (tl_vm_pcall(s.dlv, 1, 1, 0) != LUA_OK) { fprintf(stderr, "telua: %s\n", lua_tostring(L, -1)); return 1; }
    lua_getfield(L, -1, "batch");
    s.batch_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_settop(L, 0);

    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    s.daemon = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | (v6 ? MHD_USE_IPv6 : 0), 0, NULL,
                                NULL, access_cb, &s,
                                MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                                MHD_OPTION_CONNECTION_TIMEOUT, 30u,
                                MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)16 * 1024, /* MHD zeroes it per request */
                                MHD_OPTION_CONNECTION_LIMIT, 4096u,
                                MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u,
                                MHD_OPTION_URI_LOG_CALLBACK, uri_logger, NULL,
                                MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
                                MHD_OPTION_END);
    if (!s.daemon) {
        fprintf(stderr, "telua: the sandbox cannot listen on %s\n", listen);
        free(token);
        return 1;
    }
    info = MHD_get_daemon_info(s.daemon, MHD_DAEMON_INFO_BIND_PORT);
    port = info ? info->port : 0;
    snprintf(base, sizeof base, v6 ? "http://[%s]:%u" : "http://%s:%u", host, port);

    /* API state: require("telua.sandbox").new{...} (before any request is
     * answered: the daemon is started but the state is built under mu) */
    pthread_mutex_lock(&s.mu);
    L = s.api->L;
    lua_getglobal(L, "require");
    lua_pushliteral(L, "telua.sandbox");
    if (tl_vm_pcall(s.api, 1, 1, 0) != LUA_OK) {
        fprintf(stderr, "telua: %s\n", lua_tostring(L, -1));
        return 1;
    }
    lua_getfield(L, -1, "new");
    lua_createtable(L, 0, 8);
    lua_pushstring(L, sid);
    lua_setfield(L, -2, "account_sid");
    lua_pushstring(L, token);
    lua_setfield(L, -2, "auth_token");
    if (getenv("TWILIO_API_KEY") && getenv("TWILIO_API_SECRET")) {
        lua_pushstring(L, getenv("TWILIO_API_KEY"));
        lua_setfield(L, -2, "api_key");
        lua_pushstring(L, getenv("TWILIO_API_SECRET"));
        lua_setfield(L, -2, "api_secret");
    }
    lua_pushnumber(L, mps);
    lua_setfield(L, -2, "mps");
    lua_pushnumber(L, delivery_ms / 1000.0);
    lua_setfield(L, -2, "delivery_s");
    lua_pushnumber(L, verify_ttl);
    lua_setfield(L, -2, "verify_ttl");
    lua_pushstring(L, base);
    lua_setfield(L, -2, "base_url");
    lua_pushcfunction(L, host_log);
    lua_setfield(L, -2, "log");
    memset(token, 0, strlen(token));
    free(token);
    if (tl_vm_pcall(s.api, 1, 1, 0) != LUA_OK) {
        fprintf(stderr, "telua: %s\n", lua_tostring(L, -1));
        return 2;
    }
    s.app_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_settop(L, 0);
    lua_gc(L, LUA_GCCOLLECT, 0); /* the token's copies */
    pthread_mutex_unlock(&s.mu);

    if (pthread_create(&s.ticker, NULL, ticker, &s) != 0) {
        fprintf(stderr, "telua: cannot start the sandbox ticker\n");
        return 1;
    }
    tl_log("info", "telua sandbox on %s (account %s, %.0f MPS per sender)", base, sid, mps);
    printf("sandbox listening on port %u\n", port);
    fflush(stdout);
    sigwait(&set, &sig);
    tl_log("info", "signal %d: stopping the sandbox", sig);
    atomic_store(&s.stop, 1);
    pthread_join(s.ticker, NULL);
    MHD_stop_daemon(s.daemon);
    tl_vm_free(s.api);
    tl_vm_free(s.dlv);
    pthread_mutex_destroy(&s.mu);
    return 0;
}
