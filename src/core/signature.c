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

/* HMAC-SHA1 (RFC 2104) with the key's padded blocks hashed once: the inner
 * and outer digest states are kept and copied per message, so a message
 * costs two SHA-1 finals and no key schedule or algorithm fetch. Read-only
 * after tl_sig_key_new, so one key serves many threads. */
struct tl_sig_key {
    EVP_MD *md;
    EVP_MD_CTX *inner, *outer;
};

void tl_sig_key_free(tl_sig_key *k)
{
    if (!k) return;
    EVP_MD_CTX_free(k->inner);
    EVP_MD_CTX_free(k->outer);
    EVP_MD_free(k->md);
    free(k);
}

tl_sig_key *tl_sig_key_new(const char *token, size_t token_len)
{
    unsigned char block[64], ipad[64], opad[64];
    unsigned int bl = 0;
    size_t i;
    tl_sig_key *k;
    if (token_len == 0 || !(k = calloc(1, sizeof *k))) return NULL;
    memset(block, 0, sizeof block);
    k->md = EVP_MD_fetch(NULL, "SHA1", NULL);
    k->inner = EVP_MD_CTX_new();
    k->outer = EVP_MD_CTX_new();
    if (!k->md || !k->inner || !k->outer) goto fail;
    if (token_len > sizeof block) { /* longer keys are hashed first */
        if (!EVP_Digest(token, token_len, block, &bl, k->md, NULL)) goto fail;
    } else {
        memcpy(block, token, token_len);
    }
    for (i = 0; i < sizeof block; i++) {
        ipad[i] = block[i] ^ 0x36;
        opad[i] = block[i] ^ 0x5c;
    }
    if (!EVP_DigestInit_ex(k->inner, k->md, NULL) || !EVP_DigestUpdate(k->inner, ipad, 64) ||
        !EVP_DigestInit_ex(k->outer, k->md, NULL) || !EVP_DigestUpdate(k->outer, opad, 64))
        goto fail;
    OPENSSL_cleanse(block, sizeof block);
    OPENSSL_cleanse(ipad, sizeof ipad);
    OPENSSL_cleanse(opad, sizeof opad);
    return k;
fail:
    OPENSSL_cleanse(block, sizeof block);
    OPENSSL_cleanse(ipad, sizeof ipad);
    OPENSSL_cleanse(opad, sizeof opad);
    tl_sig_key_free(k);
    return NULL;
}

/* base64(HMAC-SHA1(key, url + suffix)) into out. Returns 0 or
 * TL_SIG_ENOMEM (OpenSSL could not allocate a digest context). */
static int sign_into(const tl_sig_key *k, const char *url, size_t url_len, const char *suffix,
                     size_t suffix_len, char out[TL_SIG_LEN + 1])
{
    unsigned char ih[EVP_MAX_MD_SIZE], mac[EVP_MAX_MD_SIZE];
    unsigned int il = 0, ml = 0;
    int ok;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    ok = c && EVP_MD_CTX_copy_ex(c, k->inner) && EVP_DigestUpdate(c, url, url_len) &&
         EVP_DigestUpdate(c, suffix, suffix_len) && EVP_DigestFinal_ex(c, ih, &il) &&
         EVP_MD_CTX_copy_ex(c, k->outer) && EVP_DigestUpdate(c, ih, il) &&
         EVP_DigestFinal_ex(c, mac, &ml);
    EVP_MD_CTX_free(c);
    if (!ok) return TL_SIG_ENOMEM;
    EVP_EncodeBlock((unsigned char *)out, mac, (int)ml);
    return 0;
}

int tl_sig_compute_key(const tl_sig_key *key, const char *url, size_t url_len,
                       const tl_param *params, size_t n, char out[TL_SIG_LEN + 1])
{
    size_t slen;
    char *suffix;
    int rc;
    if (!key) return TL_SIG_EKEY;
    suffix = params_suffix(params, n, &slen);
    if (!suffix) return TL_SIG_ENOMEM;
    rc = sign_into(key, url, url_len, suffix, slen, out);
    free(suffix);
    return rc;
}

int tl_sig_compute(const char *token, size_t token_len, const char *url, size_t url_len,
                   const tl_param *params, size_t n, char out[TL_SIG_LEN + 1])
{
    tl_sig_key *k;
    int rc;
    if (token_len == 0) return TL_SIG_EKEY;
    if (!(k = tl_sig_key_new(token, token_len))) return TL_SIG_ENOMEM;
    rc = tl_sig_compute_key(k, url, url_len, params, n, out);
    tl_sig_key_free(k);
    return rc;
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
    tl_sig_key *k;
    int rc;
    if (token_len == 0) return TL_SIG_EKEY;
    if (sig_len == 0) return TL_SIG_MISSING;
    if (!(k = tl_sig_key_new(token, token_len))) return TL_SIG_ENOMEM;
    rc = tl_sig_validate_key(k, url, url_len, params, n, sig, sig_len, body, body_len);
    tl_sig_key_free(k);
    return rc;
}

int tl_sig_validate_key(const tl_sig_key *key, const char *url, size_t url_len,
                        const tl_param *params, size_t n, const char *sig, size_t sig_len,
                        const char *body, size_t body_len)
{
    size_t slen = 0, cap = TL_URL_MAX_GROWTH(url_len);
    char *suffix, *cand, *norm;
    char got[TL_SIG_LEN + 1];
    long cl, nl;
    int pass, rc = TL_SIG_MISMATCH;

    if (!key) return TL_SIG_EKEY;
    if (sig_len == 0) return TL_SIG_MISSING;
    if (body) n = 0; /* JSON: the URL alone is signed */
    suffix = params_suffix(params, n, &slen);
    if (!suffix) return TL_SIG_ENOMEM;
    /* cand and norm hold URL spellings */
    cand = malloc(cap);
    norm = malloc(cap);
    if (!cand || !norm) {
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
        if (sign_into(key, cand, (size_t)cl, suffix, slen, got) != 0) {
            rc = TL_SIG_ENOMEM;
            break;
        }
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
