/*
 * io.c - a worker's I/O thread (see io.h).
 */
#include "io.h"
#include "log.h"
#include "clock.h"

#include "../lua/redis.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct item {
    tl_http_job *job;       /* NULL: a timer */
    long long due_ns;       /* a timer: when it fires; a job: its deadline (0: none) */
    tl_io_done done;
    void *arg;
    struct item *next;
} item;

/* A Redis job waiting for the worker's Redis thread. */
typedef struct rjob {
    tl_redis_job *job;
    tl_io_done done;
    void *arg;
    struct rjob *next;
} rjob;

#define RCONNS 4
#define RJOBS_PER_ROUND 64

struct tl_io {
    /* the Redis thread: jobs in arrival order, pipelined per connection */
    pthread_t rthread;
    pthread_cond_t rcond;
    rjob *rhead, **rtail;     /* guarded by mu */
    int rstarted;             /* guarded by mu */
    struct {
        char *key;            /* the store spec */
        tl_redis *conn;
        long long down_until; /* after a failed connect: fail fast until then */
        char down_err[256];
        const char *down_code;
    } rc[RCONNS];             /* Redis thread only */
    pthread_t thread;
    pthread_mutex_t mu;
    CURLM *multi;
    item *incoming;         /* guarded by mu */
    int stop;               /* guarded by mu */
    item *active;           /* I/O thread only */
};

static void finish(item **list, item *it)
{
    item **pp;
    for (pp = list; *pp; pp = &(*pp)->next)
        if (*pp == it) {
            *pp = it->next;
            break;
        }
    it->done(it->arg);
    free(it);
}

static void *io_main(void *arg)
{
    tl_io *io = arg;
    for (;;) {
        item *in, *it, *next;
        int stop, running, q, i;
        long long now, wait_ms = 1000;
        CURLMsg *m;
        pthread_mutex_lock(&io->mu);
        in = io->incoming;
        io->incoming = NULL;
        stop = io->stop;
        pthread_mutex_unlock(&io->mu);
        for (it = in; it; it = next) { /* take new work */
            next = it->next;
            it->next = io->active;
            io->active = it;
            if (it->job)
                for (i = 0; i < tl_http_job_count(it->job); i++) {
                    CURL *e = tl_http_job_easy(it->job, i);
                    curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)it);
                    curl_multi_add_handle(io->multi, e);
                }
        }
        if (stop) { /* abort what is left and let the workers finish their requests */
            while (io->active) {
                it = io->active;
                if (it->job) {
                    for (i = 0; i < tl_http_job_count(it->job); i++)
                        curl_multi_remove_handle(io->multi, tl_http_job_easy(it->job, i));
                    tl_http_job_abort(it->job);
                }
                finish(&io->active, it);
            }
            return NULL;
        }
        curl_multi_perform(io->multi, &running);
        while ((m = curl_multi_info_read(io->multi, &q)) != NULL) {
            char *p = NULL;
            if (m->msg != CURLMSG_DONE) continue;
            curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &p);
            it = (item *)p;
            curl_multi_remove_handle(io->multi, m->easy_handle);
            if (it && tl_http_job_done(it->job, m->easy_handle, m->data.result) == 0) finish(&io->active, it);
        }
        now = tl_now_ns();
        for (it = io->active; it; it = next) { /* timers, and jobs past their deadline */
            next = it->next;
            if (it->job && !it->due_ns) continue;
            if (it->due_ns <= now) {
                if (it->job) {
                    for (i = 0; i < tl_http_job_count(it->job); i++)
                        curl_multi_remove_handle(io->multi, tl_http_job_easy(it->job, i));
                    tl_http_job_expire(it->job);
                }
                finish(&io->active, it);
            }
            else if ((it->due_ns - now) / 1000000 + 1 < wait_ms) wait_ms = (it->due_ns - now) / 1000000 + 1;
        }
        curl_multi_poll(io->multi, NULL, 0, (int)wait_ms, NULL);
    }
}

/* The connection for a job's store, made at the first job of that store. */
static int rconn_for(tl_io *io, tl_redis_job *j)
{
    int i, free_slot = -1;
    for (i = 0; i < RCONNS; i++) {
        if (io->rc[i].key && strcmp(io->rc[i].key, tl_redis_job_key(j)) == 0) return i;
        if (!io->rc[i].key && free_slot < 0) free_slot = i;
    }
    if (free_slot < 0) return -1;
    io->rc[free_slot].conn = tl_redis_new(tl_redis_job_opts(j));
    io->rc[free_slot].key = io->rc[free_slot].conn ? strdup(tl_redis_job_key(j)) : NULL;
    if (!io->rc[free_slot].key) {
        tl_redis_free(io->rc[free_slot].conn);
        io->rc[free_slot].conn = NULL;
        return -1;
    }
    return free_slot;
}

/* The Redis thread: takes what is queued, and runs each store's jobs in
 * one pipelined round trip (a worker's requests that wait on Redis at the
 * same time share it). A failed connect makes the next 250 ms of jobs fail
 * at once with the same error (a Redis that is down must not hold every
 * request for a connect timeout each). */
static void *redis_main(void *arg)
{
    tl_io *io = arg;
    for (;;) {
        rjob *list, *it, *next;
        tl_redis_job *batch[RJOBS_PER_ROUND];
        rjob *owners[RJOBS_PER_ROUND];
        int stop;
        pthread_mutex_lock(&io->mu);
        while (!io->rhead && !io->stop) pthread_cond_wait(&io->rcond, &io->mu);
        list = io->rhead;
        io->rhead = NULL;
        io->rtail = &io->rhead;
        stop = io->stop;
        pthread_mutex_unlock(&io->mu);
        while (list) {
            int n = 0, slot = -1, i;
            long long now = tl_now_ns();
            /* the first job's store, and every queued job of the same store */
            rjob **pp = &list;
            const char *key = tl_redis_job_key(list->job);
            while (*pp && n < RJOBS_PER_ROUND) {
                it = *pp;
                if (strcmp(tl_redis_job_key(it->job), key) == 0) {
                    *pp = it->next;
                    owners[n] = it;
                    batch[n++] = it->job;
                } else pp = &it->next;
            }
            if (stop) {
                for (i = 0; i < n; i++) tl_redis_job_fail(batch[i], "failed", "redis: the host is stopping");
            } else if ((slot = rconn_for(io, batch[0])) < 0) {
                for (i = 0; i < n; i++) tl_redis_job_fail(batch[i], "failed", "redis: no connection slot");
            } else if (io->rc[slot].down_until > now) {
                for (i = 0; i < n; i++) tl_redis_job_fail(batch[i], io->rc[slot].down_code, io->rc[slot].down_err);
            } else {
                tl_redis_jobs_run(batch, n, io->rc[slot].conn);
                if (tl_redis_job_failed(batch[0], &io->rc[slot].down_code, io->rc[slot].down_err,
                                        sizeof io->rc[slot].down_err) &&
                    (strcmp(io->rc[slot].down_code, "connect") == 0 || strcmp(io->rc[slot].down_code, "dns") == 0 ||
                     strcmp(io->rc[slot].down_code, "timeout") == 0))
                    io->rc[slot].down_until = tl_now_ns() + 250000000LL;
            }
            for (i = 0; i < n; i++) {
                owners[i]->done(owners[i]->arg);
                free(owners[i]);
            }
        }
        if (stop) {
            pthread_mutex_lock(&io->mu);
            list = io->rhead;
            io->rhead = NULL;
            io->rtail = &io->rhead;
            pthread_mutex_unlock(&io->mu);
            for (it = list; it; it = next) {
                next = it->next;
                tl_redis_job_fail(it->job, "failed", "redis: the host is stopping");
                it->done(it->arg);
                free(it);
            }
            return NULL;
        }
    }
}

int tl_io_redis(tl_io *io, tl_redis_job *job, tl_io_done done, void *arg)
{
    rjob *it = calloc(1, sizeof *it);
    if (!it) return -1;
    it->job = job;
    it->done = done;
    it->arg = arg;
    pthread_mutex_lock(&io->mu);
    if (io->stop) {
        pthread_mutex_unlock(&io->mu);
        free(it);
        return -1;
    }
    if (!io->rstarted) { /* the thread is made at the first Redis job: a host on SQLite has none */
        if (pthread_create(&io->rthread, NULL, redis_main, io) != 0) {
            pthread_mutex_unlock(&io->mu);
            free(it);
            return -1;
        }
        io->rstarted = 1;
    }
    *io->rtail = it;
    io->rtail = &it->next;
    pthread_cond_signal(&io->rcond);
    pthread_mutex_unlock(&io->mu);
    return 0;
}

tl_io *tl_io_start(void)
{
    tl_io *io = calloc(1, sizeof *io);
    if (!io) return NULL;
    pthread_mutex_init(&io->mu, NULL);
    pthread_cond_init(&io->rcond, NULL);
    io->rtail = &io->rhead;
    tl_http_global_init();
    io->multi = curl_multi_init();
    if (!io->multi) {
        free(io);
        return NULL;
    }
    curl_multi_setopt(io->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    curl_multi_setopt(io->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 32L);
    if (pthread_create(&io->thread, NULL, io_main, io) != 0) {
        curl_multi_cleanup(io->multi);
        free(io);
        return NULL;
    }
    return io;
}

static int submit(tl_io *io, tl_http_job *job, long long due_ns, tl_io_done done, void *arg)
{
    item *it = calloc(1, sizeof *it);
    if (!it) return -1;
    it->job = job;
    it->due_ns = due_ns;
    it->done = done;
    it->arg = arg;
    pthread_mutex_lock(&io->mu);
    if (io->stop) {
        pthread_mutex_unlock(&io->mu);
        free(it);
        return -1;
    }
    it->next = io->incoming;
    io->incoming = it;
    pthread_mutex_unlock(&io->mu);
    curl_multi_wakeup(io->multi);
    return 0;
}

int tl_io_http(tl_io *io, tl_http_job *job, long long due_ns, tl_io_done done, void *arg)
{
    return submit(io, job, due_ns, done, arg);
}

int tl_io_sleep(tl_io *io, double seconds, tl_io_done done, void *arg)
{
    return submit(io, NULL, tl_now_ns() + (long long)(seconds * 1e9), done, arg);
}

void tl_io_stop(tl_io *io)
{
    int joined, rstarted;
    if (!io) return;
    pthread_mutex_lock(&io->mu);
    joined = io->stop;
    io->stop = 1;
    rstarted = io->rstarted;
    pthread_cond_signal(&io->rcond);
    pthread_mutex_unlock(&io->mu);
    if (joined) return;
    curl_multi_wakeup(io->multi);
    pthread_join(io->thread, NULL);
    if (rstarted) pthread_join(io->rthread, NULL);
}

void tl_io_free(tl_io *io)
{
    if (!io) return;
    int i;
    tl_io_stop(io);
    for (i = 0; i < RCONNS; i++) {
        tl_redis_free(io->rc[i].conn);
        free(io->rc[i].key);
    }
    pthread_cond_destroy(&io->rcond);
    curl_multi_cleanup(io->multi);
    pthread_mutex_destroy(&io->mu);
    free(io);
}
