/*
 * conns.c - read deadlines for the webhook sockets (see host.h).
 *
 * libmicrohttpd 0.9.75 has only an idle timeout: a client that sends one
 * byte a second is never cut off, and enough of them hold every slot.
 * Each socket gets an entry at accept (MHD_CONNECTION_NOTIFY_STARTED)
 * with a deadline read_timeout_s ahead; once a request is in, the deadline
 * is off while it is answered, and after the answer the next request's
 * clock starts. A reaper thread calls shutdown(2) on a socket past its
 * deadline - never close(2): MHD owns the descriptor; it then sees the end
 * of the stream and closes the connection itself. The entry is removed at
 * MHD_CONNECTION_NOTIFY_CLOSED under the same mutex, so the reaper never
 * shuts down a descriptor number that was closed and given to a new socket.
 */
#include "host.h"
#include "clock.h"
#include "log.h"

#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#define REAP_EVERY_MS 100

static void *reaper_main(void *arg)
{
    tl_conns *cs = arg;
    for (;;) {
        struct pollfd p = { cs->stop_pipe[0], POLLIN, 0 };
        long long now;
        unsigned long n = 0;
        tl_conn *c;
        if (poll(&p, 1, REAP_EVERY_MS) > 0) break;
        now = tl_now_ns();
        pthread_mutex_lock(&cs->mu);
        for (c = cs->head; c; c = c->next)
            if (c->due_ns && now > c->due_ns) {
                shutdown(c->fd, SHUT_RDWR);
                c->due_ns = 0;
                n++;
            }
        pthread_mutex_unlock(&cs->mu);
        if (n) atomic_fetch_add(&cs->reaped, n);
    }
    return NULL;
}

int tl_conns_init(tl_conns *cs, unsigned timeout_s)
{
    pthread_mutex_init(&cs->mu, NULL);
    cs->head = NULL;
    cs->timeout_ns = (long long)timeout_s * 1000000000LL;
    atomic_init(&cs->reaped, 0);
    cs->running = 0;
    if (!timeout_s) return 0; /* no read deadline */
    if (pipe(cs->stop_pipe) != 0) return -1;
    if (pthread_create(&cs->reaper, NULL, reaper_main, cs) != 0) {
        close(cs->stop_pipe[0]);
        close(cs->stop_pipe[1]);
        return -1;
    }
    cs->running = 1;
    return 0;
}

void tl_conns_close(tl_conns *cs)
{
    tl_conn *c, *next;
    if (cs->running) {
        ssize_t w = write(cs->stop_pipe[1], "x", 1);
        (void)w;
        pthread_join(cs->reaper, NULL);
        close(cs->stop_pipe[0]);
        close(cs->stop_pipe[1]);
        cs->running = 0;
    }
    for (c = cs->head; c; c = next) {
        next = c->next;
        free(c);
    }
    cs->head = NULL;
    pthread_mutex_destroy(&cs->mu);
}

tl_conn *tl_conns_add(tl_conns *cs, int fd)
{
    tl_conn *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->fd = fd;
    pthread_mutex_lock(&cs->mu);
    c->due_ns = cs->timeout_ns ? tl_now_ns() + cs->timeout_ns : 0;
    c->next = cs->head;
    if (cs->head) cs->head->prev = c;
    cs->head = c;
    pthread_mutex_unlock(&cs->mu);
    return c;
}

void tl_conns_remove(tl_conns *cs, tl_conn *c)
{
    if (!c) return;
    pthread_mutex_lock(&cs->mu);
    if (c->prev) c->prev->next = c->next;
    else cs->head = c->next;
    if (c->next) c->next->prev = c->prev;
    pthread_mutex_unlock(&cs->mu);
    free(c);
}

void tl_conns_answering(tl_conns *cs, tl_conn *c)
{
    if (!c) return;
    pthread_mutex_lock(&cs->mu);
    c->due_ns = 0;
    pthread_mutex_unlock(&cs->mu);
}

void tl_conns_next(tl_conns *cs, tl_conn *c)
{
    if (!c || !cs->timeout_ns) return;
    pthread_mutex_lock(&cs->mu);
    c->due_ns = tl_now_ns() + cs->timeout_ns;
    pthread_mutex_unlock(&cs->mu);
}
