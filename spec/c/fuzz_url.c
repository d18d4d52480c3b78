/*
 * fuzz_url.c - libFuzzer target for the URL spellings the signature check
 * tries (src/core/url.c).
 *
 * Each output buffer is a heap block of exactly the documented capacity,
 * so a write past it is an ASan error. Beyond that: a normalised URL is an
 * http(s) URL and normalising it again changes nothing (the WHATWG
 * serialisation is idempotent); removing the port from a URL with the
 * default port added gives the same as removing it from the URL itself.
 */
#include "../../src/core/url.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t cap = TL_URL_MAX_GROWTH(size), cap2;
    char *u = malloc(size ? size : 1), *a = malloc(cap), *b, *c = malloc(cap), *d;
    long na, nb, nc, nd;
    if (size) memcpy(u, data, size);
    na = tl_url_normalize(u, size, a, cap);
    if (na > (long)cap) abort();
    if (na >= 0) {
        if (!((na >= 7 && memcmp(a, "http://", 7) == 0) || (na >= 8 && memcmp(a, "https://", 8) == 0))) abort();
        cap2 = TL_URL_MAX_GROWTH((size_t)na);
        b = malloc(cap2);
        nb = tl_url_normalize(a, (size_t)na, b, cap2);
        if (nb != na || memcmp(a, b, (size_t)na) != 0) abort(); /* not idempotent */
        free(b);
    }
    nc = tl_url_add_port(u, size, c, cap);
    if (nc > (long)cap) abort();
    nd = tl_url_legacy_query(u, size, a, cap);
    if (nd > (long)cap) abort();
    if (nc >= 0) {
        long r1, r2;
        cap2 = TL_URL_MAX_GROWTH((size_t)nc);
        b = malloc(cap2);
        d = malloc(cap2);
        r1 = tl_url_remove_port(c, (size_t)nc, b, cap2);
        r2 = tl_url_remove_port(u, size, d, cap2);
        if (r1 > (long)cap2 || r2 > (long)cap2) abort();
        if (r1 >= 0 && r2 >= 0 && (r1 != r2 || memcmp(b, d, (size_t)r1) != 0)) abort();
        free(b);
        free(d);
    }
    free(u);
    free(a);
    free(c);
    return 0;
}
