/*
 * gcra.h - the Generic Cell Rate Algorithm (ITU-T I.371, ATM Forum TM 4.0;
 * the virtual-scheduling form redis-cell implements) for pacing sends.
 *
 * A limit is a rate (count per period) and a burst b: b events of cost 1
 * may go back to back, then one per emission interval T = period / count.
 * Per key the only state is the theoretical arrival time TAT, in integer
 * nanoseconds of CLOCK_MONOTONIC. An event of cost q at time t:
 *
 *   new_tat  = max(TAT, t) + q * T        (exact: q * period / count, no drift)
 *   allow_at = new_tat - b * T
 *   delay    = allow_at - t               (<= 0: it may go now)
 *
 * Policing answers "now, or how long to wait" (rounded up to the
 * nanosecond); shaping also accepts a delay up to a queue budget and
 * returns when the event may go. Accepting stores new_tat.
 *
 * The store is process-wide, so every Lua state (each worker, each rules
 * generation) that builds a limiter with the same parameters shares its
 * keys' state: the parameters are part of the key, so a changed limit
 * starts afresh (redis-cell #54) and a hot reload keeps its pacing. The
 * store holds at most `capacity` keys (64 bytes each: a key is its first
 * 28 bytes, its length and a 64-bit hash of all of it and the parameters,
 * so two keys could only be confused by a 64-bit hash collision); a key
 * whose TAT has passed carries
 * no state and is reused first; when none has, the key with the earliest
 * TAT among those probed is dropped (its limit starts afresh; counted in
 * tl_gcra_stats). Lock striping makes it safe from any thread.
 */
#ifndef TELUA_GCRA_H
#define TELUA_GCRA_H

#include <stddef.h>
#include <stdint.h>

typedef struct tl_gcra_limit {
    uint64_t period_ns;  /* count events per period_ns: the rate */
    uint64_t count;
    uint64_t burst;      /* events that may go back to back (>= 1) */
    uint64_t queue_ns;   /* shaping budget: the longest delay accepted (0: policing) */
    uint64_t seed;       /* set by tl_gcra_prepare (0: computed on each call) */
} tl_gcra_limit;

/* Hashes the parameters once into lim->seed, which saves it on every
 * decision; call again after changing them. */
void tl_gcra_prepare(tl_gcra_limit *lim);

enum {
    TL_GCRA_NOW = 0,       /* accepted, may go now */
    TL_GCRA_DELAYED = 1,   /* accepted (shaping), may go after *wait_ns */
    TL_GCRA_REJECTED = 2,  /* over the limit; could be accepted after *wait_ns */
    TL_GCRA_TOO_LARGE = 3, /* the cost exceeds what this limit can ever accept */
    TL_GCRA_EINVAL = -1,   /* zero count or period, or burst 0 */
    TL_GCRA_ENOMEM = -2
};

/*
 * Decides one event of `cost` for `key` (len bytes) under `lim` at `now_ns`
 * (monotonic; tl_gcra_now() or a test's clock). commit = 0 only looks.
 * *wait_ns receives the delay (DELAYED) or the wait (REJECTED), else 0.
 */
int tl_gcra_incoming(const tl_gcra_limit *lim, const char *key, size_t len, uint64_t cost, int commit,
                     uint64_t now_ns, uint64_t *wait_ns);

/* Gives back an accepted event of `cost` (e.g. a send that was not made). */
void tl_gcra_uncommit(const tl_gcra_limit *lim, const char *key, size_t len, uint64_t cost);

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t tl_gcra_now(void);

/* Sets the store's capacity (keys, default 65,536); only before first use. */
void tl_gcra_set_capacity(size_t keys);

/*
 * Puts the store in memory shared with the processes this one forks after
 * the call (MAP_SHARED | MAP_ANONYMOUS), holding `keys` keys (0: the
 * capacity set before). Call it before the first decision: nginx's master
 * in init_by_lua, so that every worker paces on one schedule. Returns 0
 * (also when already shared), -1 when decisions were already made on
 * process memory, -2 when the mapping failed (errno set by mmap).
 */
int tl_gcra_share(size_t keys);

/* 1 when the store is in shared memory (tl_gcra_share), else 0. */
int tl_gcra_is_shared(void);

typedef struct tl_gcra_stats {
    size_t keys, capacity;
    uint64_t evicted;
} tl_gcra_stats;
void tl_gcra_stats_get(tl_gcra_stats *out);

#endif
