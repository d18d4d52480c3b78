/*
 * gcra.c - GCRA decisions over a process-wide, bounded key store (gcra.h).
 *
 * TAT is kept in units of nanoseconds x count (128-bit), so an emission
 * interval such as 1/3 s never accumulates rounding: each event adds
 * exactly cost x period. The store is an array of 16-slot buckets; a key
 * lives in the bucket its hash picks, and each bucket has a spinlock.
 *
 * tl_gcra_share puts the locks, the eviction count and the table in one
 * MAP_SHARED anonymous mapping: processes forked after it (nginx's workers,
 * when init_by_lua made it in the master) decide on the same memory. The
 * spinlocks are atomic test-and-set bytes, which work across processes as
 * across threads, and CLOCK_MONOTONIC is one clock for the whole machine,
 * so every process sees one schedule per key.
 */
#include "gcra.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define BUCKET 16
#define INLINE_KEY 28
#define STRIPES 1024

typedef unsigned __int128 u128;

/* One key in one cache line. TAT = tat_ns + frac / count exactly. */
typedef struct {
    uint64_t hash;    /* 0: empty */
    uint64_t tat_ns;  /* whole nanoseconds of TAT */
    uint64_t frac;    /* and the remainder, in 1/count ns */
    uint64_t seed;    /* the parameters' hash: part of the key */
    uint32_t len;
    char key[INLINE_KEY]; /* the key, or its first bytes when longer (the hash decides the rest) */
} __attribute__((aligned(64))) entry;

/* A bucket of 16 slots; a key starts at the slot its hash picks and probes
 * on around the bucket, so a lookup usually reads one cache line. */
typedef struct {
    entry e[BUCKET];
} bucket;

/* What every user of the table must see the same: in the process, or at
 * the start of the shared mapping. */
typedef struct {
    volatile char locks[STRIPES];
    uint64_t evicted;
} __attribute__((aligned(64))) header;

static header local_hdr;
static header *hdr = &local_hdr;
static bucket *table;
static size_t nbuckets, capacity = 65536;
static int shared;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static int alloc_failed;

static size_t buckets_for(size_t keys)
{
    size_t want = (keys + BUCKET - 1) / BUCKET, n = 1;
    while (n < want) n <<= 1;
    return n;
}

static void setup(void)
{
    if (table) return; /* tl_gcra_share made it */
    nbuckets = buckets_for(capacity);
    table = calloc(nbuckets, sizeof *table);
    if (!table) alloc_failed = 1;
}

void tl_gcra_set_capacity(size_t keys)
{
    if (!table && keys >= BUCKET) capacity = keys;
}

int tl_gcra_share(size_t keys)
{
    size_t n, bytes;
    void *m;
    if (shared) return 0;
    if (table) return -1; /* decisions were made on process memory already */
    if (keys >= BUCKET) capacity = keys;
    n = buckets_for(capacity);
    bytes = sizeof(header) + n * sizeof(bucket);
    m = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return -2; /* zero-filled by the kernel: empty slots, open locks */
    hdr = m;
    table = (bucket *)((char *)m + sizeof(header));
    nbuckets = n;
    shared = 1;
    return 0;
}

int tl_gcra_is_shared(void) { return shared; }

uint64_t tl_gcra_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t mix(uint64_t h, uint64_t v)
{
    u128 m = (u128)(h ^ v) * 0x9e3779b97f4a7c15u; /* multiply-fold, 8 bytes at a time */
    return (uint64_t)m ^ (uint64_t)(m >> 64);
}

static uint64_t params_seed(const tl_gcra_limit *lim)
{
    uint64_t h = mix(mix(mix(0x243f6a8885a308d3u, lim->period_ns), lim->count), lim->burst);
    return h ? h : 1;
}

void tl_gcra_prepare(tl_gcra_limit *lim) { lim->seed = params_seed(lim); }

/* the key under the parameters' seed, mixed 8 bytes at a time (never 0) */
static uint64_t hash_of(uint64_t seed, const char *key, size_t len)
{
    uint64_t h = seed ^ len, v;
    size_t i;
    for (i = 0; i + 8 <= len; i += 8) {
        memcpy(&v, key + i, 8);
        h = mix(h, v);
    }
    if (i < len) {
        v = 0;
        memcpy(&v, key + i, len - i);
        h = mix(h, v ^ 0xff);
    }
    h = mix(h, 0x5851f42d4c957f2du);
    return h ? h : 1;
}

static void lock(size_t b)
{
    while (__atomic_test_and_set(&hdr->locks[b % STRIPES], __ATOMIC_ACQUIRE))
        while (__atomic_load_n(&hdr->locks[b % STRIPES], __ATOMIC_RELAXED)) __builtin_ia32_pause();
}

static void unlock(size_t b) { __atomic_clear(&hdr->locks[b % STRIPES], __ATOMIC_RELEASE); }

static int same(const entry *e, uint64_t seed, const char *key, size_t len)
{
    size_t n = len < INLINE_KEY ? len : INLINE_KEY, i = 0;
    if (e->len != len || e->seed != seed) return 0;
    for (; i + 8 <= n; i += 8) { /* 8 bytes at a time: no call for the short keys numbers are */
        uint64_t a, b;
        memcpy(&a, e->key + i, 8);
        memcpy(&b, key + i, 8);
        if (a != b) return 0;
    }
    for (; i < n; i++)
        if (e->key[i] != key[i]) return 0;
    return 1;
}

/* ceil(a / d), with a 64-bit division when a fits (the usual case) */
static uint64_t div_ceil(u128 a, uint64_t d)
{
    if ((uint64_t)(a >> 64) == 0) {
        uint64_t x = (uint64_t)a;
        return x / d + (x % d != 0);
    }
    return (uint64_t)((a + d - 1) / d);
}

/* The key's slot in its bucket, claiming one when it is not there: an empty
 * slot, else one whose TAT has passed, else the earliest TAT (evicted). */
static entry *find(uint64_t h, size_t b, uint64_t seed, const char *key, size_t len, uint64_t now, int claim)
{
    bucket *bk = &table[b];
    unsigned start = (unsigned)(h >> 56) % BUCKET, k;
    int slot = -1, oldest = -1;
    uint64_t oldest_ns = UINT64_MAX;
    entry *e;
    for (k = 0; k < BUCKET; k++) {
        unsigned i = (start + k) % BUCKET;
        e = &bk->e[i];
        if (e->hash == 0) {
            slot = (int)i;
            break; /* slots are never emptied again: nothing further on */
        }
        if (e->hash == h && same(e, seed, key, len)) return e;
        if (slot < 0 && e->tat_ns <= now && claim) slot = (int)i; /* expired: reusable, but look on */
        if (e->tat_ns < oldest_ns) {
            oldest_ns = e->tat_ns;
            oldest = (int)i;
        }
    }
    if (!claim) return NULL;
    if (slot < 0) {
        slot = oldest;
        __atomic_add_fetch(&hdr->evicted, 1, __ATOMIC_RELAXED);
    }
    e = &bk->e[slot];
    e->hash = h;
    e->len = (uint32_t)len;
    e->seed = seed;
    e->tat_ns = 0;
    e->frac = 0;
    memcpy(e->key, key, len < INLINE_KEY ? len : INLINE_KEY);
    return e;
}

int tl_gcra_incoming(const tl_gcra_limit *lim, const char *key, size_t len, uint64_t cost, int commit,
                     uint64_t now_ns, uint64_t *wait_ns)
{
    uint64_t h, delay_ns, seed;
    size_t b;
    entry *e;
    u128 t, tat, new_tat, allow_at, inc, tol;
    int rc;
    *wait_ns = 0;
    if (!lim->count || !lim->period_ns || !lim->burst) return TL_GCRA_EINVAL;
    pthread_once(&once, setup);
    if (alloc_failed) return TL_GCRA_ENOMEM;
    t = (u128)now_ns * lim->count;
    inc = (u128)cost * lim->period_ns;
    tol = (u128)lim->burst * lim->period_ns;
    /* from idle the delay is inc - tol: past the queue budget, never */
    if (inc > tol && div_ceil(inc - tol, lim->count) > lim->queue_ns) return TL_GCRA_TOO_LARGE;
    seed = lim->seed ? lim->seed : params_seed(lim);
    h = hash_of(seed, key, len);
    b = (size_t)(h & (nbuckets - 1));
    lock(b);
    e = find(h, b, seed, key, len, now_ns, commit);
    tat = e ? (u128)e->tat_ns * lim->count + e->frac : 0;
    if (tat < t) tat = t;
    new_tat = tat + inc;
    allow_at = new_tat > tol ? new_tat - tol : 0;
    delay_ns = allow_at > t ? div_ceil(allow_at - t, lim->count) : 0; /* rounded up */
    if (delay_ns == 0) rc = TL_GCRA_NOW;
    else if (delay_ns <= lim->queue_ns) rc = TL_GCRA_DELAYED;
    else rc = TL_GCRA_REJECTED;
    if (rc != TL_GCRA_REJECTED) {
        if (commit && e) {
            if ((uint64_t)(new_tat >> 64) == 0) {
                e->tat_ns = (uint64_t)new_tat / lim->count;
                e->frac = (uint64_t)new_tat % lim->count;
            } else {
                e->tat_ns = (uint64_t)(new_tat / lim->count);
                e->frac = (uint64_t)(new_tat % lim->count);
            }
        }
        *wait_ns = delay_ns;
    } else {
        *wait_ns = delay_ns - lim->queue_ns; /* then the delay fits the budget */
    }
    unlock(b);
    return rc;
}

void tl_gcra_uncommit(const tl_gcra_limit *lim, const char *key, size_t len, uint64_t cost)
{
    uint64_t h, seed;
    size_t b;
    entry *e;
    u128 inc, tat;
    if (!lim->count || !lim->period_ns || !lim->burst) return;
    pthread_once(&once, setup);
    if (alloc_failed) return;
    seed = lim->seed ? lim->seed : params_seed(lim);
    h = hash_of(seed, key, len);
    b = (size_t)(h & (nbuckets - 1));
    inc = (u128)cost * lim->period_ns;
    lock(b);
    e = find(h, b, seed, key, len, 0, 0);
    if (e) {
        tat = (u128)e->tat_ns * lim->count + e->frac;
        tat = tat > inc ? tat - inc : 0;
        e->tat_ns = (uint64_t)(tat / lim->count);
        e->frac = (uint64_t)(tat % lim->count);
    }
    unlock(b);
}

void tl_gcra_stats_get(tl_gcra_stats *out)
{
    size_t i, n = 0;
    pthread_once(&once, setup);
    out->capacity = table ? nbuckets * BUCKET : 0;
    out->evicted = __atomic_load_n(&hdr->evicted, __ATOMIC_RELAXED);
    for (i = 0; table && i < nbuckets * BUCKET; i++) n += table[i / BUCKET].e[i % BUCKET].hash != 0;
    out->keys = n;
}
