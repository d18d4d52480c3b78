/*
 * game_server.c - a small game server that embeds the telua host.
 *
 * The game keeps its players in C. It gives the rules a `game` module
 * (game.player(phone) -> { name, level } or nil; game.verify(phone, code)),
 * sends a player a verification code with telua_send, and hears from
 * telua through the event callback (inbound messages, opt-outs, delivery
 * statuses) and the log callback (telua's lines in the game's log). The
 * player's SMS reply reaches the rules (rules/game.lua), which call back
 * into the game; the game loop sees the verified player and ends.
 *
 *   cc game_server.c $(pkg-config --cflags --libs telua) -o game_server
 *   TWILIO_ACCOUNT_SID=AC... TWILIO_AUTH_TOKEN=... ./game_server --rules rules \
 *       --listen 127.0.0.1:8081 --public-url https://game.example.com --store sqlite:game.db \
 *       --player +14155550111
 *
 * TELUA_TWILIO_BASE_URL points the sender at `telua sandbox` instead of
 * api.twilio.com.
 */
#include <telua.h>

#include <lauxlib.h>
#include <lua.h>

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- the game's own state ---------------------------------------------- */

typedef struct {
    const char *phone, *name;
    int level;
    char code[8];         /* the verification code sent to the player */
    int verified;
} player;

static player players[] = {
    { "+14155550111", "Ana", 12, "", 0 },
    { "+14155550122", "Ravi", 3, "", 0 },
};
#define NPLAYERS (sizeof players / sizeof players[0])

static pthread_mutex_t game_mu = PTHREAD_MUTEX_INITIALIZER; /* players: the rules run on telua's threads */
static pthread_cond_t game_cv = PTHREAD_COND_INITIALIZER;
static volatile sig_atomic_t stop_requested;

static player *find_player(const char *phone)
{
    size_t i;
    for (i = 0; phone && i < NPLAYERS; i++)
        if (!strcmp(players[i].phone, phone)) return &players[i];
    return NULL;
}

/* ---- the `game` module the rules require ------------------------------ */

/* game.player(phone) -> { name = ..., level = ... } | nil */
static int l_player(lua_State *L)
{
    const char *phone = luaL_checkstring(L, 1);
    player *p;
    pthread_mutex_lock(&game_mu);
    p = find_player(phone);
    if (!p) {
        pthread_mutex_unlock(&game_mu);
        lua_pushnil(L);
        return 1;
    }
    lua_createtable(L, 0, 3);
    lua_pushstring(L, p->name);
    lua_setfield(L, -2, "name");
    lua_pushinteger(L, p->level);
    lua_setfield(L, -2, "level");
    lua_pushboolean(L, p->verified);
    lua_setfield(L, -2, "verified");
    pthread_mutex_unlock(&game_mu);
    return 1;
}

/* game.verify(phone, code) -> true | false: the game's callback */
static int l_verify(lua_State *L)
{
    const char *phone = luaL_checkstring(L, 1), *code = luaL_checkstring(L, 2);
    player *p;
    int ok;
    pthread_mutex_lock(&game_mu);
    p = find_player(phone);
    ok = p && p->code[0] && !strcmp(p->code, code);
    if (ok) {
        p->verified = 1;
        p->code[0] = 0; /* a code works once */
        pthread_cond_broadcast(&game_cv);
    }
    pthread_mutex_unlock(&game_mu);
    lua_pushboolean(L, ok);
    return 1;
}

static int luaopen_game(lua_State *L)
{
    static const luaL_Reg fns[] = { { "player", l_player }, { "verify", l_verify }, { NULL, NULL } };
    lua_createtable(L, 0, 2);
    luaL_setfuncs(L, fns, 0);
    return 1;
}

/* ---- telua's callbacks -------------------------------------------------- */

static void on_log(const char *level, const char *message, void *ud)
{
    (void)ud;
    fprintf(stderr, "[game] telua %s: %s\n", level, message);
}

static void on_event(const telua_event *e, void *ud)
{
    (void)ud;
    switch (e->kind) {
    case TELUA_EVENT_INBOUND: printf("event: inbound from %s\n", e->from); break;
    case TELUA_EVENT_OPTOUT: printf("event: %s opted out (%s)\n", e->from, e->keyword); break;
    case TELUA_EVENT_OPTIN: printf("event: %s opted in (%s)\n", e->from, e->keyword); break;
    case TELUA_EVENT_STATUS:
        printf("event: message %lld to %s is %s%s%d\n", e->outbox_id, e->to ? e->to : "?", e->status,
               e->error_code ? " error " : "", e->error_code);
        break;
    }
    fflush(stdout);
}

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static const char *arg(int argc, char **argv, const char *name, const char *dflt)
{
    int i;
    for (i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], name)) return argv[i + 1];
    return dflt;
}

int main(int argc, char **argv)
{
    static const telua_module modules[] = { { "game", luaopen_game } };
    const char *token = getenv("TWILIO_AUTH_TOKEN");
    const char *phone = arg(argc, argv, "--player", "+14155550111");
    char err[512], body[128], callback[512];
    telua_config c;
    telua_host *h;
    telua_message m;
    telua_send_error serr;
    long long id;
    player *p;
    unsigned seed;
    FILE *rnd;
    int ticks = 0, verified = 0, timeout_s = atoi(arg(argc, argv, "--timeout", "60"));

    telua_config_defaults(&c);
    c.rules_dir = arg(argc, argv, "--rules", "rules");
    c.listen = arg(argc, argv, "--listen", "127.0.0.1:8081");
    c.public_url = arg(argc, argv, "--public-url", "http://127.0.0.1:8081");
    c.store = arg(argc, argv, "--store", "sqlite:game.db");
    c.auth_token = token;
    c.account_sid = getenv("TWILIO_ACCOUNT_SID");
    c.twilio_base_url = getenv("TELUA_TWILIO_BASE_URL");
    c.workers = 1;
    c.modules = modules;
    c.nmodules = 1;
    c.on_event = on_event;
    c.log = on_log;
    if (!token || !c.account_sid) {
        fprintf(stderr, "game: set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN\n");
        return 2;
    }
    if (telua_host_start(&c, &h, err, sizeof err) != 0) {
        fprintf(stderr, "game: telua: %s\n", err);
        return 1;
    }
    printf("game: telua listening on port %u\n", telua_host_port(h));
    fflush(stdout);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);

    /* a verification code for the player, by SMS through telua's outbox */
    rnd = fopen("/dev/urandom", "rb");
    if (!rnd || fread(&seed, sizeof seed, 1, rnd) != 1) seed = (unsigned)time(NULL) ^ (unsigned)getpid();
    if (rnd) fclose(rnd);
    pthread_mutex_lock(&game_mu);
    p = find_player(phone);
    if (p) snprintf(p->code, sizeof p->code, "%06u", seed % 1000000u);
    pthread_mutex_unlock(&game_mu);
    if (!p) {
        fprintf(stderr, "game: no player %s\n", phone);
        telua_host_stop(h);
        return 1;
    }
    snprintf(body, sizeof body, "Your Space Raiders code is %s. Reply with it to link your phone.", p->code);
    snprintf(callback, sizeof callback, "%s/status/messages", c.public_url);
    memset(&m, 0, sizeof m);
    m.to = phone;
    m.from = arg(argc, argv, "--from", "+15005550006");
    m.body = body;
    m.status_callback = callback;
    id = telua_send(h, &m, &serr);
    if (id < 0) {
        fprintf(stderr, "game: telua_send: %d %s\n", serr.code, serr.message);
        telua_host_stop(h);
        return 1;
    }
    printf("game: code sent to %s (outbox %lld)\n", phone, id);
    fflush(stdout);

    /* the game loop: 20 ticks a second until the player is verified */
    while (!stop_requested && ticks < timeout_s * 20) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 50 * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&game_mu);
        if (!p->verified) pthread_cond_timedwait(&game_cv, &game_mu, &until);
        verified = p->verified;
        pthread_mutex_unlock(&game_mu);
        if (verified) break;
        ticks++;
    }
    if (verified) printf("game: player %s (%s, level %d) verified\n", p->name, p->phone, p->level);
    else printf("game: %s was not verified\n", phone);
    fflush(stdout);
    telua_host_stop(h);
    return verified ? 0 : 1;
}
