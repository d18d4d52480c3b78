/*
 * main.c - the `telua` executable: serve, check, version.
 *
 *   telua serve --rules DIR --listen ADDR --public-url URL --store sqlite:FILE
 *   telua check DIR
 *
 * The auth token comes from TWILIO_AUTH_TOKEN or --auth-token-file FILE;
 * it is never printed or logged.
 */
#include "telua.h"
#include "log.h"

#include "../lua/telua_core.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vm.h"
#include <lauxlib.h>

#ifndef TELUA_LUADIR
#define TELUA_LUADIR "/usr/local/share/lua/5.4"
#endif

int tl_sandbox_main(const char *lua_dir, int argc, char **argv); /* sandbox.c */

static void usage(FILE *f)
{
    fprintf(f,
        "usage:\n"
        "  telua serve --rules DIR --public-url URL [options]\n"
        "  telua sandbox [--listen ADDR] [--mps N]   (Twilio's REST API on loopback)\n"
        "  telua sandbox inbound|call --to URL --from NUMBER ...\n"
        "  telua campaign --csv FILE --template NAME [--from N | --messaging-service SID] [--rate MPS] [--dry-run]\n"
        "  telua check [--load-ms MS] [--unsafe-rules] DIR\n"
        "  telua version\n"
        "\n"
        "serve options:\n"
        "  --rules DIR             rules folder (hot-reloaded)\n"
        "  --listen ADDR           HOST:PORT or [V6]:PORT (default 127.0.0.1:8080; port 0 picks one)\n"
        "  --public-url URL        scheme://host[:port] that Twilio calls (signatures are checked against it)\n"
        "  --store SPEC            sqlite:FILE or memory (default memory)\n"
        "  --workers N             worker threads, each with its own Lua state (default 2)\n"
        "  --max-body BYTES        larger request bodies get 413 (default 65536)\n"
        "  --timeout SECONDS       idle connection timeout (default 10)\n"
        "  --read-timeout SECONDS  a request's headers and body must arrive within this (default 10)\n"
        "  --per-ip-limit N        connections one client address may hold per worker (default 64; 0: none)\n"
        "  --max-connections N     connections per worker (default: what the open-file limit allows)\n"
        "  --cpu-ms MS             CPU budget of one request's rules (default 200)\n"
        "  --load-ms MS            CPU budget of loading the rules (default 2000)\n"
        "  --request-timeout SECONDS  wall-clock limit of a request's rules, I/O included (default 14)\n"
        "  --mem-mb MB             memory cap of each Lua state (default 64)\n"
        "  --debounce-ms MS        quiet time of the rules folder before a reload (default 150)\n"
        "  --unsafe-rules          give rules the whole standard library (no sandbox)\n"
        "  --fallback-voice FILE   TwiML answered when a voice rule fails\n"
        "  --fallback-messaging FILE  TwiML answered when a messaging rule fails\n"
        "  --auth-token-file FILE  read the auth token from FILE instead of TWILIO_AUTH_TOKEN\n"
        "  --lua-dir DIR           where the telua Lua modules live\n"
        "  --send-rates SPEC       pacing in segments/s, e.g. long_code=1,toll_free=3,short_code=100,\n"
        "                          whatsapp=10,account=2000 (0 = unpaced)\n"
        "  --send-concurrency N    REST requests in flight (default 8)\n"
        "outbound: with TWILIO_ACCOUNT_SID set and a sqlite store, rules' req.send goes out through\n"
        "  the outbox; TELUA_TWILIO_BASE_URL points it elsewhere than api.twilio.com (the sandbox)\n");
}

/* The signal thread: a stop signal before the host has started (the rules
 * still loading) ends the process at once; after, it is handed to the main
 * thread, which stops the host gracefully. */
static int sig_pipe[2];
static atomic_int started;

static void *signal_main(void *arg)
{
    sigset_t *set = arg;
    int sig = 0;
    for (;;) {
        if (sigwait(set, &sig) != 0) continue;
        if (!atomic_load(&started)) {
            tl_log("info", "signal %d while starting: exiting", sig);
            _exit(1);
        }
        if (write(sig_pipe[1], &sig, sizeof sig) != (ssize_t)sizeof sig) _exit(1);
        return NULL;
    }
}

/* Reads a whole small file into a malloc'd string with trailing
 * whitespace removed; NULL on failure. */
static char *slurp(const char *path, size_t max)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    size_t n;
    if (!f) return NULL;
    buf = malloc(max + 1);
    if (!buf) {
        fclose(f);
        return NULL;
    }
    n = fread(buf, 1, max, f);
    fclose(f);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ')) n--;
    buf[n] = 0;
    return buf;
}

static int serve(int argc, char **argv)
{
    telua_config c;
    telua_host *h;
    char err[1024], *token = NULL, *fb_voice = NULL, *fb_msg = NULL;
    const char *token_file = NULL;
    sigset_t set;
    pthread_t sig_thread;
    int i, sig = 0;
    telua_config_defaults(&c);
    for (i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--unsafe-rules")) {
            c.unsafe_rules = 1;
            continue;
        }
        if (!v) {
            fprintf(stderr, "telua: %s needs a value\n", a);
            return 2;
        }
        if (!strcmp(a, "--rules")) c.rules_dir = v;
        else if (!strcmp(a, "--listen")) c.listen = v;
        else if (!strcmp(a, "--public-url")) c.public_url = v;
        else if (!strcmp(a, "--store")) c.store = v;
        else if (!strcmp(a, "--workers")) c.workers = atoi(v);
        else if (!strcmp(a, "--max-body")) c.max_body = strtoul(v, NULL, 10);
        else if (!strcmp(a, "--timeout")) c.timeout_s = (unsigned)atoi(v);
        else if (!strcmp(a, "--read-timeout")) c.read_timeout_s = (unsigned)atoi(v);
        else if (!strcmp(a, "--per-ip-limit")) c.per_ip_limit = (unsigned)atoi(v);
        else if (!strcmp(a, "--max-connections")) c.max_connections = (unsigned)atoi(v);
        else if (!strcmp(a, "--load-ms")) c.load_ms = (unsigned)atoi(v);
        else if (!strcmp(a, "--request-timeout")) c.request_timeout_s = (unsigned)atoi(v);
        else if (!strcmp(a, "--debounce-ms")) c.debounce_ms = (unsigned)atoi(v);
        else if (!strcmp(a, "--cpu-ms")) c.cpu_ms = (unsigned)atoi(v);
        else if (!strcmp(a, "--mem-mb")) c.mem_limit = strtoul(v, NULL, 10) * 1024 * 1024;
        else if (!strcmp(a, "--auth-token-file")) token_file = v;
        else if (!strcmp(a, "--lua-dir")) c.lua_dir = v;
        else if (!strcmp(a, "--send-rates")) c.send_rates = v;
        else if (!strcmp(a, "--send-concurrency")) c.send_concurrency = atoi(v);
        else if (!strcmp(a, "--fallback-voice")) {
            if (!(fb_voice = slurp(v, 65536))) { fprintf(stderr, "telua: cannot read %s\n", v); return 2; }
            c.fallback_voice = fb_voice;
        } else if (!strcmp(a, "--fallback-messaging")) {
            if (!(fb_msg = slurp(v, 65536))) { fprintf(stderr, "telua: cannot read %s\n", v); return 2; }
            c.fallback_messaging = fb_msg;
        } else {
            fprintf(stderr, "telua: unknown option %s\n", a);
            usage(stderr);
            return 2;
        }
        i++;
    }
    if (!c.rules_dir || !c.public_url) {
        fprintf(stderr, "telua: serve needs --rules and --public-url\n");
        return 2;
    }
    if (token_file) {
        token = slurp(token_file, 4096);
        if (!token) {
            fprintf(stderr, "telua: cannot read the auth token file: %s\n", strerror(errno));
            return 2;
        }
    } else if (getenv("TWILIO_AUTH_TOKEN")) {
        token = strdup(getenv("TWILIO_AUTH_TOKEN"));
    }
    /* read once; nothing started later (rules, libraries, child processes) finds it */
    if (getenv("TWILIO_AUTH_TOKEN")) {
        char *e = getenv("TWILIO_AUTH_TOKEN");
        memset(e, 0, strlen(e));
        unsetenv("TWILIO_AUTH_TOKEN");
    }
    if (!token || !token[0]) {
        fprintf(stderr, "telua: no auth token (set TWILIO_AUTH_TOKEN or --auth-token-file)\n");
        free(token);
        return 2;
    }
    c.auth_token = token;
    c.account_sid = getenv("TWILIO_ACCOUNT_SID") && getenv("TWILIO_ACCOUNT_SID")[0] ? getenv("TWILIO_ACCOUNT_SID") : NULL;
    c.twilio_base_url = getenv("TELUA_TWILIO_BASE_URL") && getenv("TELUA_TWILIO_BASE_URL")[0] ? getenv("TELUA_TWILIO_BASE_URL") : NULL;

    /* block the stop signals in every thread; one thread waits for them,
     * from before the rules load, so SIGTERM works at any time */
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGXFSZ, SIG_IGN); /* a file-size limit: the write fails (and is reported), the host lives */
    if (pipe(sig_pipe) != 0 || pthread_create(&sig_thread, NULL, signal_main, &set) != 0) {
        fprintf(stderr, "telua: cannot start the signal thread\n");
        free(token);
        return 1;
    }

    if (telua_host_start(&c, &h, err, sizeof err) != 0) {
        fprintf(stderr, "telua: %s\n", err);
        free(token);
        return 1;
    }
    atomic_store(&started, 1);
    memset(token, 0, strlen(token));
    free(token);
    tl_log("info", "telua %s listening on %s (port %u), %d workers, public URL %s, store %s",
           TELUA_VERSION, c.listen, telua_host_port(h), c.workers, c.public_url, c.store);
    printf("listening on port %u\n", telua_host_port(h));
    fflush(stdout);
    if (read(sig_pipe[0], &sig, sizeof sig) != (ssize_t)sizeof sig) sig = 0;
    tl_log("info", "signal %d: stopping", sig);
    telua_host_stop(h);
    free(fb_voice);
    free(fb_msg);
    return 0;
}

/* `telua campaign ...`: lua/telua/campaign.lua's main, on a plain state. */
static int campaign(const char *lua_dir, int argc, char **argv)
{
    tl_vm *vm = tl_vm_new(0, 0, lua_dir);
    lua_State *L;
    int i, rc = 1;
    if (!vm) return 1;
    L = vm->L;
    lua_getglobal(L, "require");
    lua_pushliteral(L, "telua.campaign");
    if (tl_vm_pcall(vm, 1, 1, 0) != LUA_OK) {
        fprintf(stderr, "telua: %s\n", lua_tostring(L, -1));
        tl_vm_free(vm);
        return 1;
    }
    lua_getfield(L, -1, "main");
    lua_createtable(L, argc, 0);
    for (i = 0; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_createtable(L, 0, 1);
    lua_pushboolean(L, isatty(1));
    lua_setfield(L, -2, "tty");
    if (tl_vm_pcall(vm, 2, 1, 0) != LUA_OK) fprintf(stderr, "telua: %s\n", lua_tostring(L, -1));
    else rc = (int)lua_tointeger(L, -1);
    tl_vm_free(vm);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "serve")) return serve(argc - 2, argv + 2);
    if (argc >= 2 && !strcmp(argv[1], "campaign")) {
        const char *dir = getenv("TELUA_LUA_DIR") ? getenv("TELUA_LUA_DIR") : TELUA_LUADIR;
        return campaign(dir, argc - 2, argv + 2);
    }
    if (argc >= 2 && !strcmp(argv[1], "sandbox")) {
        const char *dir = getenv("TELUA_LUA_DIR") ? getenv("TELUA_LUA_DIR") : TELUA_LUADIR;
        return tl_sandbox_main(dir, argc - 2, argv + 2);
    }
    if (argc >= 2 && !strcmp(argv[1], "check")) {
        telua_config c;
        int i;
        telua_config_defaults(&c);
        for (i = 2; i < argc; i++) {
            if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
                usage(stdout);
                return 0;
            } else if (!strcmp(argv[i], "--unsafe-rules")) {
                c.unsafe_rules = 1;
            } else if (!strcmp(argv[i], "--load-ms") && i + 1 < argc) {
                c.load_ms = (unsigned)atoi(argv[++i]);
            } else if (argv[i][0] != '-' && !c.rules_dir) {
                c.rules_dir = argv[i];
            } else {
                fprintf(stderr, "telua: check: unexpected %s\n", argv[i]);
                return 2;
            }
        }
        if (!c.rules_dir) {
            usage(stderr);
            return 2;
        }
        signal(SIGXFSZ, SIG_IGN);
        return telua_check(&c, stdout);
    }
    if (argc == 2 && (!strcmp(argv[1], "version") || !strcmp(argv[1], "--version"))) {
        printf("telua %s\n", TELUA_VERSION);
        return 0;
    }
    if (argc == 2 && (!strcmp(argv[1], "help") || !strcmp(argv[1], "--help"))) {
        usage(stdout);
        return 0;
    }
    usage(stderr);
    return 2;
}
