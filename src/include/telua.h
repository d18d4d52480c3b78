/*
 * telua.h - embedding API of the telua host (libtelua, `pkg-config telua`).
 *
 * A C or C++ program (a game server, say) runs the webhook host on its own
 * address with its own rules folder: workers, rules generations and hot
 * reload run inside, on the host's own threads. The program may give the
 * rules its own C modules, queue messages through the outbox, hear about
 * inbound messages, opt-outs and delivery statuses, and take telua's log
 * lines into its own logger. The auth token is copied and never logged.
 *
 *   telua_config c;
 *   telua_config_defaults(&c);
 *   c.rules_dir = "rules"; c.listen = "127.0.0.1:8080";
 *   c.public_url = "https://example.com"; c.auth_token = token;
 *   telua_host *h;
 *   char err[256];
 *   if (telua_host_start(&c, &h, err, sizeof err) != 0) { fprintf(stderr, "%s\n", err); }
 *   ...
 *   telua_host_stop(h);
 *
 * Threads: telua_host_start, telua_host_stop and telua_check are called by
 * the program's own thread (not from a callback); telua_send and
 * telua_host_port from any thread, telua_send also from the callbacks.
 * Every string the API is given is copied before the call returns.
 * Compiles as C99 and as C++ (spec/c/embed_cxx.cpp checks C++17).
 *
 * Signals: with a CPU budget (cpu_ms, on by default) the host installs a
 * SIGURG handler while it runs; its watchdog thread sends SIGURG to a
 * worker whose rule ran past the budget (the handler sets the Lua hook
 * that stops it). A SIGURG handler the program had is called for every
 * SIGURG that is not the watchdog's, and the workers unblock SIGURG.
 */
#ifndef TELUA_H
#define TELUA_H

#include <stddef.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) && __GNUC__ >= 4
#define TELUA_API __attribute__((visibility("default")))
#else
#define TELUA_API
#endif

struct lua_State;

/* A C module the rules can `require` (lua.h's lua_CFunction: pushes the
 * module, returns 1). It is put in package.preload of every worker state
 * of every rules generation, and opened when the rules require it: by the
 * thread that builds the generation (telua_host_start's caller, or the
 * reload watcher), while its functions run on the worker threads during
 * requests, under the request's CPU budget. So it keeps no per-state data
 * in C globals, and reads the program's own state under the program's own
 * locks. The rules' sandbox lets them require these names as they are. */
typedef struct telua_module {
    const char *name;                       /* "game": `require "game"` */
    int (*open)(struct lua_State *L);       /* luaopen_game */
} telua_module;

/* What happened, for telua_config.on_event. */
typedef enum telua_event_kind {
    TELUA_EVENT_INBOUND = 1,  /* a message came in (after opt-out handling, before the rule runs) */
    TELUA_EVENT_OPTOUT,       /* someone opted out (STOP, or Twilio's 21610 at send time) */
    TELUA_EVENT_OPTIN,        /* someone opted back in (START) */
    TELUA_EVENT_STATUS        /* a message's status moved forward (Twilio's status callback, or the
                                 sender: "sent" once Twilio accepted it, "failed" when it never will) */
} telua_event_kind;

/* An event. Strings are valid during the callback only; absent ones NULL. */
typedef struct telua_event {
    telua_event_kind kind;
    const char *from;         /* INBOUND, OPTOUT, OPTIN: the user (E.164, or whatsapp:+E.164);
                                 STATUS: our sender */
    const char *to;           /* INBOUND, OPTOUT, OPTIN: our number or service; STATUS: the user */
    const char *body;         /* INBOUND: the text */
    const char *keyword;      /* OPTOUT, OPTIN: the word they sent ("STOP"), or "21610" */
    const char *message_sid;  /* INBOUND, STATUS: SM... (STATUS of a failed send: NULL) */
    const char *status;       /* STATUS: queued, sent, delivered, undelivered, failed, read, ... */
    int error_code;           /* STATUS: Twilio's error code (30003, 21211, ...); 0: none */
    long long outbox_id;      /* STATUS from the sender: the id telua_send returned; 0 otherwise */
} telua_event;

/* Called on the thread that saw the event: a worker thread (INBOUND,
 * OPTOUT, OPTIN, STATUS from a status callback; the time counts against
 * that request's CPU budget) or the sender thread (STATUS from a send).
 * That thread does nothing else meanwhile, so keep it short (hand work to
 * the program's own queue); it may call telua_send, and must not call
 * telua_host_stop. */
typedef void (*telua_event_fn)(const telua_event *e, void *ud);

/* Receives every log line (level: "debug", "info", "warn", "error"; the
 * message without timestamp or newline) instead of stderr. Called from
 * any of the host's threads, possibly at once: the function must be
 * thread-safe. telua's own lines never hold the auth token or a message
 * body (a rule's req.log lines hold what the rule writes). */
typedef void (*telua_log_fn)(const char *level, const char *message, void *ud);

typedef struct telua_config {
    const char *rules_dir;          /* folder of rules files (required) */
    const char *listen;             /* "127.0.0.1:8080", "[::1]:8080"; port 0 picks one */
    const char *public_url;         /* scheme://host[:port] Twilio uses; no trailing slash needed */
    const char *store;              /* "sqlite:FILE" (default "sqlite:var/telua.db", relative to the
                                       working directory; the folder is made if missing), "memory":
                                       one in-memory database for the whole process, shared by every
                                       worker, generation and the sender, gone when the host stops; or
                                       Redis, shared by many hosts: "redis://[user:password@]host:port[/db]",
                                       "rediss://..." (TLS), "unix:///path/redis.sock" */
    const char *auth_token;         /* Twilio auth token (required for serve) */
    const char *lua_dir;            /* the folder holding the telua modules; NULL: $TELUA_LUA_DIR, else
                                       share/lua/5.4 under libtelua's (or the program's) install
                                       prefix, else the build's checkout */
    int workers;                    /* worker threads, each with its own lua_State (default 2) */
    size_t max_body;                /* bytes; larger bodies get 413 (default 64 KiB) */
    unsigned timeout_s;             /* idle connection timeout, seconds (default 10) */
    unsigned read_timeout_s;        /* a request's headers and body must arrive within this, seconds,
                                       however steadily they trickle (default 10) */
    unsigned per_ip_limit;          /* connections one client address may hold open per worker
                                       (default 64; 0: no limit) */
    unsigned max_connections;       /* connections open at once per worker (default: what the open-file
                                       limit allows, at most 16384) */
    unsigned cpu_ms;                /* CPU budget of one request's Lua, ms (default 200) */
    unsigned load_ms;               /* CPU budget of loading the rules into one state, ms (default 2000) */
    unsigned request_timeout_s;     /* wall-clock limit of one request's rules, I/O waits included;
                                       past it the caller gets the fallback (default 14: Twilio waits 15) */
    int unsafe_rules;               /* 1: rules get the whole standard library (no sandbox) */
    size_t mem_limit;               /* bytes one lua_State may hold (default 64 MiB) */
    unsigned debounce_ms;           /* rules folder quiet time before a reload (default 150) */
    const char *fallback_voice;     /* TwiML answered when a voice rule fails */
    const char *fallback_messaging; /* TwiML answered when a messaging rule fails */
    /* outbound: with an account SID (and a sqlite or memory store), a sender thread
     * sends what rules queue with req.send (see lua/telua/sender.lua) */
    const char *account_sid;        /* AC...; NULL: no sender */
    const char *twilio_base_url;    /* NULL: https://api.twilio.com (e.g. the sandbox's URL) */
    const char *send_rates;         /* "long_code=1,toll_free=3,..." over the defaults; NULL: defaults */
    int send_concurrency;           /* REST requests at once (default 8) */
    /* embedding */
    const telua_module *modules;    /* C modules the rules can require (NULL: none) */
    size_t nmodules;
    telua_event_fn on_event;        /* NULL: no events */
    void *event_ud;
    telua_log_fn log;               /* NULL: lines go to stderr. Process-wide: set by telua_host_start
                                       (and telua_check) for every host of the process, until
                                       telua_host_stop */
    void *log_ud;
    const char *default_region;     /* telua_send: region of numbers written without +country ("US");
                                       NULL: numbers must be in E.164 */
    /* a store shared by hosts (Redis) */
    const char *consumer;           /* this host's name in the shared outbox (NULL: "HOSTNAME:PORT"); a
                                       restarted host with the same name reconciles what it held */
    unsigned claim_timeout_s;       /* another host's claim on an outbox entry stands this long, then
                                       this host takes the entry over (default 60) */
    /* seeing it run */
    const char *admin_listen;       /* the admin listener (/metrics, /-/status, /-/health, dashboard):
                                       "127.0.0.1:9180"; never the webhook port; NULL (the default
                                       here; `telua serve` defaults to 127.0.0.1:9180): none, and no
                                       metrics are kept */
    int admin_optional;             /* 1: when admin_listen cannot be bound, log a warning and serve
                                       without it (telua serve's default address) */
    const char *admin_token;        /* NULL: none; else /metrics and /-/status need
                                       "Authorization: Bearer TOKEN" */
    int log_json;                   /* 1: every log line is one JSON object (stderr or the log function) */
    int access_log;                 /* 1 (default): one line per webhook the rules answered */
    /* telua_check */
    int check_strict;               /* 1: the lint's warnings fail the check too */
    int check_json;                 /* 1: telua_check writes one JSON object */
} telua_config;

/* An outbound message for telua_send: the parameters of Twilio's Messages
 * resource (https://www.twilio.com/docs/messaging/api/message-resource). */
typedef struct telua_message {
    const char *to;                     /* required: E.164, or whatsapp:+E.164 */
    const char *from;                   /* a number, short code, alphanumeric ID or whatsapp:+N ... */
    const char *messaging_service_sid;  /* ... or MG...: one of the two */
    const char *body;                   /* the text (up to 1600 characters) ... */
    const char *content_sid;            /* ... or a content template HX... (needed outside WhatsApp's
                                           24-hour window) */
    const char *content_variables;      /* with content_sid: a JSON object, {"1":"Ana"} */
    const char *const *media_urls;      /* NULL or nmedia http(s) URLs (at most 10) */
    size_t nmedia;
    const char *status_callback;        /* URL Twilio posts the statuses to; NULL: none */
    const char *dedupe;                 /* NULL, or a key: a second send with it returns the first id */
} telua_message;

/* Why telua_send refused. */
typedef struct telua_send_error {
    int code;             /* Twilio's error code: 21211 invalid To, 21212 invalid From, 21602 body
                             required, 21610 opted out, 21617 body too long, 63016 outside the
                             WhatsApp window, ...; 0: not Twilio's (no store, out of memory) */
    char message[256];
} telua_send_error;

typedef struct telua_host telua_host;

/* Fills every field with its default (rules_dir, public_url, auth_token NULL). */
TELUA_API void telua_config_defaults(telua_config *c);

/* Loads the rules (the first generation must load whole), starts the
 * workers, the HTTP server and the reload watcher. Returns 0, or -1 with a
 * message in err. */
TELUA_API int telua_host_start(const telua_config *c, telua_host **out, char *err, size_t errlen);

/* The port actually bound (useful with port 0). */
TELUA_API unsigned telua_host_port(const telua_host *h);

/* The admin listener's port (0: none). */
TELUA_API unsigned telua_host_admin_port(const telua_host *h);

/* Stops accepting, lets in-flight requests finish, frees everything. */
TELUA_API void telua_host_stop(telua_host *h);

/* Loads a rules folder once and writes its first error (file:line:
 * message), or lints it (lua/telua/lint.lua: credentials in code, phone
 * numbers outside settings, marketing templates without opt-out wording,
 * undefined globals, duplicate routes, flow steps that do not exist) and
 * writes each finding as file:line: code: message, then a summary; as one
 * JSON object with c.check_json. Returns 0 when the rules load and the
 * lint found no error (with c.check_strict, no warning either). */
TELUA_API int telua_check(const telua_config *c, FILE *out);

/* Queues one outbound message in the outbox, for the host's sender, with
 * the checks req.send makes: the numbers (E.164 with c.default_region),
 * the body or template (segments, length), media, the opt-out list and
 * WhatsApp's 24-hour window. Needs a store the sender shares (sqlite:FILE
 * or memory); it is sent when the host runs a sender (an account SID). Returns the outbox id (> 0; events of the message carry it), or
 * -1 with err filled (err may be NULL). Thread-safe: calls are taken one
 * at a time; each is a SQLite transaction (about a millisecond). */
TELUA_API long long telua_send(telua_host *h, const telua_message *m, telua_send_error *err);

#ifdef __cplusplus
}
#endif
#endif
