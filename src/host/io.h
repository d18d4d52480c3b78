/*
 * io.h - a worker's I/O thread: runs the HTTP requests and timers that
 * rules started, so the worker thread never waits on the network.
 *
 * The worker prepares a request on its own Lua state (tl_http_prepare),
 * submits it here with a completion callback, suspends the MHD
 * connection and goes on serving others. The I/O thread drives libcurl's
 * multi interface; when every transfer of a job is done (or a timer is
 * due) it calls the callback, which resumes the connection; MHD then calls
 * the worker's handler again and the rule's coroutine resumes with the
 * answer. The callback runs on the I/O thread and must only touch what is
 * thread-safe (an atomic flag, MHD_resume_connection).
 */
#ifndef TELUA_IO_H
#define TELUA_IO_H

#include "../lua/telua_core.h"

typedef struct tl_io tl_io;
typedef void (*tl_io_done)(void *arg);

tl_io *tl_io_start(void);

/* Runs every transfer of job; done(arg) when all have finished, or at
 * due_ns (CLOCK_MONOTONIC; 0: no deadline) with the unfinished ones marked
 * as timed out. 0 or -1. */
int tl_io_http(tl_io *io, tl_http_job *job, long long due_ns, tl_io_done done, void *arg);

/* Runs a prepared Redis job (../lua/redis.h) on the worker's Redis thread
 * (made at the first job), on a connection to its store kept by that
 * thread; done(arg) when its replies are in or it failed. 0 or -1 (the
 * host is stopping: the job was not taken). */
struct tl_redis_job;
int tl_io_redis(tl_io *io, struct tl_redis_job *job, tl_io_done done, void *arg);

/* done(arg) after `seconds`. 0 or -1. */
int tl_io_sleep(tl_io *io, double seconds, tl_io_done done, void *arg);

/* Stops the thread: unfinished transfers are aborted (their results say
 * so) and every pending callback is called, then the thread is joined.
 * Later submissions fail (-1). */
void tl_io_stop(tl_io *io);

/* Stops (if needed) and frees; nothing may submit any more. */
void tl_io_free(tl_io *io);

#endif
