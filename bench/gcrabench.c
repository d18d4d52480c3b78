/*
 * gcrabench.c - GCRA decisions per second on one core: tl_gcra_incoming
 * over KEYS sender keys (E.164 strings, default 10,000), cost 1-3
 * segments, the clock advancing 1 us per decision, 10 MPS per key with a
 * burst of 5. Best of five runs.   build/gcrabench [decisions [keys]]
 */
#include "../src/core/gcra.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 20000000, i;
    int NKEYS = argc > 2 ? atoi(argv[2]) : 10000;
    if (NKEYS < 1 || NKEYS > 100000) NKEYS = 10000;
    static char keys[100000][16];
    static size_t lens[100000];
    tl_gcra_limit lim = { 1000000000u, 10, 5, 0, 0 };
    uint64_t t = 1000000000000u, wait;
    unsigned x = 12345;
    long accepted = 0;
    double best = 1e30;
    int run, k;
    tl_gcra_prepare(&lim);
    for (k = 0; k < NKEYS; k++) lens[k] = (size_t)snprintf(keys[k], sizeof keys[k], "+1415555%04d", k);
    for (run = 0; run < 5; run++) {
        double t0 = now(), dt;
        accepted = 0;
        for (i = 0; i < n; i++) {
            x = x * 69069u + 1u;
            k = (int)((x >> 8) % NKEYS);
            if (tl_gcra_incoming(&lim, keys[k], lens[k], 1 + (x >> 28) % 3, 1, t, &wait) == TL_GCRA_NOW) accepted++;
            t += 1000;
        }
        dt = now() - t0;
        if (dt < best) best = dt;
    }
    printf("%-34s%12.0f decisions/s   %d keys (%ld of %ld accepted in the last run)\n",
           "telua C (tl_gcra_incoming)", n / best, NKEYS, accepted, n);
    return 0;
}
