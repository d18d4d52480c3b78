/*
 * server.c - starts and stops the webhook host, and `telua check` (see
 * host.h for the parts).
 */
#include "host.h"
#include "watchdog.h"
#include "listen.h"
#include "log.h"

#include <arpa/inet.h>
#include <dlfcn.h>
#include <pthread.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <sqlite3.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_FALLBACK_VOICE                                                              \
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Say>We are sorry, an application " \
    "error has occurred. Please try again later.</Say><Hangup/></Response>"
#define DEFAULT_FALLBACK_MESSAGING "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>"

void telua_config_defaults(telua_config *c)
{
    memset(c, 0, sizeof *c);
    c->listen = "127.0.0.1:8080";
    c->store = "sqlite:var/telua.db";
    c->workers = 2;
    c->max_body = 64 * 1024;
    c->timeout_s = 10;
    c->read_timeout_s = 10;
    c->per_ip_limit = 64;
    c->cpu_ms = 200;
    c->load_ms = 2000;
    c->request_timeout_s = 14;
    c->mem_limit = 64u * 1024 * 1024;
    c->debounce_ms = 150;
    c->send_concurrency = 8;
    c->access_log = 1;
}

/* The folder holding the telua modules next to this code's install prefix:
 * BIN/../share/lua/5.4 for the executable, LIB/../share/lua/5.4 (or one
 * more level up for a multiarch LIB) for libtelua.so. NULL when none of
 * them has telua/router.lua. */
static char found_lua_dir[4096];
static pthread_once_t found_once = PTHREAD_ONCE_INIT;

static int lua_dir_at(const char *file, const char *up)
{
    char real[4096], cand[4096 + 64];
    char *slash;
    if (!file || file[0] != '/' || !realpath(file, real)) return 0;
    if (!(slash = strrchr(real, '/'))) return 0;
    *slash = 0;
    snprintf(cand, sizeof cand, "%s/%sshare/lua/5.4/telua/router.lua", real, up);
    if (access(cand, R_OK) != 0) return 0;
    cand[strlen(cand) - strlen("/telua/router.lua")] = 0;
    if (!realpath(cand, found_lua_dir)) return 0;
    return 1;
}

static void find_lua_dir(void)
{
    Dl_info info;
    const char *self = dladdr((void *)tl_default_lua_dir, &info) ? info.dli_fname : NULL;
    if (lua_dir_at("/proc/self/exe", "../") || lua_dir_at(self, "../") || lua_dir_at(self, "../../")) return;
    found_lua_dir[0] = 0;
}

const char *tl_default_lua_dir(void)
{
#ifndef TELUA_LUADIR
#define TELUA_LUADIR "/usr/local/share/lua/5.4"
#endif
    const char *env = getenv("TELUA_LUA_DIR");
    if (env && env[0]) return env;
    pthread_once(&found_once, find_lua_dir);
    return found_lua_dir[0] ? found_lua_dir : TELUA_LUADIR;
}

static const char *lua_dir_of(const telua_config *c)
{
    return c->lua_dir ? c->lua_dir : tl_default_lua_dir();
}

/* Connections one worker may hold: what the open-file limit allows (raised
 * to its hard limit), shared by the workers, with room for the store, the
 * I/O threads' sockets and the rules files. */
static unsigned connection_limit(int workers)
{
    struct rlimit rl;
    rlim_t n = 1024;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        if (rl.rlim_cur < rl.rlim_max) {
            rl.rlim_cur = rl.rlim_max > 65536 ? 65536 : rl.rlim_max;
            setrlimit(RLIMIT_NOFILE, &rl);
            getrlimit(RLIMIT_NOFILE, &rl);
        }
        n = rl.rlim_cur;
    }
    n = n > 256 ? (n - 256) / (rlim_t)workers : 64;
    return n > 16384 ? 16384u : (unsigned)n;
}

/* Waits until no request's rules are running, for at most `seconds`. */
static void wait_inflight(telua_host *h, double seconds)
{
    long long deadline = tl_now_ns() + (long long)(seconds * 1e9);
    while (atomic_load(&h->inflight) > 0 && tl_now_ns() < deadline) tl_sleep_s(0.01);
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

#define MEMORY_URI "file:/telua-memory?vfs=memdb" /* lua/telua/store.lua's MEMORY_URI */

/* The store's folder, made if missing (mkdir -p of FILE's parent for
 * sqlite:FILE). 0, or -1 with err. */
static int store_folder(const char *spec, char *err, size_t errlen)
{
    char path[4096], *p;
    if (strncmp(spec, "sqlite:", 7) != 0 || spec[7] == ':' || !strncmp(spec + 7, "file:", 5)) return 0;
    snprintf(path, sizeof path, "%s", spec + 7);
    if (!(p = strrchr(path, '/')) || p == path) return 0;
    *p = 0;
    for (p = path + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(path, 0750) != 0 && errno != EEXIST) break;
        *p = '/';
    }
    if (mkdir(path, 0750) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create the store's folder %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* Copies every string (and the modules list) of h->cfg into the host, so
 * the caller's may go once telua_host_start returns (telua.h). The auth
 * token is handled apart (h->token). */
static int own_config(telua_host *h)
{
    const char **fields[] = { &h->cfg.rules_dir, &h->cfg.listen, &h->cfg.public_url, &h->cfg.store,
                              &h->cfg.lua_dir, &h->cfg.account_sid, &h->cfg.twilio_base_url,
                              &h->cfg.send_rates, &h->cfg.default_region, &h->cfg.consumer };
    size_t i;
    for (i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        char *copy;
        if (!*fields[i]) continue;
        if (!(copy = strdup(*fields[i]))) return -1;
        h->owned[h->nowned++] = copy;
        *fields[i] = copy;
    }
    h->cfg.fallback_voice = h->cfg.fallback_messaging = NULL; /* copied into h->fallback_* */
    if (h->cfg.modules && h->cfg.nmodules) {
        telua_module *mods = calloc(h->cfg.nmodules, sizeof *mods);
        if (!mods) return -1;
        h->modules = mods;
        for (i = 0; i < h->cfg.nmodules; i++) {
            mods[i].open = h->cfg.modules[i].open;
            if (h->cfg.modules[i].name && !(mods[i].name = strdup(h->cfg.modules[i].name))) return -1;
        }
        h->cfg.modules = mods;
    } else {
        h->cfg.modules = NULL;
        h->cfg.nmodules = 0;
    }
    return 0;
}

static void host_free(telua_host *h)
{
    int i;
    size_t m;
    for (i = 0; i < h->nowned; i++) free(h->owned[i]);
    for (m = 0; h->modules && m < h->cfg.nmodules; m++) free((char *)h->modules[m].name);
    free(h->modules);
    if (h->mem_db) sqlite3_close_v2(h->mem_db);
    if (h->token) {
        memset(h->token, 0, strlen(h->token));
        free(h->token);
    }
    tl_sig_key_free(h->key);
    if (h->wd_started) tl_wd_stop();
    free(h->public_url);
    free(h->fallback_voice);
    free(h->fallback_messaging);
    free(h->w);
    tl_access_log_free(h->access);
    tl_metrics_free(h->metrics);
    if (h->admin_token) {
        OPENSSL_cleanse(h->admin_token, strlen(h->admin_token));
        free(h->admin_token);
    }
    pthread_mutex_destroy(&h->reject_mu);
    pthread_mutex_destroy(&h->api_mu);
    free(h);
}

static void format_load_error(const tl_load_error *le, char *err, size_t errlen)
{
    if (le->line) snprintf(err, errlen, "%s:%d: %s", le->file, le->line, le->message);
    else snprintf(err, errlen, "%s: %s", le->file, le->message);
}

int telua_host_start(const telua_config *cfg, telua_host **out, char *err, size_t errlen)
{
    telua_host *h;
    struct sockaddr_storage ss;
    socklen_t sl;
    int v6, i;
    tl_load_error le;
    const union MHD_DaemonInfo *info;

    *out = NULL;
    if (!cfg->rules_dir || !cfg->public_url || !cfg->auth_token || !cfg->auth_token[0]) {
        snprintf(err, errlen, "rules_dir, public_url and auth_token are required");
        return -1;
    }
    if (tl_parse_listen(cfg->listen, &ss, &sl, &v6) != 0) {
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
    pthread_mutex_init(&h->api_mu, NULL);
    if (own_config(h) != 0) {
        host_free(h);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    tl_log_set(cfg->log, cfg->log_ud);
    tl_log_json(cfg->log_json);
    if (h->cfg.workers < 1) h->cfg.workers = 1;
    h->started_ns = tl_now_ns();
    h->started_at = time(NULL);
    if (cfg->admin_listen) {
        const char *version = TELUA_VERSION;
        h->metrics = tl_metrics_new(h->cfg.workers);
        if (!h->metrics || (cfg->admin_token && !(h->admin_token = strdup(cfg->admin_token)))) {
            host_free(h);
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        tl_metrics_record(h->metrics, -1, TL_M_BUILD_INFO, &version, 1);
        tl_metrics_record(h->metrics, -1, TL_M_START_TIME, NULL, (double)h->started_at);
    }
    h->cfg.admin_token = NULL; /* the caller's copy */
    if (cfg->access_log && !(h->access = tl_access_log_new(h->cfg.workers))) {
        host_free(h);
        snprintf(err, errlen, "cannot start the access log");
        return -1;
    }
    if (!h->cfg.max_connections) h->cfg.max_connections = connection_limit(h->cfg.workers);
    h->key = tl_sig_key_new(cfg->auth_token, strlen(cfg->auth_token));
    h->public_url = strdup(cfg->public_url);
    h->fallback_voice = strdup(cfg->fallback_voice ? cfg->fallback_voice : DEFAULT_FALLBACK_VOICE);
    h->fallback_messaging = strdup(cfg->fallback_messaging ? cfg->fallback_messaging : DEFAULT_FALLBACK_MESSAGING);
    h->w = calloc((size_t)h->cfg.workers, sizeof *h->w);
    if (!h->key || !h->public_url || !h->fallback_voice || !h->fallback_messaging || !h->w) {
        host_free(h);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    h->cfg.auth_token = NULL; /* the caller's copy; the host keeps its own for the rules' states */
    if (store_folder(h->cfg.store, err, errlen) != 0) {
        host_free(h);
        return -1;
    }
    /* "memory": one database for the whole process, kept while the host runs
     * (SQLite frees a memdb database with its last connection) */
    if (!strcmp(h->cfg.store, "memory") &&
        sqlite3_open_v2(MEMORY_URI, &h->mem_db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_URI,
                        NULL) != SQLITE_OK) {
        snprintf(err, errlen, "cannot open the memory store: %s", h->mem_db ? sqlite3_errmsg(h->mem_db) : "no memory");
        host_free(h);
        return -1;
    }
    h->public_len = strlen(h->public_url);
    while (h->public_len > 0 && h->public_url[h->public_len - 1] == '/') h->public_url[--h->public_len] = 0;

    /* SQLite's allocation statistics take a process-wide mutex on every
     * malloc; the workers' connections would contend on it. Only possible
     * before SQLite initialises, so it is a no-op for an embedder that
     * already used SQLite. */
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    h->gens.rules_dir = h->cfg.rules_dir;
    h->gens.lua_dir = lua_dir_of(&h->cfg);
    h->gens.store = h->cfg.store;
    h->gens.workers = h->cfg.workers;
    h->gens.mem_limit = cfg->mem_limit;
    h->gens.cpu_ms = cfg->cpu_ms;
    h->gens.load_ms = cfg->load_ms;
    h->gens.unsafe = cfg->unsafe_rules;
    h->gens.debounce_ms = cfg->debounce_ms;
    h->gens.account_sid = h->cfg.account_sid;
    h->gens.twilio_base_url = h->cfg.twilio_base_url;
    h->gens.modules = h->cfg.modules;
    h->gens.nmodules = h->cfg.nmodules;
    h->gens.on_event = cfg->on_event;
    h->gens.event_ud = cfg->event_ud;
    h->gens.metrics = h->metrics;
    h->gens.auth_token = h->token = strdup(cfg->auth_token);
    if (!h->token) {
        host_free(h);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (tl_gens_init(&h->gens, &le) != 0) {
        format_load_error(&le, err, errlen);
        host_free(h);
        return -1;
    }
    if (tl_conns_init(&h->conns, cfg->read_timeout_s) != 0) {
        snprintf(err, errlen, "cannot start the read-deadline thread");
        tl_gens_close(&h->gens);
        host_free(h);
        return -1;
    }
    /* the budget's watchdog looks every tenth of the budget (1-10 ms):
     * a rule stops at most that far past it; without it, the count hook */
    if (cfg->cpu_ms) {
        unsigned tick = cfg->cpu_ms / 10;
        h->wd_started = tl_wd_start(tick < 1 ? 1 : tick > 10 ? 10 : tick) == 0;
        if (!h->wd_started) tl_log("warn", "cannot start the CPU budget's watchdog; rules run under a count hook");
    }
    for (i = 0; i < h->cfg.workers; i++) {
        worker *w = &h->w[i];
        w->h = h;
        w->index = i;
        if (getrandom(&w->rng, sizeof w->rng, 0) != (ssize_t)sizeof w->rng)
            w->rng = (unsigned long long)tl_now_ns() ^ ((unsigned long long)i << 48);
        w->io = tl_io_start();
        if (!w->io) snprintf(err, errlen, "cannot start an I/O thread");
        if (!w->io || tl_front_start(h, i, (struct sockaddr *)&ss, v6, err, errlen) != 0) {
            stop_daemons(h);
            tl_conns_close(&h->conns);
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
    if (tl_admin_start(h, err, errlen) != 0) {
        if (!h->cfg.admin_optional) {
            stop_daemons(h);
            tl_conns_close(&h->conns);
            tl_gens_close(&h->gens);
            host_free(h);
            return -1;
        }
        tl_log("warn", "%s; serving without it", err);
        err[0] = 0;
    }
    h->cfg.auth_token = h->token; /* for the sender's client */
    if (h->cfg.consumer) snprintf(h->consumer, sizeof h->consumer, "%s", h->cfg.consumer);
    else { /* the host's name and port: a host restarted the same way finds what it held */
        char name[256];
        if (gethostname(name, sizeof name) != 0) snprintf(name, sizeof name, "telua");
        name[sizeof name - 1] = 0;
        snprintf(h->consumer, sizeof h->consumer, "%s:%u", name, h->port);
    }
    i = tl_sender_start(h, err, errlen);
    h->cfg.auth_token = NULL;
    if (i != 0) {
        tl_admin_stop(h);
        stop_daemons(h);
        tl_conns_close(&h->conns);
        tl_gens_close(&h->gens);
        host_free(h);
        return -1;
    }
    if (tl_gens_watch(&h->gens) != 0) tl_log("warn", "cannot start the rules watcher; hot reload is off");
    *out = h;
    return 0;
}

unsigned telua_host_port(const telua_host *h) { return h->port; }

unsigned telua_host_admin_port(const telua_host *h) { return h->admin_port; }

void telua_host_stop(telua_host *h)
{
    if (!h) return;
    tl_admin_stop(h);
    stop_daemons(h); /* joins the workers: in-flight requests finish */
    tl_sender_stop(h);
    pthread_mutex_lock(&h->api_mu); /* a telua_send still running finishes first */
    if (h->api) tl_vm_free(h->api);
    h->api = NULL;
    pthread_mutex_unlock(&h->api_mu);
    tl_conns_close(&h->conns);
    tl_gens_close(&h->gens);
    host_free(h);
    tl_log_set(NULL, NULL);
}

/* lua_pcall'd on a plain state: require("telua.lint").report(dir, opts)
 * -> text, ok */
static int lint_cf(lua_State *L)
{
    const telua_config *c = lua_touserdata(L, 1);
    int files = (int)lua_tointeger(L, 2);
    lua_getglobal(L, "require");
    lua_pushliteral(L, "telua.lint");
    lua_call(L, 1, 1);
    lua_getfield(L, -1, "report");
    lua_pushstring(L, c->rules_dir);
    lua_createtable(L, 0, 4);
    lua_pushboolean(L, c->unsafe_rules);
    lua_setfield(L, -2, "unsafe");
    lua_pushboolean(L, c->check_strict);
    lua_setfield(L, -2, "strict");
    lua_pushstring(L, c->check_json ? "json" : "text");
    lua_setfield(L, -2, "format");
    lua_pushinteger(L, files);
    lua_setfield(L, -2, "files");
    lua_call(L, 2, 2);
    return 2;
}

/* The lint of rules that loaded: its findings to out; 0 when it passed. */
static int lint(const telua_config *c, const char *lua_dir, int files, FILE *out)
{
    tl_vm *vm = tl_vm_new(0, 0, lua_dir);
    int rc;
    if (!vm) {
        fprintf(out, "telua: out of memory\n");
        return 1;
    }
    lua_pushcfunction(vm->L, lint_cf);
    lua_pushlightuserdata(vm->L, (void *)c);
    lua_pushinteger(vm->L, files);
    if (tl_vm_pcall(vm, 2, 2, 0) != LUA_OK) {
        fprintf(out, "telua: the lint failed: %s\n", lua_tostring(vm->L, -1));
        tl_vm_free(vm);
        return 1;
    }
    fprintf(out, "%s\n", lua_tostring(vm->L, -2));
    rc = lua_toboolean(vm->L, -1) ? 0 : 1;
    tl_vm_free(vm);
    return rc;
}

int telua_check(const telua_config *c, FILE *out)
{
    char **files = NULL, msg[2200];
    int n = tl_list_rules(c->rules_dir, &files);
    tl_gens settings;
    tl_load_error err;
    tl_vm *vm;
    if (n < 0) {
        fprintf(out, "%s: cannot read the rules folder\n", c->rules_dir);
        return 1;
    }
    memset(&settings, 0, sizeof settings);
    settings.rules_dir = c->rules_dir;
    settings.lua_dir = lua_dir_of(c);
    settings.store = "memory";
    settings.mem_limit = c->mem_limit;
    settings.cpu_ms = c->cpu_ms;
    settings.load_ms = c->load_ms;
    settings.unsafe = c->unsafe_rules;
    settings.modules = c->modules;
    settings.nmodules = c->modules ? c->nmodules : 0;
    if (c->log) tl_log_set(c->log, c->log_ud);
    vm = n == 0 ? NULL : tl_load_rules(&settings, -1, files, n, &err);
    if (n == 0) tl_empty_rules_error(c->rules_dir, &err);
    if (!vm) {
        format_load_error(&err, msg, sizeof msg);
        if (c->check_json) {
            char file[1100], message[2200];
            tl_json_escape(err.file, file, sizeof file);
            tl_json_escape(err.message, message, sizeof message);
            fprintf(out, "{\"ok\":false,\"files\":%d,\"load_error\":{\"file\":\"%s\",\"line\":", n, file);
            if (err.line) fprintf(out, "%d", err.line);
            else fprintf(out, "null");
            fprintf(out, ",\"message\":\"%s\"},\"findings\":[]}\n", message);
        } else {
            fprintf(out, "%s\ntelua: rules in %s failed to load\n", msg, c->rules_dir);
        }
        tl_free_list(files, n);
        return 1;
    }
    tl_vm_free(vm);
    tl_free_list(files, n);
    return lint(c, settings.lua_dir, n, out);
}
