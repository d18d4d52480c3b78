/*
 * main.c - the `telua` executable: serve, check, campaign, sandbox, version,
 * help. Options are parsed with getopt_long; `telua COMMAND --help` and
 * `telua help COMMAND` print a command's usage on stdout and exit 0; a bad
 * option exits 2 with one line on stderr.
 *
 *   telua serve --rules DIR --listen ADDR --public-url URL --store sqlite:FILE
 *   telua check DIR
 *
 * The auth token comes from TWILIO_AUTH_TOKEN or --auth-token-file FILE;
 * it is never printed or logged.
 */
#include "telua.h"
#include "cli.h"
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


int tl_sandbox_main(const char *lua_dir, int argc, char **argv); /* sandbox.c */

static const char MAIN_USAGE[] =
    "usage: telua COMMAND [options]\n"
    "\n"
    "commands:\n"
    "  serve     answer Twilio webhooks with the rules in a folder (hot-reloaded)\n"
    "  check     load a rules folder once and report its first error\n"
    "  campaign  send a template to every row of a CSV through the outbox\n"
    "  sandbox   Twilio's REST API on loopback, and signed inbound messages and calls\n"
    "  version   print the version\n"
    "  help      this text, or `telua help COMMAND` for one command's options\n"
    "\n"
    "`telua COMMAND --help` prints the options of COMMAND.\n";

static const char SERVE_USAGE[] =
    "usage: telua serve --rules DIR --public-url URL [options]\n"
    "\n"
    "  --rules DIR             rules folder (hot-reloaded)\n"
    "  --public-url URL        scheme://host[:port] that Twilio calls (signatures are checked against it)\n"
    "  --listen ADDR           HOST:PORT or [V6]:PORT (default 127.0.0.1:8080; port 0 picks one)\n"
    "  --store SPEC            sqlite:FILE (default sqlite:var/telua.db; the folder is made), memory:\n"
    "                          one in-memory store for the process, lost when it stops (tests), or a\n"
    "                          Redis shared by many hosts: redis://[user:password@]host:port[/db],\n"
    "                          rediss://... (TLS), unix:///path/redis.sock\n"
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
    "  --lua-dir DIR           where the telua Lua modules live (default: found by the install prefix)\n"
    "  --send-rates SPEC       pacing in segments/s, e.g. long_code=1,toll_free=3,short_code=100,\n"
    "                          whatsapp=10,account=2000,voice=1 (calls/s; 0 = unpaced)\n"
    "  --send-concurrency N    REST requests in flight (default 8)\n"
    "  --consumer NAME         this host's name in an outbox shared on Redis (default HOSTNAME:PORT)\n"
    "  --claim-timeout SECONDS another host's claim on a shared outbox entry stands this long (default 60)\n"
    "  --admin-listen ADDR     the admin listener: /metrics (Prometheus), /-/status (JSON), /-/health\n"
    "                          and the dashboard at / (default 127.0.0.1:9180, skipped with a warning\n"
    "                          when taken; never the webhook port; off: none, no metrics kept)\n"
    "  --admin-token-file FILE the admin listener asks for Authorization: Bearer <FILE's token>\n"
    "                          (at least 16 characters) on /metrics and /-/status\n"
    "  --log-format FORMAT     text (default) or json: one JSON object a line\n"
    "  --access-log on|off     one line per webhook the rules answered (default on): method, path,\n"
    "                          status, duration, rule file:line, request id, generation\n"
    "  -h, --help              this text\n"
    "\n"
    "environment: TWILIO_AUTH_TOKEN (read once, then cleared); with TWILIO_ACCOUNT_SID set, rules'\n"
    "  req.send goes out through the outbox; TELUA_TWILIO_BASE_URL points it elsewhere than\n"
    "  api.twilio.com (the sandbox)\n";

static const char CHECK_USAGE[] =
    "usage: telua check [options] DIR\n"
    "\n"
    "Loads the rules in DIR once, as `telua serve` would, and prints the first error as\n"
    "file:line: message; then lints them and prints each finding as file:line: code: message:\n"
    "credentials in code (account-sid, api-key, auth-token), phone numbers outside settings and\n"
    "templates (phone-number), marketing templates without opt-out wording (opt-out), undefined\n"
    "globals (luacheck's W111, W112, W113), a route written twice (duplicate-route), a flow step\n"
    "that does not exist (missing-step). Exits 0 when the rules load and no error is found, 1\n"
    "otherwise.\n"
    "\n"
    "  --strict                warnings fail the check too\n"
    "  --format FORMAT         text (default) or json: one object with ok, findings, notes\n"
    "  --load-ms MS            CPU budget of loading the rules (default 2000)\n"
    "  --unsafe-rules          load them with the whole standard library (no sandbox)\n"
    "  --lua-dir DIR           where the telua Lua modules live\n"
    "  -h, --help              this text\n";

static const char VERSION_USAGE[] =
    "usage: telua version\n"
    "\n"
    "Prints \"telua VERSION\".\n";

void tl_sandbox_usage(FILE *f); /* sandbox.c */

/* The help of one command on f; -1 when there is no such command. */
static int command_help(const char *lua_dir, const char *cmd, FILE *f);

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

enum {
    O_RULES = 256, O_LISTEN, O_PUBLIC_URL, O_STORE, O_WORKERS, O_MAX_BODY, O_TIMEOUT, O_READ_TIMEOUT,
    O_PER_IP, O_MAX_CONN, O_CPU_MS, O_LOAD_MS, O_REQ_TIMEOUT, O_MEM_MB, O_DEBOUNCE, O_UNSAFE,
    O_FB_VOICE, O_FB_MSG, O_TOKEN_FILE, O_LUA_DIR, O_SEND_RATES, O_SEND_CONC,
    O_CONSUMER, O_CLAIM_TIMEOUT, O_ADMIN_LISTEN, O_ADMIN_TOKEN_FILE, O_LOG_FORMAT, O_ACCESS_LOG,
    O_STRICT, O_FORMAT
};

static const struct option SERVE_OPTS[] = {
    { "rules", required_argument, NULL, O_RULES },
    { "listen", required_argument, NULL, O_LISTEN },
    { "public-url", required_argument, NULL, O_PUBLIC_URL },
    { "store", required_argument, NULL, O_STORE },
    { "workers", required_argument, NULL, O_WORKERS },
    { "max-body", required_argument, NULL, O_MAX_BODY },
    { "timeout", required_argument, NULL, O_TIMEOUT },
    { "read-timeout", required_argument, NULL, O_READ_TIMEOUT },
    { "per-ip-limit", required_argument, NULL, O_PER_IP },
    { "max-connections", required_argument, NULL, O_MAX_CONN },
    { "cpu-ms", required_argument, NULL, O_CPU_MS },
    { "load-ms", required_argument, NULL, O_LOAD_MS },
    { "request-timeout", required_argument, NULL, O_REQ_TIMEOUT },
    { "mem-mb", required_argument, NULL, O_MEM_MB },
    { "debounce-ms", required_argument, NULL, O_DEBOUNCE },
    { "unsafe-rules", no_argument, NULL, O_UNSAFE },
    { "fallback-voice", required_argument, NULL, O_FB_VOICE },
    { "fallback-messaging", required_argument, NULL, O_FB_MSG },
    { "auth-token-file", required_argument, NULL, O_TOKEN_FILE },
    { "lua-dir", required_argument, NULL, O_LUA_DIR },
    { "send-rates", required_argument, NULL, O_SEND_RATES },
    { "send-concurrency", required_argument, NULL, O_SEND_CONC },
    { "consumer", required_argument, NULL, O_CONSUMER },
    { "claim-timeout", required_argument, NULL, O_CLAIM_TIMEOUT },
    { "admin-listen", required_argument, NULL, O_ADMIN_LISTEN },
    { "admin-token-file", required_argument, NULL, O_ADMIN_TOKEN_FILE },
    { "log-format", required_argument, NULL, O_LOG_FORMAT },
    { "access-log", required_argument, NULL, O_ACCESS_LOG },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
};

/* A number option of serve into *out (unsigned or int); -1 after the
 * one-line error. */
#define NUM_OPT(field, min, max)                                                                   \
    do {                                                                                           \
        long n_;                                                                                   \
        if (tl_cli_long("serve", SERVE_OPTS[idx].name, optarg, (min), (max), &n_) != 0) goto bad;  \
        (field) = n_;                                                                              \
    } while (0)

static int serve(int argc, char **argv)
{
    telua_config c;
    telua_host *h;
    char err[1024], *token = NULL, *fb_voice = NULL, *fb_msg = NULL;
    const char *token_file = NULL;
    sigset_t set;
    pthread_t sig_thread;
    int opt, idx, sig = 0;
    long mem_mb = 64;
    const char *admin_token_file = NULL;
    char *admin_token = NULL;
    telua_config_defaults(&c);
    c.admin_listen = "127.0.0.1:9180";
    c.admin_optional = 1; /* the default address taken (another telua here): serve without it */
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":h", SERVE_OPTS, &idx)) != -1) {
        if (opt == 'h') {
            free(fb_voice);
            free(fb_msg);
            fputs(SERVE_USAGE, stdout);
            return 0;
        }
        if (opt == '?' || opt == ':') {
            tl_cli_refused("serve", argv, opt);
            goto bad;
        }
        switch (opt) {
        case O_RULES: c.rules_dir = optarg; break;
        case O_LISTEN: c.listen = optarg; break;
        case O_PUBLIC_URL: c.public_url = optarg; break;
        case O_STORE: c.store = optarg; break;
        case O_WORKERS: NUM_OPT(c.workers, 1, 256); break;
        case O_MAX_BODY: NUM_OPT(c.max_body, 1, 1L << 30); break;
        case O_TIMEOUT: NUM_OPT(c.timeout_s, 1, 86400); break;
        case O_READ_TIMEOUT: NUM_OPT(c.read_timeout_s, 1, 86400); break;
        case O_PER_IP: NUM_OPT(c.per_ip_limit, 0, 1000000); break;
        case O_MAX_CONN: NUM_OPT(c.max_connections, 1, 1000000); break;
        case O_CPU_MS: NUM_OPT(c.cpu_ms, 1, 600000); break;
        case O_LOAD_MS: NUM_OPT(c.load_ms, 1, 600000); break;
        case O_REQ_TIMEOUT: NUM_OPT(c.request_timeout_s, 1, 86400); break;
        case O_MEM_MB: NUM_OPT(mem_mb, 1, 1L << 20); c.mem_limit = (size_t)mem_mb * 1024 * 1024; break;
        case O_DEBOUNCE: NUM_OPT(c.debounce_ms, 0, 600000); break;
        case O_UNSAFE: c.unsafe_rules = 1; break;
        case O_TOKEN_FILE: token_file = optarg; break;
        case O_LUA_DIR: c.lua_dir = optarg; break;
        case O_SEND_RATES: c.send_rates = optarg; break;
        case O_SEND_CONC: NUM_OPT(c.send_concurrency, 1, 1024); break;
        case O_CONSUMER: c.consumer = optarg; break;
        case O_CLAIM_TIMEOUT: NUM_OPT(c.claim_timeout_s, 1, 86400); break;
        case O_ADMIN_LISTEN:
            c.admin_listen = strcmp(optarg, "off") == 0 ? NULL : optarg;
            c.admin_optional = 0;
            break;
        case O_ADMIN_TOKEN_FILE: admin_token_file = optarg; break;
        case O_LOG_FORMAT:
            if (strcmp(optarg, "text") && strcmp(optarg, "json")) {
                fprintf(stderr, "telua serve: --log-format is text or json, not %s\n", optarg);
                goto bad;
            }
            c.log_json = strcmp(optarg, "json") == 0;
            break;
        case O_ACCESS_LOG:
            if (strcmp(optarg, "on") && strcmp(optarg, "off")) {
                fprintf(stderr, "telua serve: --access-log is on or off, not %s\n", optarg);
                goto bad;
            }
            c.access_log = strcmp(optarg, "on") == 0;
            break;
        case O_FB_VOICE:
        case O_FB_MSG: {
            char **dst = opt == O_FB_VOICE ? &fb_voice : &fb_msg;
            free(*dst);
            if (!(*dst = slurp(optarg, 65536))) {
                fprintf(stderr, "telua serve: cannot read %s: %s\n", optarg, strerror(errno));
                goto bad;
            }
            if (opt == O_FB_VOICE) c.fallback_voice = fb_voice;
            else c.fallback_messaging = fb_msg;
            break;
        }
        }
    }
    if (optind < argc) {
        fprintf(stderr, "telua serve: unexpected argument %s (telua serve --help)\n", argv[optind]);
        goto bad;
    }
    if (!c.rules_dir || !c.public_url) {
        fprintf(stderr, "telua serve: --rules and --public-url are required (telua serve --help)\n");
        goto bad;
    }
    if (token_file) {
        token = slurp(token_file, 4096);
        if (!token) {
            fprintf(stderr, "telua serve: cannot read the auth token file: %s\n", strerror(errno));
            goto bad;
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
        fprintf(stderr, "telua serve: no auth token (set TWILIO_AUTH_TOKEN or --auth-token-file)\n");
        free(token);
        goto bad;
    }
    c.auth_token = token;
    if (admin_token_file) {
        size_t n;
        if (!(admin_token = slurp(admin_token_file, 4096))) {
            fprintf(stderr, "telua serve: cannot read the admin token file: %s\n", strerror(errno));
            free(token);
            goto bad;
        }
        n = strlen(admin_token);
        while (n > 0 && (admin_token[n - 1] == '\n' || admin_token[n - 1] == '\r' || admin_token[n - 1] == ' '))
            admin_token[--n] = 0;
        if (n < 16) {
            fprintf(stderr, "telua serve: the admin token must be at least 16 characters\n");
            free(admin_token);
            free(token);
            goto bad;
        }
        c.admin_token = admin_token;
    }
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
        free(admin_token);
        return 1;
    }
    if (admin_token) {
        memset(admin_token, 0, strlen(admin_token));
        free(admin_token);
    }
    atomic_store(&started, 1);
    memset(token, 0, strlen(token));
    free(token);
    tl_log("info", "telua %s listening on %s (port %u), %d workers, public URL %s, store %s, modules in %s",
           TELUA_VERSION, c.listen, telua_host_port(h), c.workers, c.public_url, c.store,
           c.lua_dir ? c.lua_dir : tl_default_lua_dir());
    if (telua_host_admin_port(h))
        tl_log("info", "admin listener on %s (port %u): /metrics, /-/status, /-/health, dashboard at /%s",
               c.admin_listen, telua_host_admin_port(h), c.admin_token ? " (bearer token required)" : "");
    printf("listening on port %u\n", telua_host_port(h));
    if (telua_host_admin_port(h)) printf("admin on port %u\n", telua_host_admin_port(h));
    else printf("admin off\n");
    fflush(stdout);
    if (read(sig_pipe[0], &sig, sizeof sig) != (ssize_t)sizeof sig) sig = 0;
    tl_log("info", "signal %d: stopping", sig);
    telua_host_stop(h);
    free(fb_voice);
    free(fb_msg);
    return 0;
bad:
    free(fb_voice);
    free(fb_msg);
    return 2;
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

static const struct option CHECK_OPTS[] = {
    { "load-ms", required_argument, NULL, O_LOAD_MS },
    { "unsafe-rules", no_argument, NULL, O_UNSAFE },
    { "lua-dir", required_argument, NULL, O_LUA_DIR },
    { "strict", no_argument, NULL, O_STRICT },
    { "format", required_argument, NULL, O_FORMAT },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
};

static int check(int argc, char **argv)
{
    telua_config c;
    int opt;
    long n;
    telua_config_defaults(&c);
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":h", CHECK_OPTS, NULL)) != -1) {
        switch (opt) {
        case 'h': fputs(CHECK_USAGE, stdout); return 0;
        case O_UNSAFE: c.unsafe_rules = 1; break;
        case O_LUA_DIR: c.lua_dir = optarg; break;
        case O_STRICT: c.check_strict = 1; break;
        case O_FORMAT:
            if (strcmp(optarg, "text") && strcmp(optarg, "json")) {
                fprintf(stderr, "telua check: --format is text or json, not %s\n", optarg);
                return 2;
            }
            c.check_json = strcmp(optarg, "json") == 0;
            break;
        case O_LOAD_MS:
            if (tl_cli_long("check", "load-ms", optarg, 1, 600000, &n) != 0) return 2;
            c.load_ms = (unsigned)n;
            break;
        default: return tl_cli_refused("check", argv, opt);
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "telua check: %s (telua check --help)\n",
                optind >= argc ? "give the rules folder" : "give one rules folder");
        return 2;
    }
    c.rules_dir = argv[optind];
    signal(SIGXFSZ, SIG_IGN);
    return telua_check(&c, stdout);
}

static int command_help(const char *lua_dir, const char *cmd, FILE *f)
{
    if (!strcmp(cmd, "serve")) fputs(SERVE_USAGE, f);
    else if (!strcmp(cmd, "check")) fputs(CHECK_USAGE, f);
    else if (!strcmp(cmd, "sandbox")) tl_sandbox_usage(f);
    else if (!strcmp(cmd, "version")) fputs(VERSION_USAGE, f);
    else if (!strcmp(cmd, "help")) fputs(MAIN_USAGE, f);
    else if (!strcmp(cmd, "campaign")) {
        char *args[] = { "--help", NULL };
        fflush(f);
        return campaign(lua_dir, 1, args) == 0 ? 0 : -1;
    } else return -1;
    return 0;
}

int main(int argc, char **argv)
{
    const char *cmd = argc >= 2 ? argv[1] : NULL;
    const char *lua_dir = tl_default_lua_dir();
    if (!cmd) {
        fputs(MAIN_USAGE, stderr);
        return 2;
    }
    if (!strcmp(cmd, "serve")) return serve(argc - 1, argv + 1);
    if (!strcmp(cmd, "check")) return check(argc - 1, argv + 1);
    if (!strcmp(cmd, "campaign")) return campaign(lua_dir, argc - 2, argv + 2);
    if (!strcmp(cmd, "sandbox")) return tl_sandbox_main(lua_dir, argc - 2, argv + 2);
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version") || !strcmp(cmd, "-V")) {
        if (argc > 2 && (!strcmp(argv[2], "--help") || !strcmp(argv[2], "-h"))) {
            fputs(VERSION_USAGE, stdout);
            return 0;
        }
        printf("telua %s\n", TELUA_VERSION);
        return 0;
    }
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        if (argc > 2) {
            if (command_help(lua_dir, argv[2], stdout) == 0) return 0;
            fprintf(stderr, "telua help: no command '%s' (telua --help lists them)\n", argv[2]);
            return 2;
        }
        fputs(MAIN_USAGE, stdout);
        return 0;
    }
    fprintf(stderr, "telua: unknown command '%s' (telua --help lists them)\n", cmd);
    return 2;
}
