/*
 * embed_api.c - the embedding API (telua.h) from a program, built twice by
 * `make test`: as C99 (-std=c99 -pedantic) and as C++17, each linked
 * against libtelua.so through pkg-config. TAP on stdout.
 *
 * It checks what a program sees without a network: its C module is
 * required by the rules (telua_check runs their top-level code), the log
 * callback gets telua's lines, telua_send refuses what Twilio would
 * (21211, 21602, 21603) and what the store knows (21610 after an
 * opt-out), queues a good message and returns the same id for the same
 * dedupe key, and a host starts and stops on a port of its own.
 */
#ifdef __cplusplus
#include <lua.hpp>
#else
#include <lauxlib.h>
#include <lua.h>
#endif
#include <telua.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int tests, failures;
static void ok(int cond, const char *what)
{
    tests++;
    if (!cond) failures++;
    printf("%s %d - %s%s\n", cond ? "ok" : "not ok", tests, LANG, what);
}

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static int log_lines, log_secret;
static void on_log(const char *level, const char *message, void *ud)
{
    (void)level;
    pthread_mutex_lock(&log_mu);
    log_lines++;
    if (strstr(message, (const char *)ud)) log_secret++;
    pthread_mutex_unlock(&log_mu);
}

static int twice(lua_State *L)
{
    lua_pushinteger(L, 2 * luaL_checkinteger(L, 1));
    return 1;
}

static int luaopen_calc(lua_State *L)
{
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, twice);
    lua_setfield(L, -2, "twice");
    return 1;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        exit(1);
    }
    fputs(text, f);
    fclose(f);
}

int main(void)
{
    static const telua_module mods[] = { { "calc", luaopen_calc } };
    const char *token = "embed-api-secret-token";
    char dir[] = "/tmp/telua-embed-XXXXXX", rules[256], store[300], err[512];
    telua_config c;
    telua_host *h = NULL;
    telua_message m;
    telua_send_error e;
    long long id, id2;
    FILE *devnull = fopen("/dev/null", "w");

    if (!mkdtemp(dir)) return 1;
    snprintf(rules, sizeof rules, "%s/rules", dir);
    snprintf(store, sizeof store, "sqlite:%s/state.db", dir);
    if (mkdir(rules, 0700) != 0) return 1;
    {
        char path[300];
        snprintf(path, sizeof path, "%s/app.lua", rules);
        /* the module must be there while the rules load, and give the right answer */
        write_file(path,
                   "local calc = require 'calc'\n"
                   "assert(calc.twice(21) == 42, 'calc.twice')\n"
                   "return { messages = { { handler = function(req) return nil end } } }\n");
    }

    telua_config_defaults(&c);
    c.rules_dir = rules;
    c.modules = mods;
    c.nmodules = 1;
    c.log = on_log;
    c.log_ud = (void *)token;
    ok(telua_check(&c, devnull) == 0, "the rules require the program's C module (telua_check)");
    c.nmodules = 0;
    ok(telua_check(&c, devnull) != 0, "without it they fail to load");
    c.nmodules = 1;

    c.listen = "127.0.0.1:0";
    c.public_url = "https://game.example.com";
    c.auth_token = token;
    c.store = "memory";
    c.workers = 1;
    ok(telua_host_start(&c, &h, err, sizeof err) == 0, "a host starts (memory store)");
    id = 0;
    if (!h) {
        printf("# %s\n", err);
        return 1;
    }
    ok(telua_host_port(h) > 0, "on a port of its own");
    memset(&m, 0, sizeof m);
    m.to = "+14155550111";
    m.from = "+15005550006";
    m.body = "hello";
    id = telua_send(h, &m, &e);
    ok(id > 0, "telua_send queues on the memory store too (one store for the process)");
    telua_host_stop(h);
    h = NULL;

    {
        /* the host copies what it is given: the caller's buffers may go */
        static char store_buf[300], region_buf[4];
        snprintf(store_buf, sizeof store_buf, "%s", store);
        snprintf(region_buf, sizeof region_buf, "US");
        c.store = store_buf;
        c.default_region = region_buf;
        ok(telua_host_start(&c, &h, err, sizeof err) == 0, "a host starts (sqlite store)");
        memset(store_buf, 'x', sizeof store_buf - 1);
        memset(region_buf, 'x', sizeof region_buf - 1);
    }
    if (!h) {
        printf("# %s\n", err);
        return 1;
    }
    m.to = "12";
    ok(telua_send(h, &m, &e) == -1 && e.code == 21211, "a To that is not a number: 21211");
    m.to = "(415) 555-0111"; /* national format, default_region US */
    m.body = NULL;
    ok(telua_send(h, &m, &e) == -1 && e.code == 21602, "no body and no content template: 21602");
    m.body = "hello";
    m.from = NULL;
    ok(telua_send(h, &m, &e) == -1 && e.code == 21603, "no From and no Messaging Service: 21603");
    m.from = "+15005550006";
    m.dedupe = "welcome:1";
    id = telua_send(h, &m, &e);
    ok(id > 0, "a good message is queued and gets an outbox id");
    id2 = telua_send(h, &m, &e);
    ok(id2 == id, "the same dedupe key returns the same id");
    m.dedupe = NULL;
    m.to = "+14155550199";
    {
        /* an opt-out the store knows about, recorded as the router records a STOP */
        char cmd[600];
        snprintf(cmd, sizeof cmd,
                 "sqlite3 %s/state.db \"INSERT INTO optouts(sender, recipient, keyword, created_at) "
                 "VALUES ('+15005550006', '+14155550199', 'STOP', 0)\" 2>/dev/null",
                 dir);
        if (system(cmd) == 0) ok(telua_send(h, &m, &e) == -1 && e.code == 21610, "an opted-out number: 21610");
        else ok(1, "# skip: no sqlite3 command");
    }
    telua_host_stop(h);
    pthread_mutex_lock(&log_mu);
    ok(log_lines > 0, "telua's log lines went to the program's callback");
    ok(log_secret == 0, "none of them holds the auth token");
    pthread_mutex_unlock(&log_mu);
    fclose(devnull);
    {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        if (system(cmd) != 0) printf("# could not remove %s\n", dir);
    }
    printf("1..%d\n", tests);
    return failures ? 1 : 0;
}
