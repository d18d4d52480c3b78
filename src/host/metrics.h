/*
 * metrics.h - the host's counters, gauges and histograms, shown by the
 * admin listener as /metrics (the Prometheus text exposition format,
 * version 0.0.4: https://prometheus.io/docs/instrumenting/exposition_formats/)
 * and inside /-/status as JSON.
 *
 * The families are fixed (the table in metrics.c): a name, a type, the
 * label names and, for a histogram, its bucket bounds. A series is a
 * family and its label values. The registry lives in the host, not in
 * any lua_State, so counts stay right across workers and reloads.
 *
 * Writers never share a lock: the store is split into shards, one per
 * worker (only that worker's thread writes it) and one shared by every
 * other thread (sender, I/O, admin). A scrape locks each shard in turn
 * and merges the series. Gauges are kept in the shared shard only, so a
 * merge never adds two of them.
 *
 * Label sets are bounded: values are cut at TL_METRIC_VALUE_MAX bytes, and
 * a family holds at most TL_METRIC_SERIES_MAX series per shard; further
 * series are dropped and counted in telua_metric_series_dropped_total.
 */
#ifndef TELUA_METRICS_H
#define TELUA_METRICS_H

#include <stddef.h>

#define TL_METRIC_VALUE_MAX 120
#define TL_METRIC_SERIES_MAX 1000

/* The families, in the order /metrics shows them. */
typedef enum tl_metric_family {
    TL_M_BUILD_INFO,          /* gauge {version} = 1 */
    TL_M_START_TIME,          /* gauge: epoch seconds the host started */
    TL_M_WEBHOOKS,            /* counter {kind, path, status}: answered webhooks */
    TL_M_WEBHOOK_SECONDS,     /* histogram {kind}: from the whole request read to the answer */
    TL_M_REJECTED,            /* counter {status, reason}: turned away before any rule ran */
    TL_M_INFLIGHT,            /* gauge: requests whose rules have not finished */
    TL_M_RULE_ERRORS,         /* counter {file}: a rule raised or answered a bad result */
    TL_M_BUDGET_HITS,         /* counter {file, budget}: budget "cpu" or "memory" ran out */
    TL_M_RELOADS,             /* counter {result}: "ok" or "failed" */
    TL_M_GENERATION,          /* gauge: the rules generation serving */
    TL_M_OUTBOX,              /* gauge {state}: outbox entries by state */
    TL_M_SENDS,               /* counter {result, code}: the sender's REST sends */
    TL_M_PACING_SECONDS,      /* histogram {sender_type}: how long pacing held a message */
    TL_M_STATUS_CALLBACKS,    /* counter {status, code}: status callbacks received */
    TL_M_FINAL,               /* counter {sender, status, code}: messages that reached a final status */
    TL_M_DELIVERY_RATIO,      /* gauge {sender}: delivered / final, from TL_M_FINAL at each scrape */
    TL_M_OPTOUTS,             /* counter {source}: "keyword" (STOP...) or "21610" */
    TL_M_OPTINS,              /* counter: START ... keywords */
    TL_M_HTTP_CLIENT,         /* counter {status}: HTTP requests made by rules and the sender */
    TL_M_CAMPAIGN,            /* gauge {campaign, state}: a campaign's entries by state */
    TL_M_DROPPED,             /* counter {family}: series past TL_METRIC_SERIES_MAX */
    TL_M_NFAMILIES
} tl_metric_family;

typedef struct tl_metrics tl_metrics;

/* A registry with `workers` worker shards and the shared one. NULL when
 * out of memory. */
tl_metrics *tl_metrics_new(int workers);
void tl_metrics_free(tl_metrics *m);

/* The family called `name`, or -1. */
int tl_metrics_find(const char *name);

/* How many label values the family takes. */
int tl_metrics_nlabels(int family);

/* Records v for the series of `values` (as many as the family's labels;
 * NULL is ""): a counter adds v (v >= 0), a gauge is set to v, a
 * histogram observes v. shard: a worker's index from its own thread, or
 * -1 (any thread). Returns 0, or -1 when the series was dropped (the
 * family is full, or out of memory). */
int tl_metrics_record(tl_metrics *m, int shard, int family, const char *const *values, double v);

/* The text exposition (text/plain; version=0.0.4) or, json != 0, an
 * object of family name -> [{"labels": {...}, "value": v}] (histograms:
 * "count" and "sum"). A malloc'd string the caller frees, its length in
 * *len; NULL when out of memory. */
char *tl_metrics_render(tl_metrics *m, int json, size_t *len);

#endif
