/*
 * test_gcra_shared.c - the GCRA store shared by forked processes (TAP), as
 * nginx's workers use it after init_by_lua called tl_gcra_share in the
 * master. Run by `make test` under ASan/UBSan. Expected counts follow from
 * the GCRA definition: with burst b and no queue, one key admits exactly b
 * events at one instant, whoever asks.
 */
#include "../../src/core/gcra.h"

#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define CHILDREN 4
#define TRIES 20000
#define BURST 1000

static int t, failed;

static void ok(int cond, const char *what)
{
    printf("%s %d - %s\n", cond ? "ok" : "not ok", ++t, what);
    if (!cond) failed++;
}

/* Forks CHILDREN processes that each ask TRIES times for "shared" at one
 * instant; returns what they admitted in all (read back through a pipe). */
static long round_of_children(void)
{
    static const tl_gcra_limit lim = { 1000000000u, 10, BURST, 0, 0 }; /* 10/s, burst 1000 */
    int fd[2], i;
    long total = 0, got;
    if (pipe(fd) != 0) return -1;
    for (i = 0; i < CHILDREN; i++) {
        pid_t p = fork();
        if (p == 0) {
            long n = 0, k;
            uint64_t wait;
            close(fd[0]);
            for (k = 0; k < TRIES; k++)
                if (tl_gcra_incoming(&lim, "shared", 6, 1, 1, 7000000000000u, &wait) == TL_GCRA_NOW) n++;
            if (write(fd[1], &n, sizeof n) != (ssize_t)sizeof n) _exit(2);
            _exit(0);
        }
    }
    close(fd[1]);
    while (read(fd[0], &got, sizeof got) == (ssize_t)sizeof got) total += got;
    close(fd[0]);
    for (i = 0; i < CHILDREN; i++) wait(NULL);
    return total;
}

int main(void)
{
    long alone, together;
    uint64_t w;
    tl_gcra_limit probe = { 1000000000u, 1, 1, 0, 0 };
    ok(!tl_gcra_is_shared(), "the store starts in process memory");
    alone = round_of_children(); /* each child makes its own store on first use */
    ok(alone == (long)CHILDREN * BURST, "unshared: each of 4 processes admits the whole burst (4 x 1000)");
    ok(tl_gcra_share(4096) == 0 && tl_gcra_is_shared(), "shared before the first decision");
    ok(tl_gcra_share(4096) == 0, "sharing again is a no-op");
    together = round_of_children();
    printf("# admitted: %ld unshared, %ld shared, of %d asked\n", alone, together, CHILDREN * TRIES);
    ok(together == BURST, "shared: 4 processes racing on one key admit exactly the burst (1000)");
    ok(tl_gcra_incoming(&probe, "shared", 6, 1, 1, 7000000000000u, &w) == TL_GCRA_NOW,
       "the parent decides on the same memory (another limit is another key)");
    printf("1..%d\n", t);
    return failed != 0;
}
