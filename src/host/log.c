/*
 * log.c - see log.h.
 */
#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* fn and ud change together: readers take the lock shared, so a line in
 * progress finishes with the sink it started with */
static pthread_rwlock_t sink_lock = PTHREAD_RWLOCK_INITIALIZER;
static telua_log_fn sink_fn;
static void *sink_ud;
static atomic_int json_lines;
static _Thread_local const char *request_id;

void tl_log_set(telua_log_fn fn, void *ud)
{
    pthread_rwlock_wrlock(&sink_lock);
    sink_fn = fn;
    sink_ud = ud;
    pthread_rwlock_unlock(&sink_lock);
}

void tl_log_json(int on) { atomic_store(&json_lines, on ? 1 : 0); }

void tl_log_request(const char *id) { request_id = id; }

/* s as the inside of a JSON string into out (cut to fit, never inside an
 * escape); returns the length. Invalid UTF-8 is passed as it is: lines
 * hold what telua and the rules wrote. */
size_t tl_json_escape(const char *s, char *out, size_t outlen)
{
    size_t e = 0;
    for (; *s && e + 7 < outlen; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            out[e++] = '\\';
            out[e++] = (char)c;
        } else if (c == '\n') {
            out[e++] = '\\';
            out[e++] = 'n';
        } else if (c < 0x20) {
            e += (size_t)snprintf(out + e, 7, "\\u%04x", c);
        } else {
            out[e++] = (char)c;
        }
    }
    out[e] = 0;
    return e;
}

/* One finished line to the sink or to stderr. text: the message of a
 * text line; json: the fields after "level" of a JSON line. */
static void emit(const char *level, const char *text, const char *json)
{
    char ts[40];
    struct timespec now;
    struct tm tm;
    int as_json = atomic_load(&json_lines);
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    pthread_rwlock_rdlock(&sink_lock);
    if (sink_fn) {
        char line[4600];
        if (as_json) snprintf(line, sizeof line, "{\"level\":\"%s\",%s}", level, json);
        sink_fn(level, as_json ? line : text, sink_ud);
        pthread_rwlock_unlock(&sink_lock);
        return;
    }
    pthread_rwlock_unlock(&sink_lock);
    /* one fprintf per line: stdio locks the stream, so lines never interleave */
    if (as_json)
        fprintf(stderr, "{\"time\":\"%s.%03ldZ\",\"level\":\"%s\",%s}\n", ts, now.tv_nsec / 1000000, level, json);
    else fprintf(stderr, "%s.%03ldZ [%s] %s\n", ts, now.tv_nsec / 1000000, level, text);
}

void tl_log(const char *level, const char *fmt, ...)
{
    char msg[2048], text[2100], json[4500];
    const char *id = request_id;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (atomic_load(&json_lines)) {
        size_t o = (size_t)snprintf(json, sizeof json, "\"msg\":\"");
        o += tl_json_escape(msg, json + o, sizeof json - o - 64);
        if (id) snprintf(json + o, sizeof json - o, "\",\"request_id\":\"%s\"", id);
        else snprintf(json + o, sizeof json - o, "\"");
        emit(level, NULL, json);
    } else {
        if (id) snprintf(text, sizeof text, "[%s] %s", id, msg);
        emit(level, id ? text : msg, NULL);
    }
}

/* ---- the access log ------------------------------------------------- */

/* Appends s (at most max bytes) at *o. */
static void put_str(char *out, size_t *o, const char *s, size_t max)
{
    size_t n = strnlen(s, max);
    memcpy(out + *o, s, n);
    *o += n;
}

/* Appends v in decimal, at least `width` digits (zero-padded). */
static void put_uint(char *out, size_t *o, unsigned long long v, int width)
{
    char d[24];
    int n = 0;
    do {
        d[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v && n < (int)sizeof d);
    while (n < width) d[n++] = '0';
    while (n) out[(*o)++] = d[--n];
}

/* An access line's message, the part after the timestamp and level: as
 * text, "[ID] access METHOD PATH STATUS D.DDDms rule=R kind=K
 * generation=G", formatted by hand (it is written once per webhook); as
 * JSON, the object's fields from "msg" on. out holds at least 1,600
 * bytes. Returns the length. */
static size_t access_message(char *out, int json, const char *id, const char *method, const char *path,
                             unsigned status, long long us, const char *rule, const char *kind, int generation)
{
    size_t o = 0;
    unsigned long long u = (unsigned long long)(us < 0 ? 0 : us);
    if (json) {
        char p[700], r[700], m[64];
        int n;
        tl_json_escape(method, m, sizeof m);
        tl_json_escape(path, p, sizeof p);
        tl_json_escape(rule, r, sizeof r);
        n = snprintf(out, 1600,
                     "\"msg\":\"access\",\"method\":\"%s\",\"path\":\"%s\",\"status\":%u,\"duration_ms\":%llu.%03llu,"
                     "\"rule\":\"%s\",\"kind\":\"%s\",\"request_id\":\"%s\",\"generation\":%d",
                     m, p, status, u / 1000, u % 1000, r, kind, id, generation);
        return n < 0 ? 0 : n >= 1600 ? 1599 : (size_t)n;
    }
    out[o++] = '[';
    put_str(out, &o, id, 16);
    put_str(out, &o, "] access ", 16);
    put_str(out, &o, method, 15);
    out[o++] = ' ';
    put_str(out, &o, path, 600);
    out[o++] = ' ';
    put_uint(out, &o, status, 1);
    out[o++] = ' ';
    put_uint(out, &o, u / 1000, 1);
    out[o++] = '.';
    put_uint(out, &o, u % 1000, 3);
    put_str(out, &o, "ms rule=", 16);
    put_str(out, &o, rule, 600);
    put_str(out, &o, " kind=", 16);
    put_str(out, &o, kind, 16);
    put_str(out, &o, " generation=", 16);
    put_uint(out, &o, (unsigned long long)(generation < 0 ? 0 : generation), 1);
    out[o] = 0;
    return o;
}

#define ACCESS_BUF 65536

typedef struct access_buf {
    pthread_mutex_t mu;       /* the worker appends, the flusher writes out */
    size_t n;
    time_t sec;               /* the second `stamp` was made for */
    char stamp[32];           /* "2026-12-03T11:43:05" */
    char data[ACCESS_BUF];
} access_buf;

struct tl_access_log {
    int nbuf;
    access_buf *buf;
    pthread_t flusher;
    pthread_mutex_t stop_mu;
    pthread_cond_t stop_cv;
    int stopping;
};

/* Writes b's lines to stderr; called with b->mu held. A short write
 * (a full disk) drops the rest: the host serves on. */
static void drain(access_buf *b)
{
    size_t off = 0;
    while (off < b->n) {
        ssize_t w = write(2, b->data + off, b->n - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break;
        off += (size_t)w;
    }
    b->n = 0;
}

static void *flusher_main(void *arg)
{
    tl_access_log *a = arg;
    int i;
    pthread_mutex_lock(&a->stop_mu);
    while (!a->stopping) {
        struct timespec due;
        clock_gettime(CLOCK_REALTIME, &due);
        due.tv_nsec += TL_ACCESS_FLUSH_MS * 1000000L;
        if (due.tv_nsec >= 1000000000L) {
            due.tv_sec++;
            due.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&a->stop_cv, &a->stop_mu, &due);
        pthread_mutex_unlock(&a->stop_mu);
        for (i = 0; i < a->nbuf; i++) {
            pthread_mutex_lock(&a->buf[i].mu);
            if (a->buf[i].n) drain(&a->buf[i]);
            pthread_mutex_unlock(&a->buf[i].mu);
        }
        pthread_mutex_lock(&a->stop_mu);
    }
    pthread_mutex_unlock(&a->stop_mu);
    return NULL;
}

tl_access_log *tl_access_log_new(int workers)
{
    tl_access_log *a = calloc(1, sizeof *a);
    int i;
    if (!a) return NULL;
    a->nbuf = workers > 0 ? workers : 1;
    a->buf = calloc((size_t)a->nbuf, sizeof *a->buf);
    if (!a->buf) {
        free(a);
        return NULL;
    }
    for (i = 0; i < a->nbuf; i++) pthread_mutex_init(&a->buf[i].mu, NULL);
    pthread_mutex_init(&a->stop_mu, NULL);
    pthread_cond_init(&a->stop_cv, NULL);
    if (pthread_create(&a->flusher, NULL, flusher_main, a) != 0) {
        for (i = 0; i < a->nbuf; i++) pthread_mutex_destroy(&a->buf[i].mu);
        free(a->buf);
        free(a);
        return NULL;
    }
    return a;
}

void tl_access_log_free(tl_access_log *a)
{
    int i;
    if (!a) return;
    pthread_mutex_lock(&a->stop_mu);
    a->stopping = 1;
    pthread_cond_signal(&a->stop_cv);
    pthread_mutex_unlock(&a->stop_mu);
    pthread_join(a->flusher, NULL);
    for (i = 0; i < a->nbuf; i++) {
        drain(&a->buf[i]);
        pthread_mutex_destroy(&a->buf[i].mu);
    }
    pthread_mutex_destroy(&a->stop_mu);
    pthread_cond_destroy(&a->stop_cv);
    free(a->buf);
    free(a);
}

void tl_log_access(tl_access_log *a, int worker, const char *method, const char *path, unsigned status, long long ns,
                   const char *rule, const char *kind, const char *id, int generation)
{
    char msg[1600], line[1700];
    struct timespec now;
    int as_json = atomic_load(&json_lines);
    size_t mlen = access_message(msg, as_json, id, method, path, status, ns / 1000, rule, kind, generation), o = 0;
    access_buf *b;
    pthread_rwlock_rdlock(&sink_lock);
    if (sink_fn || !a || worker < 0 || worker >= a->nbuf) { /* a log function: each line at once */
        pthread_rwlock_unlock(&sink_lock);
        emit("info", as_json ? NULL : msg, as_json ? msg : NULL);
        return;
    }
    pthread_rwlock_unlock(&sink_lock);
    b = &a->buf[worker];
    clock_gettime(CLOCK_REALTIME, &now);
    pthread_mutex_lock(&b->mu);
    if (now.tv_sec != b->sec) { /* the timestamp's date part, once a second */
        struct tm tm;
        gmtime_r(&now.tv_sec, &tm);
        strftime(b->stamp, sizeof b->stamp, "%Y-%m-%dT%H:%M:%S", &tm);
        b->sec = now.tv_sec;
    }
    /* the line emit() would write: timestamp and level, then the message */
    put_str(line, &o, as_json ? "{\"time\":\"" : "", 16);
    put_str(line, &o, b->stamp, 24);
    line[o++] = '.';
    put_uint(line, &o, (unsigned long long)(now.tv_nsec / 1000000), 3);
    put_str(line, &o, as_json ? "Z\",\"level\":\"info\"," : "Z [info] ", 32);
    memcpy(line + o, msg, mlen);
    o += mlen;
    if (as_json) line[o++] = '}';
    line[o++] = '\n';
    if (b->n + o > sizeof b->data) drain(b);
    memcpy(b->data + b->n, line, o);
    b->n += o;
    pthread_mutex_unlock(&b->mu);
}
