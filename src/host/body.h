/*
 * body.h - a request body read in chunks, with a byte cap (host and
 * sandbox). Past the cap the bytes are dropped and `too_large` is set, so
 * the caller can still read the rest and answer 413.
 */
#ifndef TELUA_BODY_H
#define TELUA_BODY_H

#include <stddef.h>

typedef struct tl_body {
    char *data;
    size_t len, cap;
    int too_large;
} tl_body;

/* Appends n bytes, growing by doubling up to max. Returns 0, or -1 when
 * memory ran out (the body is then freed and empty). */
int tl_body_append(tl_body *b, const char *data, size_t n, size_t max);

void tl_body_free(tl_body *b);

#endif
