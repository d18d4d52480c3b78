/*
 * front.c - the webhook front end (see host.h): one single-threaded MHD
 * daemon per worker, all listening on the same address with SO_REUSEPORT
 * so the kernel spreads connections evenly (MHD's own thread pool shares
 * one accept queue and left one core idle under load). Everything a
 * request must pass before any rule runs is checked here, in C.
 */
#include "host.h"
#include "log.h"

#include "../core/form.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Anyone can send requests that are turned away; a flood of them must not
 * become a flood of log lines. Past this many in a second, they are only
 * counted, and the count is logged with the next one logged. */
#define REJECT_LOG_PER_S 10

/* ---- answers ---------------------------------------------------------- */

enum MHD_Result tl_reply(struct MHD_Connection *con, unsigned status, const char *ctype, const char *body,
                         size_t len, int generation)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    enum MHD_Result ret;
    if (!r) return MHD_NO;
    if (ctype) MHD_add_response_header(r, "Content-Type", ctype);
    if (generation > 0) { /* which rules generation answered */
        char g[16];
        snprintf(g, sizeof g, "%d", generation);
        MHD_add_response_header(r, "X-Telua-Generation", g);
    }
    ret = MHD_queue_response(con, status, r);
    MHD_destroy_response(r);
    return ret;
}

enum MHD_Result tl_send_owned(struct MHD_Connection *con, unsigned status, const char *ctype, char *body, size_t len)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    enum MHD_Result ret;
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", ctype);
    MHD_add_response_header(r, "Cache-Control", "no-store");
    ret = MHD_queue_response(con, status, r);
    MHD_destroy_response(r);
    return ret;
}

enum MHD_Result tl_send_text(struct MHD_Connection *con, unsigned status, const char *text)
{
    return tl_reply(con, status, "text/plain; charset=utf-8", text, strlen(text), 0);
}

/* Logs a turned-away request ("400 ...", "403 ...", "413 ...") unless this
 * second's share is used up; the path is attacker-chosen, so it goes
 * through "%s" only, cut at 200 bytes. */
static void log_rejected(telua_host *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void log_rejected(telua_host *h, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    time_t now = time(NULL);
    unsigned long unlogged = 0;
    int go;
    pthread_mutex_lock(&h->reject_mu);
    if (now != h->reject_sec) {
        h->reject_sec = now;
        h->reject_logged = 0;
    }
    go = h->reject_logged < REJECT_LOG_PER_S;
    if (go) {
        h->reject_logged++;
        unlogged = h->reject_unlogged;
        h->reject_unlogged = 0;
    } else {
        h->reject_unlogged++;
    }
    pthread_mutex_unlock(&h->reject_mu);
    if (!go) return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (unlogged)
        tl_log("warn", "%s (and %lu more turned away, not logged: over %d lines a second)", msg, unlogged,
               REJECT_LOG_PER_S);
    else
        tl_log("warn", "%s", msg);
}

/* Counts a request turned away before any rule ran. */
static void reject(telua_host *h, int index, const char *status, const char *reason)
{
    const char *v[2] = { status, reason };
    tl_metrics_record(h->metrics, index, TL_M_REJECTED, v, 1);
}

/* ---- connections and requests ----------------------------------------- */

static tl_conn *socket_conn(struct MHD_Connection *con)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(con, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? (tl_conn *)ci->socket_context : NULL;
}

/* MHD_OPTION_NOTIFY_CONNECTION: a socket's read deadline, from accept. */
static void notify_connection(void *cls, struct MHD_Connection *con, void **socket_context,
                              enum MHD_ConnectionNotificationCode code)
{
    telua_host *h = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(con, MHD_CONNECTION_INFO_CONNECTION_FD);
        *socket_context = ci ? tl_conns_add(&h->conns, ci->connect_fd) : NULL;
    } else if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        tl_conns_remove(&h->conns, *socket_context);
        *socket_context = NULL;
    }
}

/* MHD_OPTION_URI_LOG_CALLBACK: sees the request target before MHD decodes
 * it; what it returns becomes the connection's request context. */
static void *uri_logger(void *cls, const char *uri, struct MHD_Connection *con)
{
    req_ctx *c = calloc(1, sizeof *c);
    (void)cls;
    (void)con;
    if (c) c->uri = strdup(uri ? uri : "/");
    return c;
}

static void completed(void *cls, struct MHD_Connection *con, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    telua_host *h = cls;
    req_ctx *c = *con_cls;
    if (!c) return;
    if (c->gen) tl_driver_abandon(h, c); /* ended while its rule was still running (the host stops) */
    if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK) tl_conns_next(&h->conns, socket_conn(con));
    free(c->path);
    free(c->uri);
    tl_body_free(&c->body);
    free(c);
    *con_cls = NULL;
}

#define STACK_PARAMS 48 /* a voice webhook has about 25 fields */

typedef struct {
    tl_param *p;
    size_t n, cap;
    int oom;
    tl_param stack[STACK_PARAMS];
} param_list;

/* Collects decoded pairs as tl_param pointing into the decoder's scratch
 * buffer (each pair has its own bytes there, valid while it is). */
static int collect_param(void *ud, const char *k, size_t kl, const char *v, size_t vl)
{
    param_list *l = ud;
    if (l->n == l->cap) {
        size_t nc = 2 * l->cap;
        tl_param *np = l->p == l->stack ? malloc(nc * sizeof *np) : realloc(l->p, nc * sizeof *np);
        if (!np) {
            l->oom = 1;
            return 1;
        }
        if (l->p == l->stack) memcpy(np, l->stack, l->n * sizeof *np);
        l->p = np;
        l->cap = nc;
    }
    l->p[l->n].key = k;
    l->p[l->n].key_len = kl;
    l->p[l->n].value = v;
    l->p[l->n].value_len = vl;
    l->n++;
    return 0;
}

static void free_params(param_list *l)
{
    if (l->p != l->stack) free(l->p);
}

static int is_form(const char *ctype)
{
    static const char f[] = "application/x-www-form-urlencoded";
    return ctype && strncasecmp(ctype, f, sizeof f - 1) == 0 &&
           (ctype[sizeof f - 1] == 0 || ctype[sizeof f - 1] == ';' || ctype[sizeof f - 1] == ' ');
}

/* The whole request is in: the checks, then the rules. */
static enum MHD_Result handle(telua_host *h, int index, struct MHD_Connection *con, req_ctx *c, const char *method)
{
    char *path, *query, *url, *scratch = NULL;
    const char *sig, *ctype, *raw_body = NULL;
    param_list params;
    size_t ulen, pos = 0, raw_len = 0;
    int src;
    enum MHD_Result ret;

    params.p = params.stack;
    params.n = 0;
    params.cap = STACK_PARAMS;
    params.oom = 0;
    atomic_fetch_add(&h->requests, 1);
    c->arrived_ns = tl_now_ns();
    if (c->body.too_large) {
        reject(h, index, "413", "too_large");
        return tl_send_text(con, 413, "request body too large\n");
    }
    path = strdup(c->uri);
    if (!path) return MHD_NO;
    query = strchr(path, '?');
    if (query) *query++ = 0;
    if (strcmp(method, "GET") == 0 && strcmp(path, "/-/health") == 0) {
        free(path);
        return tl_send_text(con, 200, "ok\n");
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0) {
        free(path);
        reject(h, index, "405", "method");
        return tl_send_text(con, 405, "webhooks are GET or POST\n");
    }
    /* the URL Twilio requested: public base + the request target as received */
    ulen = h->public_len + strlen(c->uri);
    url = malloc(ulen + 1);
    if (!url) {
        free(path);
        return MHD_NO;
    }
    memcpy(url, h->public_url, h->public_len);
    strcpy(url + h->public_len, c->uri);

    ctype = MHD_lookup_connection_value(con, MHD_HEADER_KIND, "Content-Type");
    sig = MHD_lookup_connection_value(con, MHD_HEADER_KIND, "X-Twilio-Signature");
    if (c->body.len > 0 && !is_form(ctype)) {
        raw_body = c->body.data;
        raw_len = c->body.len;
    } else if (c->body.len > 0) {
        scratch = malloc(c->body.len);
        if (!scratch) {
            ret = MHD_NO;
            goto out;
        }
        if (tl_form_decode(c->body.data, c->body.len, scratch, collect_param, &params, &pos) != TL_FORM_OK ||
            params.oom) {
            char msg[96];
            atomic_fetch_add(&h->rejected, 1);
            reject(h, index, "400", "malformed_form");
            snprintf(msg, sizeof msg, "malformed form body (bad percent escape at byte %zu)\n", pos + 1);
            log_rejected(h, "400 %s %.200s: malformed form body", method, path);
            ret = tl_send_text(con, 400, params.oom ? "out of memory\n" : msg);
            goto out;
        }
    }
    src = tl_sig_validate_key(h->key, url, ulen, params.p, params.n, sig ? sig : "", sig ? strlen(sig) : 0,
                              raw_body, raw_len);
    if (src != TL_SIG_VALID) {
        atomic_fetch_add(&h->rejected, 1);
        reject(h, index, "403", "signature");
        log_rejected(h, "403 %s %.200s: %s", method, path, tl_sig_reason(src));
        ret = tl_send_text(con, 403, "invalid Twilio signature\n");
        goto out;
    }
    ret = tl_driver_run(h, index, con, c, method, path, query, url, params.p, params.n,
                        raw_body ? NULL : c->body.data, raw_body ? 0 : c->body.len, raw_body, raw_len);
out:
    free_params(&params);
    free(scratch);
    free(url);
    free(path);
    return ret;
}

static enum MHD_Result access_cb(void *cls, struct MHD_Connection *con, const char *url, const char *method,
                                 const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
    worker *w = cls;
    telua_host *h = w->h;
    req_ctx *c = *con_cls;
    (void)url;
    (void)version;
    if (!c) return MHD_NO;
    if (c->gen) return tl_driver_resume(h, c); /* back from I/O */
    if (!c->started) {
        const char *cl = MHD_lookup_connection_value(con, MHD_HEADER_KIND, "Content-Length");
        c->started = 1;
        /* far over the limit: answer now and drop the connection; a little
         * over: read and discard, so the client sees the 413 */
        if (cl && strtoull(cl, NULL, 10) > h->cfg.max_body + (size_t)1024 * 1024) {
            atomic_fetch_add(&h->requests, 1);
            atomic_fetch_add(&h->rejected, 1);
            reject(h, w->index, "413", "too_large");
            log_rejected(h, "413 %s: body of %.30s bytes over the %zu byte limit", method, cl, h->cfg.max_body);
            tl_conns_answering(&h->conns, socket_conn(con));
            return tl_send_text(con, 413, "request body too large\n");
        }
        return MHD_YES;
    }
    if (*upload_size) {
        if (tl_body_append(&c->body, upload, *upload_size, h->cfg.max_body) != 0) return MHD_NO;
        *upload_size = 0;
        return MHD_YES;
    }
    tl_conns_answering(&h->conns, socket_conn(con));
    return handle(h, w->index, con, c, method);
}

int tl_front_start(telua_host *h, int index, const struct sockaddr *sa, int v6, char *err, size_t errlen)
{
    worker *w = &h->w[index];
    const telua_config *cfg = &h->cfg;
    w->daemon = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | (v6 ? MHD_USE_IPv6 : 0),
        0, NULL, NULL, access_cb, w,
        MHD_OPTION_SOCK_ADDR, sa,
        MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u,
        MHD_OPTION_CONNECTION_TIMEOUT, cfg->timeout_s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)16 * 1024, /* headers; MHD zeroes it per request */
        MHD_OPTION_CONNECTION_LIMIT, cfg->max_connections,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, cfg->per_ip_limit,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u,
        MHD_OPTION_URI_LOG_CALLBACK, uri_logger, h,
        MHD_OPTION_NOTIFY_COMPLETED, completed, h,
        MHD_OPTION_NOTIFY_CONNECTION, notify_connection, h,
        MHD_OPTION_END);
    if (!w->daemon) {
        snprintf(err, errlen, "cannot listen on %s", cfg->listen);
        return -1;
    }
    return 0;
}
