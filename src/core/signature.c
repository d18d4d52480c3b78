/*
 * signature.c - X-Twilio-Signature compute and validate (see signature.h).
 */
#include "signature.h"
#include "form.h"
#include "url.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>

/* Start of the UTF-8 sequence containing byte i (the bytes before i are
 * equal in both strings, so this is the same offset in both). */
static size_t seq_start(const unsigned char *s, size_t i)
{
    while (i > 0 && (s[i] & 0xC0) == 0x80) i--;
    return i;
}

/* Compares two UTF-8 strings in UTF-16 code-unit order (JavaScript's
 * default sort). UTF-8 byte order is code-point order; the two differ only
 * when a character of U+E000..U+FFFF (lead byte 0xEE/0xEF) meets one above
 * U+FFFF (lead byte 0xF0..0xF4), whose surrogates sort first in UTF-16. */
static int cmp_js(const char *a, size_t an, const char *b, size_t bn)
{
    const unsigned char *x = (const unsigned char *)a, *y = (const unsigned char *)b;
    size_t n = an < bn ? an : bn, i, s;
    for (i = 0; i < n && x[i] == y[i]; i++) {}
    if (i == n) return an < bn ? -1 : an > bn;
    s = seq_start(x, i);
    if (x[s] != y[s]) {
        int xa = x[s] >= 0xF0, ya = y[s] >= 0xF0;
        int xe = x[s] == 0xEE || x[s] == 0xEF, ye = y[s] == 0xEE || y[s] == 0xEF;
        if (xa && ye) return -1;
        if (xe && ya) return 1;
    }
    return x[i] < y[i] ? -1 : 1;
}

static int cmp_param(const void *pa, const void *pb)
{
    const tl_param *a = *(const tl_param *const *)pa, *b = *(const tl_param *const *)pb;
    int c = cmp_js(a->key, a->key_len, b->key, b->key_len);
    return c ? c : cmp_js(a->value, a->value_len, b->value, b->value_len);
}

/* Builds the parameter part of the string to sign (everything after the
 * URL) into a malloc'd buffer. Returns NULL on allocation failure. */
static char *params_suffix(const tl_param *params, size_t n, size_t *out_len)
{
    const tl_param *stack_idx[32], **idx = stack_idx;
    size_t i, total = 0, o = 0;
    char *buf;
    if (n > 32) {
        idx = malloc(n * sizeof *idx);
        if (!idx) return NULL;
    }
    for (i = 0; i < n; i++) {
        idx[i] = &params[i];
        total += params[i].key_len + params[i].value_len;
    }
    qsort(idx, n, sizeof *idx, cmp_param);
    buf = malloc(total + 1);
    if (buf) {
        for (i = 0; i < n; i++) {
            if (i > 0 && cmp_param(&idx[i - 1], &idx[i]) == 0) continue; /* distinct values */
            memcpy(buf + o, idx[i]->key, idx[i]->key_len);
            o += idx[i]->key_len;
            memcpy(buf + o, idx[i]->value, idx[i]->value_len);
            o += idx[i]->value_len;
        }
    }
    if (idx != stack_idx) free(idx);
    *out_len = o;
    return buf;
}

/* base64(HMAC-SHA1(token, url + suffix)) into out; `work` has room for
 * url_len + suffix_len bytes. */
static void sign_into(const char *token, size_t token_len, const char *url, size_t url_len,
                      const char *suffix, size_t suffix_len, char *work,
                      char out[TL_SIG_LEN + 1])
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    memcpy(work, url, url_len);
    memcpy(work + url_len, suffix, suffix_len);
    HMAC(EVP_sha1(), token, (int)token_len, (const unsigned char *)work, url_len + suffix_len,
         mac, &mac_len);
    EVP_EncodeBlock((unsigned char *)out, mac, (int)mac_len);
}

int tl_sig_compute(const char *token, size_t token_len, const char *url, size_t url_len,
                   const tl_param *params, size_t n, char out[TL_SIG_LEN + 1])
{
    size_t slen;
    char *suffix, *work;
    if (token_len == 0) return TL_SIG_EKEY;
    suffix = params_suffix(params, n, &slen);
    if (!suffix) return TL_SIG_ENOMEM;
    work = malloc(url_len + slen + 1);
    if (!work) {
        free(suffix);
        return TL_SIG_ENOMEM;
    }
    sign_into(token, token_len, url, url_len, suffix, slen, work, out);
    free(suffix);
    free(work);
    return 0;
}

void tl_sha256_hex(const void *data, size_t len, char out[65])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[SHA256_DIGEST_LENGTH];
    int i;
    SHA256(data, len, md);
    for (i = 0; i < SHA256_DIGEST_LENGTH; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[64] = 0;
}

/* First value of bodySHA256 in the URL's query, decoded as a form field
 * (what URLSearchParams.get returns). */
typedef struct {
    char value[65];
    int found;
} body_hash_lookup;

static int find_body_hash(void *ud, const char *k, size_t kl, const char *v, size_t vl)
{
    body_hash_lookup *b = ud;
    if (kl == 10 && memcmp(k, "bodySHA256", 10) == 0) {
        b->found = 1;
        if (vl > 64) vl = 0; /* cannot match; keep it empty */
        memcpy(b->value, v, vl);
        b->value[vl] = 0;
        return 1; /* stop */
    }
    return 0;
}

static int body_hash_ok(const char *url, size_t url_len, const char *body, size_t body_len,
                        int *found)
{
    body_hash_lookup b = { { 0 }, 0 };
    const char *q = memchr(url, '?', url_len), *end;
    char want[65], *scratch;
    size_t qlen;
    *found = 0;
    if (!q) return 0;
    q++;
    end = memchr(q, '#', url_len - (size_t)(q - url));
    qlen = end ? (size_t)(end - q) : url_len - (size_t)(q - url);
    scratch = malloc(qlen + 1);
    if (!scratch) return -1;
    tl_form_decode(q, qlen, scratch, find_body_hash, &b, NULL);
    free(scratch);
    *found = b.found;
    if (!b.found) return 0;
    tl_sha256_hex(body, body_len, want);
    return strlen(b.value) == 64 && CRYPTO_memcmp(want, b.value, 64) == 0;
}

int tl_sig_validate(const char *token, size_t token_len, const char *url, size_t url_len,
                    const tl_param *params, size_t n, const char *sig, size_t sig_len,
                    const char *body, size_t body_len)
{
    size_t slen = 0, cap = TL_URL_MAX_GROWTH(url_len);
    char *suffix, *work, *cand, *norm;
    char got[TL_SIG_LEN + 1];
    long cl, nl;
    int pass, rc = TL_SIG_MISMATCH;

    if (token_len == 0) return TL_SIG_EKEY;
    if (sig_len == 0) return TL_SIG_MISSING;
    if (body) n = 0; /* JSON: the URL alone is signed */
    suffix = params_suffix(params, n, &slen);
    if (!suffix) return TL_SIG_ENOMEM;
    /* work = candidate URL + suffix; cand and norm hold URL spellings */
    work = malloc(cap + slen + 1);
    cand = malloc(cap);
    norm = malloc(cap);
    if (!work || !cand || !norm) {
        rc = TL_SIG_ENOMEM;
        goto out;
    }
    nl = -1;
    for (pass = 0; pass < 6 && rc == TL_SIG_MISMATCH; pass++) {
        const char *base = url;
        size_t base_len = url_len;
        if (pass >= 2) {
            if (pass == 2) nl = tl_url_normalize(url, url_len, norm, cap);
            if (nl < 0) break; /* not an http(s) URL: no normalised spellings */
            base = norm;
            base_len = (size_t)nl;
        }
        cl = (pass & 1) ? tl_url_add_port(base, base_len, cand, cap)
                        : tl_url_remove_port(base, base_len, cand, cap);
        if (cl >= 0 && pass >= 4) {
            char *tmp = malloc(cap);
            if (!tmp) {
                rc = TL_SIG_ENOMEM;
                break;
            }
            memcpy(tmp, cand, (size_t)cl);
            cl = tl_url_legacy_query(tmp, (size_t)cl, cand, cap);
            free(tmp);
        }
        if (cl < 0) continue;
        sign_into(token, token_len, cand, (size_t)cl, suffix, slen, work, got);
        if (sig_len == TL_SIG_LEN && CRYPTO_memcmp(got, sig, TL_SIG_LEN) == 0) rc = TL_SIG_VALID;
    }
    if (rc == TL_SIG_VALID && body) {
        int found;
        int ok = body_hash_ok(url, url_len, body, body_len, &found);
        if (ok < 0) rc = TL_SIG_ENOMEM;
        else if (!found) rc = TL_SIG_NO_BODY_HASH;
        else if (!ok) rc = TL_SIG_BODY_HASH_MISMATCH;
    }
out:
    free(suffix);
    free(work);
    free(cand);
    free(norm);
    return rc;
}

const char *tl_sig_reason(int code)
{
    switch (code) {
    case TL_SIG_VALID: return "valid";
    case TL_SIG_MISSING: return "missing X-Twilio-Signature";
    case TL_SIG_MISMATCH: return "signature does not match";
    case TL_SIG_NO_BODY_HASH: return "body given but the URL has no bodySHA256";
    case TL_SIG_BODY_HASH_MISMATCH: return "body does not match bodySHA256";
    case TL_SIG_ENOMEM: return "out of memory";
    case TL_SIG_EKEY: return "empty auth token";
    }
    return "unknown";
}
