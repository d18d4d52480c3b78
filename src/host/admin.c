/*
 * admin.c - the admin listener: a libmicrohttpd daemon of its own, on an
 * address apart from the webhook port (default 127.0.0.1:9180), for the
 * operator and Prometheus, never for Twilio:
 *
 *   GET /metrics    the Prometheus text exposition format 0.0.4
 *   GET /-/status   JSON: version, uptime, generation, last reload error,
 *                   counters, and every metric (metrics.h's JSON form)
 *   GET /-/health   "ok"
 *   GET /           the dashboard (src/host/dashboard.html, built in)
 *
 * With an admin token every path but /-/health and the dashboard page
 * itself (which holds no figures; its script sends the token) needs
 * `Authorization: Bearer TOKEN`, compared in constant time.
 */
#include "host.h"
#include "listen.h"
#include "log.h"

#include <arpa/inet.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The dashboard page, linked in from its file (no build step, no CDN). */
__asm__(".section .rodata\n"
        ".global tl_dashboard_html\n"
        ".hidden tl_dashboard_html\n"
        "tl_dashboard_html:\n"
        ".incbin \"" TELUA_DASHBOARD "\"\n"
        ".global tl_dashboard_html_end\n"
        ".hidden tl_dashboard_html_end\n"
        "tl_dashboard_html_end:\n"
        ".byte 0\n"
        ".previous\n");
extern const char tl_dashboard_html[], tl_dashboard_html_end[];

/* The gauges read off the host at each scrape. */
static void refresh_gauges(telua_host *h)
{
    tl_gens *g = &h->gens;
    int id;
    pthread_mutex_lock(&g->mu);
    id = g->current ? g->current->id : 0;
    pthread_mutex_unlock(&g->mu);
    tl_metrics_record(h->metrics, -1, TL_M_GENERATION, NULL, id);
    tl_metrics_record(h->metrics, -1, TL_M_INFLIGHT, NULL, atomic_load(&h->inflight));
}

static int authorized(telua_host *h, struct MHD_Connection *con)
{
    const char *auth;
    size_t n, tn;
    if (!h->admin_token) return 1;
    auth = MHD_lookup_connection_value(con, MHD_HEADER_KIND, "Authorization");
    if (!auth || strncmp(auth, "Bearer ", 7) != 0) return 0;
    auth += 7;
    n = strlen(auth);
    tn = strlen(h->admin_token);
    return n == tn && CRYPTO_memcmp(auth, h->admin_token, n) == 0;
}

static enum MHD_Result admin_cb(void *cls, struct MHD_Connection *con, const char *url, const char *method,
                                const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
    telua_host *h = cls;
    (void)version;
    (void)upload;
    if (!*con_cls) { /* the headers are in; wait for any body, which is ignored */
        *con_cls = h;
        return MHD_YES;
    }
    if (*upload_size) {
        *upload_size = 0;
        return MHD_YES;
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return tl_send_text(con, 405, "the admin listener answers GET\n");
    if (strcmp(url, "/-/health") == 0) return tl_send_text(con, 200, "ok\n");
    if (strcmp(url, "/") == 0 || strcmp(url, "/index.html") == 0) {
        struct MHD_Response *r = MHD_create_response_from_buffer(
            (size_t)(tl_dashboard_html_end - tl_dashboard_html), (void *)tl_dashboard_html, MHD_RESPMEM_PERSISTENT);
        enum MHD_Result ret;
        if (!r) return MHD_NO;
        MHD_add_response_header(r, "Content-Type", "text/html; charset=utf-8");
        MHD_add_response_header(r, "Content-Security-Policy",
                                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                                "connect-src 'self'; img-src data:");
        ret = MHD_queue_response(con, 200, r);
        MHD_destroy_response(r);
        return ret;
    }
    if (strcmp(url, "/metrics") != 0 && strcmp(url, "/-/status") != 0)
        return tl_send_text(con, 404, "not found (the admin listener has /metrics, /-/status, /-/health and /)\n");
    if (!authorized(h, con)) {
        struct MHD_Response *r = MHD_create_response_from_buffer(strlen("admin token required\n"),
                                                                 (void *)"admin token required\n",
                                                                 MHD_RESPMEM_PERSISTENT);
        enum MHD_Result ret;
        if (!r) return MHD_NO;
        MHD_add_response_header(r, "Content-Type", "text/plain; charset=utf-8");
        MHD_add_response_header(r, "WWW-Authenticate", "Bearer realm=\"telua admin\"");
        ret = MHD_queue_response(con, 401, r);
        MHD_destroy_response(r);
        return ret;
    }
    refresh_gauges(h);
    if (strcmp(url, "/metrics") == 0) {
        size_t len;
        char *text = tl_metrics_render(h->metrics, 0, &len);
        if (!text) return tl_send_text(con, 500, "out of memory\n");
        return tl_send_owned(con, 200, "text/plain; version=0.0.4; charset=utf-8", text, len);
    }
    return tl_send_status(con, h);
}

int tl_admin_start(telua_host *h, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    int v6;
    unsigned port;
    const union MHD_DaemonInfo *info;
    const char *addr = h->cfg.admin_listen;
    if (!addr) return 0;
    if (tl_parse_listen(addr, &ss, &sl, &v6) != 0) {
        snprintf(err, errlen, "cannot parse admin listen address '%s' (want HOST:PORT or [V6]:PORT)", addr);
        return -1;
    }
    port = v6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port) : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (port != 0 && port == h->port) {
        snprintf(err, errlen, "the admin listener must not be on the webhook port (%s)", addr);
        return -1;
    }
    h->admin = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | (v6 ? MHD_USE_IPv6 : 0), 0, NULL,
                                NULL, admin_cb, h, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                                MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_CONNECTION_LIMIT, 64u,
                                MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)16 * 1024, MHD_OPTION_END);
    if (!h->admin) {
        snprintf(err, errlen, "cannot listen on %s (the admin listener)", addr);
        return -1;
    }
    info = MHD_get_daemon_info(h->admin, MHD_DAEMON_INFO_BIND_PORT);
    h->admin_port = info ? info->port : 0;
    return 0;
}

void tl_admin_stop(telua_host *h)
{
    if (!h->admin) return;
    MHD_stop_daemon(h->admin);
    h->admin = NULL;
}
