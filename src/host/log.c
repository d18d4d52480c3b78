/*
 * log.c - see log.h.
 */
#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

/* fn and ud change together: readers take the lock shared, so a line in
 * progress finishes with the sink it started with */
static pthread_rwlock_t sink_lock = PTHREAD_RWLOCK_INITIALIZER;
static telua_log_fn sink_fn;
static void *sink_ud;

void tl_log_set(telua_log_fn fn, void *ud)
{
    pthread_rwlock_wrlock(&sink_lock);
    sink_fn = fn;
    sink_ud = ud;
    pthread_rwlock_unlock(&sink_lock);
}

void tl_log(const char *level, const char *fmt, ...)
{
    char ts[32], msg[2048];
    struct timespec now;
    struct tm tm;
    va_list ap;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    pthread_rwlock_rdlock(&sink_lock);
    if (sink_fn) {
        sink_fn(level, msg, sink_ud);
        pthread_rwlock_unlock(&sink_lock);
        return;
    }
    pthread_rwlock_unlock(&sink_lock);
    /* one fprintf per line: stdio locks the stream, so lines never interleave */
    fprintf(stderr, "%s.%03ldZ [%s] %s\n", ts, now.tv_nsec / 1000000, level, msg);
}
