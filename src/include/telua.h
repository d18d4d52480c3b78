/*
 * telua.h - embedding API of the telua host.
 *
 * A C or C++ program (a game server, say) starts the webhook server on its
 * own address with its own rules folder, and stops it; everything else
 * (workers, rules generations, hot reload) runs inside. The auth token is
 * copied and never logged.
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
 */
#ifndef TELUA_H
#define TELUA_H

#include <stddef.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct telua_config {
    const char *rules_dir;          /* folder of rules files (required) */
    const char *listen;             /* "127.0.0.1:8080", "[::1]:8080"; port 0 picks one */
    const char *public_url;         /* scheme://host[:port] Twilio uses; no trailing slash needed */
    const char *store;              /* "sqlite:FILE" or "memory" */
    const char *auth_token;         /* Twilio auth token (required for serve) */
    const char *lua_dir;            /* where lua/telua lives; NULL: built-in default */
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
    /* outbound: with an account SID and a sqlite store, a sender thread
     * sends what rules queue with req.send (see lua/telua/sender.lua) */
    const char *account_sid;        /* AC...; NULL: no sender */
    const char *twilio_base_url;    /* NULL: https://api.twilio.com (e.g. the sandbox's URL) */
    const char *send_rates;         /* "long_code=1,toll_free=3,..." over the defaults; NULL: defaults */
    int send_concurrency;           /* REST requests at once (default 8) */
} telua_config;

typedef struct telua_host telua_host;

/* Fills every field with its default (rules_dir, public_url, auth_token NULL). */
void telua_config_defaults(telua_config *c);

/* Loads the rules (the first generation must load whole), starts the
 * workers, the HTTP server and the reload watcher. Returns 0, or -1 with a
 * message in err. */
int telua_host_start(const telua_config *c, telua_host **out, char *err, size_t errlen);

/* The port actually bound (useful with port 0). */
unsigned telua_host_port(const telua_host *h);

/* Stops accepting, lets in-flight requests finish, frees everything. */
void telua_host_stop(telua_host *h);

/* Loads a rules folder once and writes its first error (file:line:
 * message) or "ok" to out. Returns 0 when the rules load. */
int telua_check(const telua_config *c, FILE *out);

#ifdef __cplusplus
}
#endif
#endif
