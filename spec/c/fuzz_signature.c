/*
 * fuzz_signature.c - libFuzzer target for the X-Twilio-Signature string to
 * sign and its HMAC (src/core/signature.c).
 *
 * The input is a URL, a newline, then a form body (decoded with
 * tl_form_decode). The signature must not depend on the order of the
 * parameters; must equal, for parameters of plain ASCII, OpenSSL's
 * one-shot HMAC-SHA1 over the string Twilio's helper libraries sign (the
 * URL, then each distinct key+value pair in sorted order), built here
 * independently; must validate; and must stop validating with any byte
 * of it changed.
 */
#include "../../src/core/form.h"
#include "../../src/core/signature.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define TOKEN "12345678901234567890123456789012"
#define MAXP 64

typedef struct {
    tl_param p[MAXP];
    char *store[MAXP];
    size_t n;
} plist;

static int collect(void *ud, const char *k, size_t kl, const char *v, size_t vl)
{
    plist *l = ud;
    char *s;
    if (l->n == MAXP) return 1;
    s = malloc(kl + vl + 1);
    memcpy(s, k, kl);
    memcpy(s + kl, v, vl);
    l->store[l->n] = s;
    l->p[l->n].key = s;
    l->p[l->n].key_len = kl;
    l->p[l->n].value = s + kl;
    l->p[l->n].value_len = vl;
    l->n++;
    return 0;
}

static int bytes_cmp(const char *a, size_t an, const char *b, size_t bn)
{
    int c = memcmp(a, b, an < bn ? an : bn);
    return c ? c : (an > bn) - (an < bn);
}

static int ref_cmp(const void *x, const void *y)
{
    const tl_param *a = x, *b = y;
    int c = bytes_cmp(a->key, a->key_len, b->key, b->key_len);
    return c ? c : bytes_cmp(a->value, a->value_len, b->value, b->value_len);
}

static int ascii(const plist *l)
{
    size_t i, j;
    for (i = 0; i < l->n; i++) {
        for (j = 0; j < l->p[i].key_len; j++)
            if ((unsigned char)l->p[i].key[j] >= 0x80) return 0;
        for (j = 0; j < l->p[i].value_len; j++)
            if ((unsigned char)l->p[i].value[j] >= 0x80) return 0;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    size_t ulen = nl ? (size_t)(nl - data) : size, blen = nl ? size - ulen - 1 : 0, i;
    char *url = malloc(ulen ? ulen : 1), *body = malloc(blen ? blen : 1), *scratch = malloc(blen ? blen : 1);
    char sig[TL_SIG_LEN + 1], sig2[TL_SIG_LEN + 1];
    plist l;
    tl_param rev[MAXP];
    l.n = 0;
    if (ulen) memcpy(url, data, ulen);
    if (blen) memcpy(body, nl + 1, blen);
    if (tl_form_decode(body, blen, scratch, collect, &l, NULL) != TL_FORM_OK) goto out;
    if (tl_sig_compute(TOKEN, sizeof TOKEN - 1, url, ulen, l.p, l.n, sig) != 0) abort();
    for (i = 0; i < l.n; i++) rev[i] = l.p[l.n - 1 - i];
    if (tl_sig_compute(TOKEN, sizeof TOKEN - 1, url, ulen, rev, l.n, sig2) != 0 || strcmp(sig, sig2) != 0)
        abort(); /* depends on the parameters' order */
    if (ascii(&l)) { /* for ASCII, JavaScript's UTF-16 order is byte order */
        tl_param sorted[MAXP];
        size_t total = ulen, o;
        unsigned char mac[20];
        unsigned int maclen = 0;
        char *msg, b64[64];
        memcpy(sorted, l.p, l.n * sizeof *sorted);
        qsort(sorted, l.n, sizeof *sorted, ref_cmp);
        for (i = 0; i < l.n; i++) total += sorted[i].key_len + sorted[i].value_len;
        msg = malloc(total ? total : 1);
        memcpy(msg, url, ulen);
        o = ulen;
        for (i = 0; i < l.n; i++) {
            if (i && ref_cmp(&sorted[i - 1], &sorted[i]) == 0) continue; /* a repeated pair signs once */
            memcpy(msg + o, sorted[i].key, sorted[i].key_len);
            o += sorted[i].key_len;
            memcpy(msg + o, sorted[i].value, sorted[i].value_len);
            o += sorted[i].value_len;
        }
        HMAC(EVP_sha1(), TOKEN, sizeof TOKEN - 1, (unsigned char *)msg, o, mac, &maclen);
        EVP_EncodeBlock((unsigned char *)b64, mac, (int)maclen);
        if (strcmp(b64, sig) != 0) abort(); /* not the HMAC of the string Twilio signs */
        free(msg);
    }
    if (tl_sig_validate(TOKEN, sizeof TOKEN - 1, url, ulen, l.p, l.n, sig, TL_SIG_LEN, NULL, 0) != TL_SIG_VALID)
        abort();
    for (i = 0; i < TL_SIG_LEN; i += 7) {
        char bad[TL_SIG_LEN + 1];
        memcpy(bad, sig, sizeof bad);
        bad[i] = bad[i] == 'A' ? 'B' : 'A';
        if (tl_sig_validate(TOKEN, sizeof TOKEN - 1, url, ulen, l.p, l.n, bad, TL_SIG_LEN, NULL, 0) == TL_SIG_VALID)
            abort(); /* a changed signature still validates */
    }
out:
    for (i = 0; i < l.n; i++) free(l.store[i]);
    free(url);
    free(body);
    free(scratch);
    return 0;
}
