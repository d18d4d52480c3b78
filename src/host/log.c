/*
 * log.c - see log.h.
 */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

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
    /* one fprintf per line: stdio locks the stream, so lines never interleave */
    fprintf(stderr, "%s.%03ldZ [%s] %s\n", ts, now.tv_nsec / 1000000, level, msg);
}
