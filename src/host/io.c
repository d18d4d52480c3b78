/*
 * io.c - a worker's I/O thread (see io.h).
 */
#include "io.h"
#include "log.h"
#include "clock.h"

#include <pthread.h>
#include <stdlib.h>

typedef struct item {
    tl_http_job *job;       /* NULL: a timer */
    long long due_ns;       /* a timer: when it fires; a job: its deadline (0: none) */
    tl_io_done done;
    void *arg;
    struct item *next;
} item;

struct tl_io {
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

tl_io *tl_io_start(void)
{
    tl_io *io = calloc(1, sizeof *io);
    if (!io) return NULL;
    pthread_mutex_init(&io->mu, NULL);
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
    int joined;
    if (!io) return;
    pthread_mutex_lock(&io->mu);
    joined = io->stop;
    io->stop = 1;
    pthread_mutex_unlock(&io->mu);
    if (joined) return;
    curl_multi_wakeup(io->multi);
    pthread_join(io->thread, NULL);
}

void tl_io_free(tl_io *io)
{
    if (!io) return;
    tl_io_stop(io);
    curl_multi_cleanup(io->multi);
    pthread_mutex_destroy(&io->mu);
    free(io);
}
