/*
 * fuzz_form.c - libFuzzer target for the form decoder (src/core/form.c).
 *
 * The input is a request body. Beyond no memory error: a decode that
 * succeeds gives at most one pair per '&'-separated part, and encoding
 * every pair with tl_form_encode and decoding that again gives the same
 * pairs (the round trip the signature check relies on); a failure names
 * a '%' that does not start two hex digits.
 */
#include "../../src/core/form.h"

#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char **k, **v;
    size_t *kl, *vl, n, cap;
} pairs;

static int collect(void *ud, const char *k, size_t kl, const char *v, size_t vl)
{
    pairs *p = ud;
    if (p->n == p->cap) {
        size_t nc = p->cap ? 2 * p->cap : 8;
        p->k = realloc(p->k, nc * sizeof *p->k);
        p->v = realloc(p->v, nc * sizeof *p->v);
        p->kl = realloc(p->kl, nc * sizeof *p->kl);
        p->vl = realloc(p->vl, nc * sizeof *p->vl);
        if (!p->k || !p->v || !p->kl || !p->vl) abort();
        p->cap = nc;
    }
    p->k[p->n] = malloc(kl ? kl : 1);
    p->v[p->n] = malloc(vl ? vl : 1);
    memcpy(p->k[p->n], k, kl);
    memcpy(p->v[p->n], v, vl);
    p->kl[p->n] = kl;
    p->vl[p->n] = vl;
    p->n++;
    return 0;
}

static void release(pairs *p)
{
    size_t i;
    for (i = 0; i < p->n; i++) {
        free(p->k[i]);
        free(p->v[i]);
    }
    free(p->k);
    free(p->v);
    free(p->kl);
    free(p->vl);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *src = malloc(size ? size : 1), *scratch = malloc(size ? size : 1);
    pairs a = { 0 }, b = { 0 };
    size_t pos = 0, parts = 1, i;
    int rc;
    if (size) memcpy(src, data, size);
    rc = tl_form_decode(src, size, scratch, collect, &a, &pos);
    if (rc == TL_FORM_EBADESCAPE) {
        if (pos >= size || src[pos] != '%' ||
            (pos + 2 < size && isxdigit((unsigned char)src[pos + 1]) && isxdigit((unsigned char)src[pos + 2])))
            abort(); /* the reported position is no bad escape */
    } else if (rc != TL_FORM_OK) {
        abort();
    } else {
        char *enc, *scratch2;
        size_t total = 0, o = 0;
        for (i = 0; i < size; i++) parts += src[i] == '&';
        if (a.n > parts) abort();
        for (i = 0; i < a.n; i++) total += 3 * (a.kl[i] + a.vl[i]) + 2;
        enc = malloc(total ? total : 1);
        for (i = 0; i < a.n; i++) {
            if (i) enc[o++] = '&';
            o += tl_form_encode(a.k[i], a.kl[i], enc + o);
            enc[o++] = '=';
            o += tl_form_encode(a.v[i], a.vl[i], enc + o);
        }
        scratch2 = malloc(o ? o : 1);
        if (tl_form_decode(enc, o, scratch2, collect, &b, NULL) != TL_FORM_OK) abort();
        if (b.n != a.n) abort(); /* the round trip lost or added a pair */
        for (i = 0; i < a.n; i++)
            if (a.kl[i] != b.kl[i] || a.vl[i] != b.vl[i] || memcmp(a.k[i], b.k[i], a.kl[i]) ||
                memcmp(a.v[i], b.v[i], a.vl[i]))
                abort(); /* the round trip changed a pair */
        free(enc);
        free(scratch2);
    }
    release(&a);
    release(&b);
    free(src);
    free(scratch);
    return 0;
}
