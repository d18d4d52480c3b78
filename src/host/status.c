/*
 * status.c - GET /-/status on the admin listener: the version and uptime,
 * the current generation, the last reload error, the host's counters and
 * every metric (metrics.h's JSON form), as JSON (no secrets).
 */
#include "host.h"
#include "log.h"

#include "../lua/telua_core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The store's spec without any user or password it holds
 * ("redis://user:secret@host" -> "redis://host"). */
static void store_shown(const char *spec, char *out, size_t outlen)
{
    const char *scheme = strstr(spec, "://"), *at;
    char plain[1024];
    if (scheme && (at = strchr(scheme + 3, '@')) && !memchr(scheme + 3, '/', (size_t)(at - scheme - 3)))
        snprintf(plain, sizeof plain, "%.*s%s", (int)(scheme + 3 - spec), spec, at + 1);
    else snprintf(plain, sizeof plain, "%s", spec);
    tl_json_escape(plain, out, outlen);
}

enum MHD_Result tl_send_status(struct MHD_Connection *con, telua_host *h)
{
    char store[2100];
    char buf[8192];
    tl_gens *g = &h->gens;
    tl_gen *cur;
    size_t o = 0;
#define PUT(...) o += (size_t)snprintf(buf + o, o < sizeof buf ? sizeof buf - o : 0, __VA_ARGS__)
    pthread_mutex_lock(&g->mu);
    cur = g->current;
    PUT("{\"version\":\"%s\",\"uptime_s\":%.3f,\"started_at\":%lld,\"generation\":%d,\"sha256\":\"%s\",\"loaded_at\":%lld,\"files\":%d,", TELUA_VERSION,
        (double)(tl_now_ns() - h->started_ns) / 1e9, (long long)h->started_at, cur ? cur->id : 0, cur ? cur->hash : "", cur ? (long long)cur->loaded_at : 0LL, cur ? cur->nfiles : 0);
    store_shown(h->cfg.store, store, sizeof store);
    PUT("\"store\":\"%s\",", store);
    if (tl_store_redis(h->cfg.store)) {
        char consumer[700];
        tl_json_escape(h->consumer, consumer, sizeof consumer);
        PUT("\"consumer\":\"%s\",", consumer);
    }
    PUT("\"workers\":%d,\"reloads\":%lu,\"reload_failures\":%lu,", h->cfg.workers,
        g->reloads, g->failures);
    PUT("\"requests\":%lu,\"rejected\":%lu,\"rule_errors\":%lu,\"bad_results\":%lu,\"cpu_budget_hits\":%lu,"
        "\"memory_cap_hits\":%lu,\"store_failures\":%lu,\"read_timeouts\":%lu,\"last_reload_error\":",
        (unsigned long)atomic_load(&h->requests), (unsigned long)atomic_load(&h->rejected),
        (unsigned long)atomic_load(&h->errors), (unsigned long)atomic_load(&h->bad_results),
        (unsigned long)atomic_load(&h->budget_hits), (unsigned long)atomic_load(&h->mem_hits),
        (unsigned long)atomic_load(&h->store_failures),
        (unsigned long)atomic_load(&h->conns.reaped));
    if (g->has_error) {
        char file[2100], msg[2100];
        tl_json_escape(g->last_error.file, file, sizeof file);
        tl_json_escape(g->last_error.message, msg, sizeof msg);
        PUT("{\"file\":\"%s\",\"line\":", file);
        if (g->last_error.line) PUT("%d", g->last_error.line);
        else PUT("null");
        PUT(",\"message\":\"%s\",\"at\":%lld}", msg, (long long)g->last_error.at);
    } else {
        PUT("null");
    }
    pthread_mutex_unlock(&g->mu);
#undef PUT
    if (o >= sizeof buf) return tl_send_text(con, 500, "status too large\n");
    {
        size_t mlen = 0;
        char *metrics = h->metrics ? tl_metrics_render(h->metrics, 1, &mlen) : NULL;
        char *all = malloc(o + mlen + 32);
        if (!all) {
            free(metrics);
            return tl_send_text(con, 500, "out of memory\n");
        }
        memcpy(all, buf, o);
        o += (size_t)sprintf(all + o, ",\"metrics\":");
        if (metrics) memcpy(all + o, metrics, mlen);
        else memcpy(all + o, "{}", mlen = 2);
        o += mlen;
        o += (size_t)sprintf(all + o, "}\n");
        free(metrics);
        return tl_send_owned(con, 200, "application/json", all, o);
    }
}
