/*
 * log.c - see log.h.
 */
#include "log.h"

#include <pthread.h>
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
static size_t json_str(const char *s, char *out, size_t outlen)
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
        o += json_str(msg, json + o, sizeof json - o - 64);
        if (id) snprintf(json + o, sizeof json - o, "\",\"request_id\":\"%s\"", id);
        else snprintf(json + o, sizeof json - o, "\"");
        emit(level, NULL, json);
    } else {
        if (id) snprintf(text, sizeof text, "[%s] %s", id, msg);
        emit(level, id ? text : msg, NULL);
    }
}

void tl_log_access(const char *method, const char *path, unsigned status, double seconds, const char *rule,
                   const char *kind, const char *id, int generation)
{
    char p[700], r[700], m[64], line[2000];
    if (atomic_load(&json_lines)) {
        json_str(method, m, sizeof m);
        json_str(path, p, sizeof p);
        json_str(rule, r, sizeof r);
        snprintf(line, sizeof line,
                 "\"msg\":\"access\",\"method\":\"%s\",\"path\":\"%s\",\"status\":%u,\"duration_ms\":%.3f,"
                 "\"rule\":\"%s\",\"kind\":\"%s\",\"request_id\":\"%s\",\"generation\":%d",
                 m, p, status, seconds * 1e3, r, kind, id, generation);
        emit("info", NULL, line);
    } else {
        snprintf(line, sizeof line, "[%s] access %.15s %.600s %u %.3fms rule=%.600s kind=%s generation=%d", id,
                 method, path, status, seconds * 1e3, rule, kind, generation);
        emit("info", line, NULL);
    }
}
