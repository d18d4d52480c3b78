/*
 * body.c - see body.h.
 */
#include "body.h"

#include <stdlib.h>
#include <string.h>

void tl_body_free(tl_body *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

int tl_body_append(tl_body *b, const char *data, size_t n, size_t max)
{
    if (b->too_large) return 0;
    if (n > max || b->len > max - n) {
        b->too_large = 1;
        tl_body_free(b);
        return 0;
    }
    if (b->len + n > b->cap) {
        size_t nc = b->cap ? b->cap : 1024;
        char *nd;
        while (nc < b->len + n) nc *= 2;
        if (nc > max) nc = max;
        nd = realloc(b->data, nc);
        if (!nd) {
            tl_body_free(b);
            return -1;
        }
        b->data = nd;
        b->cap = nc;
    }
    memcpy(b->data + b->len, data, n);
    b->len += n;
    return 0;
}
