/*
 * observe_cost.c - what seeing it run adds to one webhook, in C alone and
 * deterministic (no network, no other process): the two metric updates
 * (telua_webhooks_total, telua_webhook_duration_seconds) in a worker's own
 * shard and the access line into the worker's buffer, as driver.c's
 * account() makes them, with the lines written to stderr (redirect it to
 * a file: the flusher writes 64 KiB at a time).
 *
 * usage: build/observe_cost [N] 2> FILE
 */
#include "../src/host/clock.h"
#include "../src/host/log.h"
#include "../src/host/metrics.h"

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 1000000, i;
    tl_metrics *m = tl_metrics_new(2);
    tl_access_log *a = tl_access_log_new(2);
    const char *kind = "messaging";
    const char *v[3] = { kind, "/sms/incoming", "200" };
    long long t0, t1, t2;
    if (!m || !a) return 1;
    t0 = tl_now_ns();
    for (i = 0; i < n; i++) {
        tl_metrics_record(m, 0, TL_M_WEBHOOKS, v, 1);
        tl_metrics_record(m, 0, TL_M_WEBHOOK_SECONDS, &kind, 0.000412);
    }
    t1 = tl_now_ns();
    for (i = 0; i < n; i++)
        tl_log_access(a, 0, "POST", "/sms/incoming", 200, 412000 + i % 1000, "sms.lua:72", kind, "26cdcb4635009773", 1);
    t2 = tl_now_ns();
    tl_access_log_free(a);
    printf("metrics (2 series updates): %.0f ns per webhook\n", (double)(t1 - t0) / (double)n);
    printf("access line (formatted, buffered, written): %.0f ns per webhook\n", (double)(t2 - t1) / (double)n);
    tl_metrics_free(m);
    return 0;
}
