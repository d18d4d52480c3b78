/*
 * log.h - the host's log: one line per event on stderr, with a UTC
 * timestamp and a level. Callers never pass secrets (the auth token is
 * never formatted into a message).
 */
#ifndef TELUA_LOG_H
#define TELUA_LOG_H

void tl_log(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
