/*
 * test_gcra.c - the GCRA store's bounds and thread safety (TAP), run by
 * `make test` under ASan/UBSan. Expected counts follow from the GCRA
 * definition: with burst b and no queue, a key admits b events at one
 * instant, and one more per interval after.
 */
#include "../../src/core/gcra.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

static int t, failed;

static void ok(int cond, const char *what)
{
    printf("%s %d - %s\n", cond ? "ok" : "not ok", ++t, what);
    if (!cond) failed++;
}

static tl_gcra_limit lim = { 1000000000u, 1, 1, 0, 0 }; /* 1 per second */
static long admitted[2];

static void *hammer(void *arg)
{
    long id = (long)arg, i;
    uint64_t wait, now = 5000000000000u;
    for (i = 0; i < 200000; i++) /* both threads on one key, 1 us apart: 1 admitted per 1 s */
        if (tl_gcra_incoming(&lim, "shared", 6, 1, 1, now + (uint64_t)i * 1000, &wait) == TL_GCRA_NOW) admitted[id]++;
    return NULL;
}

int main(void)
{
    tl_gcra_stats st;
    uint64_t wait, now = 1000000000000u;
    char key[32];
    int i, n = 0;
    pthread_t a, b;
    printf("TAP version 13\n");
    tl_gcra_set_capacity(16); /* one bucket of 16 slots */
    tl_gcra_prepare(&lim);
    for (i = 0; i < 16; i++) {
        snprintf(key, sizeof key, "+1415555%04d", i);
        n += tl_gcra_incoming(&lim, key, strlen(key), 1, 1, now, &wait) == TL_GCRA_NOW;
    }
    tl_gcra_stats_get(&st);
    ok(n == 16 && st.keys == 16 && st.capacity == 16 && st.evicted == 0, "16 keys fill a 16-key store");
    ok(tl_gcra_incoming(&lim, "+14155550000", 12, 1, 1, now, &wait) == TL_GCRA_REJECTED && wait == 1000000000u,
       "a held key is still limited");
    ok(tl_gcra_incoming(&lim, "+14155559999", 12, 1, 1, now, &wait) == TL_GCRA_NOW, "a 17th key gets a slot");
    tl_gcra_stats_get(&st);
    ok(st.evicted == 1 && st.keys == 16, "by evicting one (counted), memory stays bounded");
    ok(tl_gcra_incoming(&lim, "+14155558888", 12, 1, 1, now + 5000000000u, &wait) == TL_GCRA_NOW, "later...");
    tl_gcra_stats_get(&st);
    ok(st.evicted == 1, "...a key whose TAT has passed is reused, not evicted");
    {
        tl_gcra_limit other = lim;
        other.count = 2;
        tl_gcra_prepare(&other);
        ok(tl_gcra_incoming(&other, "+14155550001", 12, 1, 0, now, &wait) == TL_GCRA_NOW,
           "the same key under other parameters is other state");
    }
    {
        char long_key[100];
        memset(long_key, 'k', sizeof long_key);
        long_key[99] = 'a';
        ok(tl_gcra_incoming(&lim, long_key, 100, 1, 1, now + 9000000000u, &wait) == TL_GCRA_NOW, "a long key");
        long_key[99] = 'b';
        ok(tl_gcra_incoming(&lim, long_key, 100, 1, 1, now + 9000000000u, &wait) == TL_GCRA_NOW,
           "differs from one that shares its first 28 bytes");
    }
    pthread_create(&a, NULL, hammer, (void *)0);
    pthread_create(&b, NULL, hammer, (void *)1);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    /* 200,000 us = 0.2 s of clock: exactly one admission at most per second */
    ok(admitted[0] + admitted[1] == 1, "two threads on one key admit exactly what the limit allows");
    {
        tl_gcra_limit bad = { 0, 1, 1, 0, 0 };
        ok(tl_gcra_incoming(&bad, "x", 1, 1, 1, now, &wait) == TL_GCRA_EINVAL, "a zero period is refused");
    }
    printf("1..%d\n", t);
    return failed ? 1 : 0;
}
