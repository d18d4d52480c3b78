/*
 * log.h - the host's log: one line per event on stderr, with a UTC
 * timestamp and a level, as text or as one JSON object a line. Callers
 * never pass secrets (the auth token is never formatted into a message)
 * nor message bodies.
 */
#ifndef TELUA_LOG_H
#define TELUA_LOG_H

#include "telua.h"

/* Sends every line to fn(level, message, ud) instead of stderr (NULL:
 * stderr again). Process-wide; safe to call while other threads log. */
void tl_log_set(telua_log_fn fn, void *ud);

/* 1: lines are JSON objects ({"time", "level", "msg", and "request_id"
 * when one is set}); 0: text. Process-wide. */
void tl_log_json(int on);

/* The request this thread works for now (NULL: none): its id goes into
 * every line the thread logs until it is cleared. */
void tl_log_request(const char *id);

/* s as the inside of a JSON string into out (cut to fit, never inside an
 * escape; outlen > 7); returns the length written. */
size_t tl_json_escape(const char *s, char *out, size_t outlen);

void tl_log(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The access log: one line per webhook the rules answered, written in
 * batches (as nginx's `access_log ... buffer= flush=`): each worker fills
 * its own buffer, written out when full or at least every
 * TL_ACCESS_FLUSH_MS by the log's flusher thread, so workers never wait
 * on each other for the log file. With a log function set (tl_log_set)
 * each line goes to it at once instead. */
#define TL_ACCESS_FLUSH_MS 200
typedef struct tl_access_log tl_access_log;

/* A log for `workers` workers, with its flusher thread; NULL when out of
 * memory or no thread could start. */
tl_access_log *tl_access_log_new(int workers);

/* Writes out what is buffered, stops the flusher, frees. */
void tl_access_log_free(tl_access_log *a);

/* The access line of one webhook, from worker `worker`'s thread. rule:
 * "file:line" of the handler ("-": none matched); kind: "voice",
 * "messaging", "status", "unmatched"; ns: from the whole request read to
 * the answer. The path is written without its query (which may carry
 * message content). */
void tl_log_access(tl_access_log *a, int worker, const char *method, const char *path, unsigned status, long long ns,
                   const char *rule, const char *kind, const char *id, int generation);

#endif
