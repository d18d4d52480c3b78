/*
 * host.h - the parts of the webhook host, and what they share.
 *
 *   server.c   start, stop, `telua check`: puts the parts together
 *   front.c    the libmicrohttpd front end: one daemon per worker, body
 *              buffering, the checks before any rule runs (method, size,
 *              form, X-Twilio-Signature), answers and turned-away logging
 *   conns.c    read deadlines: a request's headers and body must arrive
 *              within read_timeout_s, however slowly they trickle
 *   driver.c   runs a request's rules as a coroutine: builds `req`,
 *              resumes, hands I/O to the worker's I/O thread, reads and
 *              checks the answer; every step inside a protected call
 *   admin.c    the admin listener: /metrics, /-/status, /-/health, dashboard
 *   metrics.c  the counters, gauges and histograms behind /metrics
 *   status.c   the JSON of GET /-/status
 *   sender.c   the sender thread (lua/telua/sender.lua)
 *   embed.c    the embedding API: events, C modules, telua_send
 *
 * Threads: one MHD daemon thread per worker (worker i only ever runs
 * lua_State i of a generation), one I/O thread per worker (io.h), the
 * reload watcher (gen.h), the read-deadline reaper (conns.c) and the
 * sender.
 */
#ifndef TELUA_HOST_H
#define TELUA_HOST_H

#include "telua.h"
#include "body.h"
#include "gen.h"
#include "io.h"
#include "metrics.h"

#include "../core/signature.h"

#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

typedef struct worker {
    struct telua_host *h;
    int index;
    struct MHD_Daemon *daemon;
    tl_io *io;                /* the rules' HTTP requests and timers */
    unsigned long long rng;   /* request ids (driver.c); this worker's thread only */
} worker;

/* A socket's read deadline (conns.c). */
typedef struct tl_conn {
    int fd;
    long long due_ns;         /* shut down past this; 0: a request is being answered */
    struct tl_conn *prev, *next;
} tl_conn;

typedef struct tl_conns {
    pthread_mutex_t mu;       /* guards the list and every entry's due_ns */
    tl_conn *head;
    long long timeout_ns;
    pthread_t reaper;
    int stop_pipe[2];
    int running;
    atomic_ulong reaped;
} tl_conns;

struct telua_host {
    telua_config cfg;
    tl_vm *sender;            /* the sender thread's state (NULL: no sender) */
    char *owned[16];          /* cfg's strings, copied (own_config in server.c) */
    int nowned;
    telua_module *modules;    /* cfg.modules, copied */
    struct sqlite3 *mem_db;   /* store "memory": a connection that keeps the process's database */
    char consumer[300];       /* this host's name in a shared outbox (Redis) */
    pthread_mutex_t api_mu;   /* guards api: telua_send's state (embed.c), made at the first call */
    tl_vm *api;
    int api_ref;
    pthread_t sender_thread;
    atomic_int stopping;
    worker *w;
    char *public_url, *fallback_voice, *fallback_messaging;
    tl_sig_key *key;          /* the auth token, prepared for signatures */
    char *token;              /* the auth token, for the states' telua.client and the sender; never logged */
    size_t public_len;
    tl_gens gens;
    tl_conns conns;
    atomic_ulong requests, rejected, errors, bad_results, budget_hits, mem_hits, store_failures;
    atomic_int inflight;      /* requests whose rules have not finished (some wait on I/O) */
    int wd_started;           /* tl_wd_start succeeded: the budget's watchdog (watchdog.h) */
    unsigned port;
    /* seeing it run (admin.c, metrics.h) */
    tl_metrics *metrics;      /* NULL: no admin listener, nothing recorded */
    struct tl_access_log *access; /* NULL: no access lines (log.h) */
    struct MHD_Daemon *admin;
    unsigned admin_port;
    char *admin_token;        /* NULL: none; never logged */
    long long started_ns;     /* tl_now_ns() at start, for the uptime */
    time_t started_at;
    /* rejection log lines (400/403/413), at most REJECT_LOG_PER_S a second */
    pthread_mutex_t reject_mu;
    time_t reject_sec;
    unsigned reject_logged;
    unsigned long reject_unlogged;
};

/* One request, from its request line to its answer (MHD's con_cls). */
typedef struct req_ctx {
    char *uri;                /* raw request target as received: path + "?" + query */
    tl_body body;
    int started;
    tl_conn *conn;            /* the socket's read deadline */
    /* the rules' coroutine, while the request runs (it may wait on I/O) */
    struct MHD_Connection *con;
    tl_gen *gen;              /* acquired for the whole request */
    int index;                /* the worker */
    lua_State *co;
    int co_ref, ctx_ref;
    tl_http_job *job;         /* the I/O it waits for */
    struct tl_redis_job *rjob;/* or the Redis commands */
    int io_kind;              /* IO_HTTP, IO_BATCH, IO_SLEEP, IO_REDIS; 0: none */
    long long budget_ns;      /* CPU time left */
    long long wall_due_ns;    /* request_timeout_s after the rules started */
    char method[16];
    char *path;
    long long arrived_ns;     /* the whole request read, for its duration */
    char id[17];              /* the request id: access line, the rule's req.log lines */
} req_ctx;

enum { IO_HTTP = 1, IO_BATCH, IO_SLEEP, IO_REDIS };

/* A store on Redis (redis://, rediss://, unix://): shared by hosts. */
static inline int tl_store_redis(const char *spec)
{
    return strncmp(spec, "redis://", 8) == 0 || strncmp(spec, "rediss://", 9) == 0 || strncmp(spec, "unix://", 7) == 0;
}

/* A store the workers, the sender and telua_send can share: a SQLite file,
 * the process's memory store ("sqlite::memory:" is one connection's), or Redis. */
static inline int tl_store_shared(const char *spec)
{
    return (strncmp(spec, "sqlite:", 7) == 0 && strcmp(spec, "sqlite::memory:") != 0) || strcmp(spec, "memory") == 0 ||
           tl_store_redis(spec);
}

/* front.c */
int tl_front_start(telua_host *h, int index, const struct sockaddr *sa, int v6, char *err, size_t errlen);
enum MHD_Result tl_reply(struct MHD_Connection *con, unsigned status, const char *ctype, const char *body,
                         size_t len, int generation);
enum MHD_Result tl_send_text(struct MHD_Connection *con, unsigned status, const char *text);
/* An answer of malloc'd body, which MHD frees (also when it fails), with
 * Cache-Control: no-store (the admin listener's figures). */
enum MHD_Result tl_send_owned(struct MHD_Connection *con, unsigned status, const char *ctype, char *body, size_t len);

/* driver.c: runs the rules of a verified request; resumes one back from I/O;
 * lets go of one whose connection ended while its rules were running */
enum MHD_Result tl_driver_run(telua_host *h, int index, struct MHD_Connection *con, req_ctx *c,
                              const char *method, const char *path, const char *query, const char *url,
                              const tl_param *params, size_t nparams, const char *form_raw, size_t form_len,
                              const char *raw_body, size_t raw_len);
enum MHD_Result tl_driver_resume(telua_host *h, req_ctx *c);
void tl_driver_abandon(telua_host *h, req_ctx *c);

/* admin.c: the admin listener (nothing when cfg.admin_listen is NULL) */
int tl_admin_start(telua_host *h, char *err, size_t errlen);
void tl_admin_stop(telua_host *h);

/* status.c */
enum MHD_Result tl_send_status(struct MHD_Connection *con, telua_host *h);

/* sender.c */
int tl_sender_start(telua_host *h, char *err, size_t errlen);
void tl_sender_stop(telua_host *h);

/* conns.c */
int tl_conns_init(tl_conns *cs, unsigned timeout_s);
void tl_conns_close(tl_conns *cs);
tl_conn *tl_conns_add(tl_conns *cs, int fd);
void tl_conns_remove(tl_conns *cs, tl_conn *c);
void tl_conns_answering(tl_conns *cs, tl_conn *c);   /* the request is in: no read deadline */
void tl_conns_next(tl_conns *cs, tl_conn *c);        /* answered: the next request's clock starts */

#endif
