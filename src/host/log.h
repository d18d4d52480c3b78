/*
 * log.h - the host's log: one line per event on stderr, with a UTC
 * timestamp and a level. Callers never pass secrets (the auth token is
 * never formatted into a message).
 */
#ifndef TELUA_LOG_H
#define TELUA_LOG_H

#include "telua.h"

/* Sends every line to fn(level, message, ud) instead of stderr (NULL:
 * stderr again). Process-wide; safe to call while other threads log. */
void tl_log_set(telua_log_fn fn, void *ud);

void tl_log(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
