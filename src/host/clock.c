/*
 * clock.c - see clock.h.
 */
#include "clock.h"

#include <errno.h>
#include <time.h>

long long tl_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void tl_sleep_s(double seconds)
{
    struct timespec ts;
    if (!(seconds > 0)) return;
    ts.tv_sec = (time_t)seconds;
    ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}
