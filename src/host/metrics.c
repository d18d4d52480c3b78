/*
 * metrics.c - see metrics.h. Names and labels follow Prometheus's naming
 * guide (https://prometheus.io/docs/practices/naming/): a telua_ prefix,
 * base units (seconds), _total on counters, labels for what varies.
 */
#include "metrics.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct family_def {
    const char *name, *type, *help;
    int nlabels;
    const char *labels[3];
    const double *buckets;
    int nbuckets;
} family_def;

/* request durations: half a millisecond to ten seconds (Twilio waits 15) */
static const double WEBHOOK_BUCKETS[] = { .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10 };
/* pacing: a long code sends one segment a second; a campaign's backlog waits hours */
static const double PACING_BUCKETS[] = { .01, .1, .5, 1, 2, 5, 10, 30, 60, 300, 900, 3600, 14400 };
#define NB(a) (int)(sizeof a / sizeof a[0])

static const family_def FAMILIES[TL_M_NFAMILIES] = {
    [TL_M_BUILD_INFO] = { "telua_build_info", "gauge", "The running telua's version (always 1).", 1, { "version" }, NULL, 0 },
    [TL_M_START_TIME] = { "telua_start_time_seconds", "gauge", "When the host started, in seconds since the epoch.", 0, { 0 }, NULL, 0 },
    [TL_M_WEBHOOKS] = { "telua_webhooks_total", "counter",
                        "Webhooks answered by the rules, by route kind, route path (\"unmatched\": no route) and HTTP status.",
                        3, { "kind", "path", "status" }, NULL, 0 },
    [TL_M_WEBHOOK_SECONDS] = { "telua_webhook_duration_seconds", "histogram",
                               "Time from a webhook's whole request to its answer, by route kind.", 1, { "kind" },
                               WEBHOOK_BUCKETS, NB(WEBHOOK_BUCKETS) },
    [TL_M_REJECTED] = { "telua_webhooks_rejected_total", "counter",
                        "Requests turned away before any rule ran, by HTTP status and reason.", 2, { "status", "reason" },
                        NULL, 0 },
    [TL_M_INFLIGHT] = { "telua_inflight_requests", "gauge", "Requests whose rules have not finished.", 0, { 0 }, NULL, 0 },
    [TL_M_RULE_ERRORS] = { "telua_rule_errors_total", "counter",
                           "Webhooks whose rule raised an error or answered a bad result, by rules file.", 1, { "file" },
                           NULL, 0 },
    [TL_M_BUDGET_HITS] = { "telua_rule_budget_hits_total", "counter",
                           "Rules stopped by their CPU budget or memory cap, by rules file and budget.", 2,
                           { "file", "budget" }, NULL, 0 },
    [TL_M_RELOADS] = { "telua_rules_reloads_total", "counter", "Rules reloads, by result (ok, failed).", 1, { "result" },
                       NULL, 0 },
    [TL_M_GENERATION] = { "telua_rules_generation", "gauge", "The rules generation answering new webhooks.", 0, { 0 }, NULL, 0 },
    [TL_M_OUTBOX] = { "telua_outbox_entries", "gauge", "Outbox entries by state (as the sender last counted them).", 1,
                      { "state" }, NULL, 0 },
    [TL_M_SENDS] = { "telua_sends_total", "counter",
                     "The sender's messages by result (sent, retry, failed, unknown, skipped) and Twilio error code.", 2,
                     { "result", "code" }, NULL, 0 },
    [TL_M_PACING_SECONDS] = { "telua_pacing_delay_seconds", "histogram",
                              "How long pacing held a message before its send, by sender type.", 1, { "sender_type" },
                              PACING_BUCKETS, NB(PACING_BUCKETS) },
    [TL_M_STATUS_CALLBACKS] = { "telua_status_callbacks_total", "counter",
                                "Message status callbacks received, by MessageStatus and ErrorCode.", 2, { "status", "code" },
                                NULL, 0 },
    [TL_M_FINAL] = { "telua_messages_final_total", "counter",
                     "Messages that reached a final status (delivered, read, undelivered, failed), by sender and error code.",
                     3, { "sender", "status", "code" }, NULL, 0 },
    [TL_M_DELIVERY_RATIO] = { "telua_delivery_ratio", "gauge",
                              "Delivered (or read) messages over all that reached a final status, by sender.", 1,
                              { "sender" }, NULL, 0 },
    [TL_M_OPTOUTS] = { "telua_optouts_total", "counter",
                       "Opt-outs recorded, by source (keyword: STOP and its synonyms; 21610: Twilio refused a send).", 1,
                       { "source" }, NULL, 0 },
    [TL_M_OPTINS] = { "telua_optins_total", "counter", "Opt-ins recorded (START and its synonyms).", 0, { 0 }, NULL, 0 },
    [TL_M_HTTP_CLIENT] = { "telua_http_client_requests_total", "counter",
                           "HTTP requests made by rules and the sender, by response status (\"error\": no response).", 1,
                           { "status" }, NULL, 0 },
    [TL_M_CAMPAIGN] = { "telua_campaign_entries", "gauge",
                        "A campaign's outbox entries by state, for the campaigns the sender is working on.", 2,
                        { "campaign", "state" }, NULL, 0 },
    [TL_M_DROPPED] = { "telua_metric_series_dropped_total", "counter",
                       "Series not recorded because their family holds too many.", 1, { "family" }, NULL, 0 },
};

typedef struct series {
    char *key;                /* the label values, each ended by '\x1f' */
    unsigned hash;
    int fam;
    double v;                 /* counter or gauge */
    double *hist;             /* histogram: nbuckets + 1 counts, then the sum */
} series;

typedef struct shard {
    pthread_mutex_t mu;
    series *tab;              /* open addressing; key NULL: free */
    size_t cap, n;
    unsigned per_fam[TL_M_NFAMILIES];
} shard;

struct tl_metrics {
    int nshards;              /* workers + the shared one (last) */
    shard *s;
};

tl_metrics *tl_metrics_new(int workers)
{
    tl_metrics *m = calloc(1, sizeof *m);
    int i;
    if (!m) return NULL;
    m->nshards = (workers > 0 ? workers : 0) + 1;
    m->s = calloc((size_t)m->nshards, sizeof *m->s);
    if (!m->s) {
        free(m);
        return NULL;
    }
    for (i = 0; i < m->nshards; i++) pthread_mutex_init(&m->s[i].mu, NULL);
    return m;
}

void tl_metrics_free(tl_metrics *m)
{
    int i;
    size_t j;
    if (!m) return;
    for (i = 0; i < m->nshards; i++) {
        for (j = 0; j < m->s[i].cap; j++) {
            free(m->s[i].tab[j].key);
            free(m->s[i].tab[j].hist);
        }
        free(m->s[i].tab);
        pthread_mutex_destroy(&m->s[i].mu);
    }
    free(m->s);
    free(m);
}

int tl_metrics_find(const char *name)
{
    int f;
    for (f = 0; f < TL_M_NFAMILIES; f++)
        if (strcmp(FAMILIES[f].name, name) == 0) return f;
    return -1;
}

int tl_metrics_nlabels(int family) { return family >= 0 && family < TL_M_NFAMILIES ? FAMILIES[family].nlabels : 0; }

static unsigned fnv1a(int fam, const char *s, size_t n)
{
    unsigned h = 2166136261u ^ (unsigned)fam;
    size_t i;
    for (i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

/* The values as a key: each cut to TL_METRIC_VALUE_MAX bytes (at a UTF-8
 * character boundary), '\x1f' (the separator) replaced, then '\x1f'. */
static size_t make_key(const family_def *fd, const char *const *values, char *out)
{
    size_t o = 0;
    int i;
    for (i = 0; i < fd->nlabels; i++) {
        const char *v = values && values[i] ? values[i] : "";
        size_t n = strlen(v), k;
        if (n > TL_METRIC_VALUE_MAX) {
            n = TL_METRIC_VALUE_MAX;
            while (n > 0 && ((unsigned char)v[n] & 0xC0) == 0x80) n--;
        }
        for (k = 0; k < n; k++) out[o++] = v[k] == '\x1f' ? '?' : v[k];
        out[o++] = '\x1f';
    }
    out[o] = 0;
    return o;
}

static int grow(shard *s)
{
    size_t nc = s->cap ? s->cap * 2 : 64, i;
    series *nt = calloc(nc, sizeof *nt);
    if (!nt) return -1;
    for (i = 0; i < s->cap; i++) {
        series *e = &s->tab[i];
        size_t j;
        if (!e->key) continue;
        for (j = e->hash & (nc - 1); nt[j].key; j = (j + 1) & (nc - 1)) {}
        nt[j] = *e;
    }
    free(s->tab);
    s->tab = nt;
    s->cap = nc;
    return 0;
}

/* The series of key in s, made when missing (NULL: the family is full, or
 * out of memory). Called with s->mu held. */
static series *lookup(shard *s, int fam, const char *key, size_t klen)
{
    const family_def *fd = &FAMILIES[fam];
    unsigned h = fnv1a(fam, key, klen);
    size_t j;
    series *e;
    if (s->cap) {
        for (j = h & (s->cap - 1); s->tab[j].key; j = (j + 1) & (s->cap - 1)) {
            e = &s->tab[j];
            if (e->hash == h && e->fam == fam && strcmp(e->key, key) == 0) return e;
        }
    }
    if (s->per_fam[fam] >= TL_METRIC_SERIES_MAX) return NULL;
    if ((s->n + 1) * 4 > s->cap * 3 && grow(s) != 0) return NULL;
    for (j = h & (s->cap - 1); s->tab[j].key; j = (j + 1) & (s->cap - 1)) {}
    e = &s->tab[j];
    e->key = malloc(klen + 1);
    if (!e->key) return NULL;
    memcpy(e->key, key, klen + 1);
    e->hist = NULL;
    if (fd->buckets) {
        e->hist = calloc((size_t)fd->nbuckets + 2, sizeof(double));
        if (!e->hist) {
            free(e->key);
            e->key = NULL;
            return NULL;
        }
    }
    e->hash = h;
    e->fam = fam;
    e->v = 0;
    s->n++;
    s->per_fam[fam]++;
    return e;
}

static void put(series *e, const family_def *fd, double v)
{
    if (fd->buckets) {
        int b = 0;
        while (b < fd->nbuckets && v > fd->buckets[b]) b++;
        e->hist[b] += 1; /* per bucket here; cumulative when shown */
        e->hist[fd->nbuckets + 1] += v;
    } else if (fd->type[0] == 'g') {
        e->v = v;
    } else if (v > 0) {
        e->v += v;
    }
}

int tl_metrics_record(tl_metrics *m, int shard_i, int family, const char *const *values, double v)
{
    char key[3 * (TL_METRIC_VALUE_MAX + 1) + 1];
    const family_def *fd;
    shard *s;
    series *e;
    size_t klen;
    if (!m || family < 0 || family >= TL_M_NFAMILIES || v != v) return -1;
    fd = &FAMILIES[family];
    if (shard_i < 0 || shard_i >= m->nshards - 1 || fd->type[0] == 'g') shard_i = m->nshards - 1;
    s = &m->s[shard_i];
    klen = make_key(fd, values, key);
    pthread_mutex_lock(&s->mu);
    e = lookup(s, family, key, klen);
    if (e) put(e, fd, v);
    pthread_mutex_unlock(&s->mu);
    if (!e && family != TL_M_DROPPED) {
        const char *name = fd->name;
        tl_metrics_record(m, -1, TL_M_DROPPED, &name, 1);
    }
    return e ? 0 : -1;
}

/* ---- rendering --------------------------------------------------------- */

typedef struct sbuf {
    char *p;
    size_t n, cap;
    int oom;
} sbuf;

static void sb_grow(sbuf *b, size_t more)
{
    char *np;
    size_t nc;
    if (b->oom || b->n + more + 1 <= b->cap) return;
    nc = b->cap ? b->cap : 4096;
    while (nc < b->n + more + 1) nc *= 2;
    np = realloc(b->p, nc);
    if (!np) {
        b->oom = 1;
        return;
    }
    b->p = np;
    b->cap = nc;
}

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...)
{
    va_list ap;
    int n;
    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    sb_grow(b, (size_t)n);
    if (b->oom) return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->n, b->cap - b->n, fmt, ap);
    va_end(ap);
    b->n += (size_t)n;
}

static void sb_putc(sbuf *b, char c)
{
    sb_grow(b, 1);
    if (b->oom) return;
    b->p[b->n++] = c;
    b->p[b->n] = 0;
}

/* A label value as the exposition format quotes it (\\, \", \n), or as
 * the inside of a JSON string. */
static void sb_escaped(sbuf *b, const char *s, size_t n, int json)
{
    size_t i;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\\' || c == '"') {
            sb_putc(b, '\\');
            sb_putc(b, (char)c);
        } else if (c == '\n') {
            sb_putc(b, '\\');
            sb_putc(b, 'n');
        } else if (c < 0x20 || c == 0x7f) {
            if (json) sb_printf(b, "\\u%04x", c);
            else sb_putc(b, ' ');
        } else {
            sb_putc(b, (char)c);
        }
    }
}

static void sb_number(sbuf *b, double v)
{
    if (v == (double)(long long)v && v < 9e15 && v > -9e15) sb_printf(b, "%lld", (long long)v);
    else sb_printf(b, "%.17g", v);
}

/* name{label="value",...} with extra ("le", bucket) when given. */
static void sb_labels(sbuf *b, const family_def *fd, const char *key, const char *extra_name, const char *extra)
{
    const char *p = key;
    int i, any = 0;
    for (i = 0; i < fd->nlabels; i++) {
        const char *end = strchr(p, '\x1f');
        sb_putc(b, any ? ',' : '{');
        sb_printf(b, "%s=\"", fd->labels[i]);
        sb_escaped(b, p, (size_t)(end - p), 0);
        sb_putc(b, '"');
        any = 1;
        p = end + 1;
    }
    if (extra_name) {
        sb_putc(b, any ? ',' : '{');
        sb_printf(b, "%s=\"%s\"", extra_name, extra);
        any = 1;
    }
    if (any) sb_putc(b, '}');
}

static void sb_json_labels(sbuf *b, const family_def *fd, const char *key)
{
    const char *p = key;
    int i;
    sb_putc(b, '{');
    for (i = 0; i < fd->nlabels; i++) {
        const char *end = strchr(p, '\x1f');
        sb_printf(b, "%s\"%s\":\"", i ? "," : "", fd->labels[i]);
        sb_escaped(b, p, (size_t)(end - p), 1);
        sb_putc(b, '"');
        p = end + 1;
    }
    sb_putc(b, '}');
}

static int by_family_key(const void *a, const void *b)
{
    const series *x = a, *y = b;
    if (x->fam != y->fam) return x->fam - y->fam;
    return strcmp(x->key, y->key);
}

static void free_snapshot(series *all, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        free(all[i].key);
        free(all[i].hist);
    }
    free(all);
}

/* Every shard's series, copied under its lock, sorted and merged (a
 * counter's or histogram's shards summed). NULL with *n 0 when empty or
 * out of memory (*oom set). */
static series *snapshot(tl_metrics *m, size_t *n, int *oom)
{
    series *all = NULL;
    size_t cap = 0, k = 0, i, j, out;
    int si;
    *oom = 0;
    for (si = 0; si < m->nshards; si++) {
        shard *s = &m->s[si];
        pthread_mutex_lock(&s->mu);
        if (k + s->n > cap) {
            size_t nc = k + s->n + 16;
            series *na = realloc(all, nc * sizeof *na);
            if (!na) {
                pthread_mutex_unlock(&s->mu);
                goto oom;
            }
            all = na;
            cap = nc;
        }
        for (j = 0; j < s->cap; j++) {
            series *e = &s->tab[j], *c;
            const family_def *fd;
            if (!e->key) continue;
            fd = &FAMILIES[e->fam];
            c = &all[k];
            *c = *e;
            c->key = strdup(e->key);
            c->hist = NULL;
            if (c->key && e->hist) {
                size_t hb = ((size_t)fd->nbuckets + 2) * sizeof(double);
                if ((c->hist = malloc(hb))) memcpy(c->hist, e->hist, hb);
            }
            if (!c->key || (e->hist && !c->hist)) {
                free(c->key);
                pthread_mutex_unlock(&s->mu);
                goto oom;
            }
            k++;
        }
        pthread_mutex_unlock(&s->mu);
    }
    if (k == 0) {
        free(all);
        *n = 0;
        return NULL;
    }
    qsort(all, k, sizeof *all, by_family_key);
    for (i = 1, out = 0; i < k; i++) {
        series *a = &all[out], *b = &all[i];
        if (b->fam == a->fam && strcmp(a->key, b->key) == 0) {
            const family_def *fd = &FAMILIES[a->fam];
            int h;
            if (a->hist)
                for (h = 0; h < fd->nbuckets + 2; h++) a->hist[h] += b->hist[h];
            else a->v += b->v;
            free(b->key);
            free(b->hist);
        } else {
            all[++out] = *b;
        }
    }
    *n = out + 1;
    return all;
oom:
    free_snapshot(all, k);
    *oom = 1;
    *n = 0;
    return NULL;
}

/* The delivery ratio of each sender, from its final statuses (the
 * TL_M_FINAL series of one sender are next to each other: the key starts
 * with the sender). */
static void render_ratio(sbuf *b, const series *all, size_t n, int json)
{
    const family_def *fd = &FAMILIES[TL_M_DELIVERY_RATIO];
    size_t i = 0;
    int first = 1;
    while (i < n && all[i].fam < TL_M_FINAL) i++;
    while (i < n && all[i].fam == TL_M_FINAL) {
        const char *sep = strchr(all[i].key, '\x1f');
        size_t slen = (size_t)(sep - all[i].key);
        double delivered = 0, total = 0;
        char key[TL_METRIC_VALUE_MAX + 2];
        memcpy(key, all[i].key, slen + 1);
        key[slen + 1] = 0;
        while (i < n && all[i].fam == TL_M_FINAL && strncmp(all[i].key, key, slen + 1) == 0) {
            const char *status = all[i].key + slen + 1;
            if (strncmp(status, "delivered\x1f", 10) == 0 || strncmp(status, "read\x1f", 5) == 0) delivered += all[i].v;
            total += all[i].v;
            i++;
        }
        if (total <= 0) continue;
        if (json) {
            sb_printf(b, "%s{\"labels\":", first ? "" : ",");
            sb_json_labels(b, fd, key);
            sb_printf(b, ",\"value\":%.6g}", delivered / total);
        } else {
            sb_printf(b, "%s", fd->name);
            sb_labels(b, fd, key, NULL, NULL);
            sb_printf(b, " %.6g\n", delivered / total);
        }
        first = 0;
    }
}

char *tl_metrics_render(tl_metrics *m, int json, size_t *len)
{
    sbuf b = { NULL, 0, 0, 0 };
    size_t n, i = 0;
    int oom, f;
    series *all = snapshot(m, &n, &oom);
    if (oom) return NULL;
    if (json) sb_putc(&b, '{');
    for (f = 0; f < TL_M_NFAMILIES; f++) {
        const family_def *fd = &FAMILIES[f];
        int first = 1;
        if (json) sb_printf(&b, "%s\"%s\":[", f ? "," : "", fd->name);
        else sb_printf(&b, "# HELP %s %s\n# TYPE %s %s\n", fd->name, fd->help, fd->name, fd->type);
        if (f == TL_M_DELIVERY_RATIO) render_ratio(&b, all, n, json);
        for (; i < n && all[i].fam == f; i++) {
            const series *e = &all[i];
            if (json) {
                sb_printf(&b, "%s{\"labels\":", first ? "" : ",");
                sb_json_labels(&b, fd, e->key);
                if (e->hist) {
                    double count = 0;
                    int h;
                    for (h = 0; h <= fd->nbuckets; h++) count += e->hist[h];
                    sb_printf(&b, ",\"count\":");
                    sb_number(&b, count);
                    sb_printf(&b, ",\"sum\":%.9g}", e->hist[fd->nbuckets + 1]);
                } else {
                    sb_printf(&b, ",\"value\":");
                    sb_number(&b, e->v);
                    sb_putc(&b, '}');
                }
            } else if (e->hist) {
                double cum = 0;
                char le[32];
                int h;
                for (h = 0; h <= fd->nbuckets; h++) {
                    cum += e->hist[h];
                    if (h < fd->nbuckets) snprintf(le, sizeof le, "%g", fd->buckets[h]);
                    else snprintf(le, sizeof le, "+Inf");
                    sb_printf(&b, "%s_bucket", fd->name);
                    sb_labels(&b, fd, e->key, "le", le);
                    sb_putc(&b, ' ');
                    sb_number(&b, cum);
                    sb_putc(&b, '\n');
                }
                sb_printf(&b, "%s_sum", fd->name);
                sb_labels(&b, fd, e->key, NULL, NULL);
                sb_printf(&b, " %.9g\n%s_count", e->hist[fd->nbuckets + 1], fd->name);
                sb_labels(&b, fd, e->key, NULL, NULL);
                sb_putc(&b, ' ');
                sb_number(&b, cum);
                sb_putc(&b, '\n');
            } else {
                sb_printf(&b, "%s", fd->name);
                sb_labels(&b, fd, e->key, NULL, NULL);
                sb_putc(&b, ' ');
                sb_number(&b, e->v);
                sb_putc(&b, '\n');
            }
            first = 0;
        }
        if (json) sb_putc(&b, ']');
    }
    if (json) sb_putc(&b, '}');
    free_snapshot(all, n);
    if (b.oom || !b.p) {
        free(b.p);
        return NULL;
    }
    *len = b.n;
    return b.p;
}
