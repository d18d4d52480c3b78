/*
 * status.c - GET /-/status: the current generation, the last reload
 * error and the host's counters, as JSON (no secrets).
 */
#include "host.h"

#include "../lua/telua_core.h"

#include <stdio.h>
#include <string.h>

/* s as the inside of a JSON string, cut to fit out. */
static void json_escape(const char *s, char *out, size_t outlen)
{
    size_t e = 0;
    for (; *s && e + 8 < outlen; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            out[e++] = '\\';
            out[e++] = (char)c;
        } else if (c < 0x20) {
            e += (size_t)snprintf(out + e, 8, "\\u%04x", c);
        } else {
            out[e++] = (char)c;
        }
    }
    out[e] = 0;
}

/* The store's spec without any user or password it holds
 * ("redis://user:secret@host" -> "redis://host"). */
static void store_shown(const char *spec, char *out, size_t outlen)
{
    const char *scheme = strstr(spec, "://"), *at;
    char plain[1024];
    if (scheme && (at = strchr(scheme + 3, '@')) && !memchr(scheme + 3, '/', (size_t)(at - scheme - 3)))
        snprintf(plain, sizeof plain, "%.*s%s", (int)(scheme + 3 - spec), spec, at + 1);
    else snprintf(plain, sizeof plain, "%s", spec);
    json_escape(plain, out, outlen);
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
    PUT("{\"version\":\"%s\",\"generation\":%d,\"sha256\":\"%s\",\"loaded_at\":%lld,\"files\":%d,", TELUA_VERSION,
        cur ? cur->id : 0, cur ? cur->hash : "", cur ? (long long)cur->loaded_at : 0LL, cur ? cur->nfiles : 0);
    store_shown(h->cfg.store, store, sizeof store);
    PUT("\"store\":\"%s\",", store);
    if (tl_store_redis(h->cfg.store)) {
        char consumer[700];
        json_escape(h->consumer, consumer, sizeof consumer);
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
        json_escape(g->last_error.file, file, sizeof file);
        json_escape(g->last_error.message, msg, sizeof msg);
        PUT("{\"file\":\"%s\",\"line\":", file);
        if (g->last_error.line) PUT("%d", g->last_error.line);
        else PUT("null");
        PUT(",\"message\":\"%s\",\"at\":%lld}", msg, (long long)g->last_error.at);
    } else {
        PUT("null");
    }
    PUT("}\n");
    pthread_mutex_unlock(&g->mu);
#undef PUT
    if (o >= sizeof buf) return tl_send_text(con, 500, "status too large\n");
    return tl_reply(con, 200, "application/json", buf, o, 0);
}
