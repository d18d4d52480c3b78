/*
 * redis.h - telua.core's Redis connection (redis.c), and prepared Redis
 * jobs for a host that runs them off its Lua thread.
 *
 * A job is made on the thread that owns a Lua state (tl_redis_job_new
 * reads `{ key = spec, opts = connection options, cmds = { {argv}, ... } }`,
 * formats the commands, never raises), run on any thread with a
 * connection that thread owns (tl_redis_job_run: every command written at
 * once, then every reply read), and its replies pushed back on the Lua
 * thread (tl_redis_job_push: the list core's conn:pipeline returns, or
 * nil, message, code). The options carry the password: a job is freed
 * (tl_redis_job_free wipes it) and never logged.
 */
#ifndef TELUA_REDIS_H
#define TELUA_REDIS_H

#include <lua.h>
#include <stddef.h>

typedef struct {
    char *host, *path;        /* TCP host (default 127.0.0.1), or a Unix socket path */
    int port, db, tls;
    char *user, *password;    /* AUTH [user] password when password is set */
    char *cainfo, *servername;/* TLS: CA bundle (default: the system's), name to verify (default host) */
    double timeout, connect_timeout; /* seconds */
} tl_redis_opts;

typedef struct tl_redis tl_redis;
struct redisReply;

void tl_redis_opts_read(lua_State *L, int idx, tl_redis_opts *o); /* raises on a bad option */
int tl_redis_opts_copy(tl_redis_opts *dst, const tl_redis_opts *src);
void tl_redis_opts_free(tl_redis_opts *o);

/* A connection (opened at its first exchange, and again after a failure). */
tl_redis *tl_redis_new(const tl_redis_opts *o);
void tl_redis_free(tl_redis *r);
/* Writes buf (n formatted commands) and reads n replies into out. 0, or -1
 * with err and *code ("connect", "dns", "timeout", "tls", "auth", "send",
 * "recv", "protocol"). */
int tl_redis_exchange(tl_redis *r, const char *buf, size_t len, int n, struct redisReply **out, char *err,
                      size_t errlen, const char **code);

/* Formats the list of argument lists at idx (raises on a bad one). */
int tl_redis_format(lua_State *L, int idx, char **buf, size_t *len, int *n);
int tl_redis_push_replies(lua_State *L, struct redisReply **rep, int n);

/* Sets core.redis_connect in the table at the top of the stack. */
void tl_open_redis(lua_State *L);

typedef struct tl_redis_job tl_redis_job;
tl_redis_job *tl_redis_job_new(lua_State *L, int idx, char *err, size_t errlen);
const char *tl_redis_job_key(const tl_redis_job *j);
const tl_redis_opts *tl_redis_job_opts(const tl_redis_job *j);
void tl_redis_job_run(tl_redis_job *j, tl_redis *r);
/* Runs several jobs on one connection in one round trip (pipelined): all
 * commands written, then all replies read and handed to their jobs; when
 * the exchange fails every job fails with its message. */
void tl_redis_jobs_run(tl_redis_job **jobs, int n, tl_redis *r);
void tl_redis_job_fail(tl_redis_job *j, const char *code, const char *message);
/* Whether the job failed, with its code and message. */
int tl_redis_job_failed(const tl_redis_job *j, const char **code, char *err, size_t errlen);
int tl_redis_job_push(lua_State *L, tl_redis_job *j);
void tl_redis_job_free(tl_redis_job *j);

#endif
