/*
 * signature.h - X-Twilio-Signature: compute and validate.
 *
 * The algorithm of Twilio's helper libraries (twilio-node 6.2.0
 * src/webhooks/webhooks.ts, twilio-python request_validator.py):
 *
 *   data = URL as requested, then for each distinct key in sorted order,
 *          for each distinct value of that key in sorted order: key + value
 *   signature = base64(HMAC-SHA1(auth_token, data))
 *
 * Keys and values sort as JavaScript's Array.prototype.sort does (UTF-16
 * code units), which equals byte order of UTF-8 except that characters
 * above U+FFFF sort before U+E000..U+FFFF.
 *
 * Validation tries the URL spellings twilio-node 6.2.0 tries (see url.h):
 * as received without and with the default port, then WHATWG-normalised
 * without and with it, then those two with the query re-encoded the way
 * Node's legacy querystring does. Any match is valid. Comparison is
 * constant-time (CRYPTO_memcmp).
 *
 * JSON bodies: Twilio adds bodySHA256=<hex SHA-256 of the body> to the URL
 * query and signs the URL with no parameters; pass the raw body and the
 * hash is checked as well.
 */
#ifndef TELUA_SIGNATURE_H
#define TELUA_SIGNATURE_H

#include <stddef.h>

/* One decoded form field; buffers need not be NUL-terminated. */
typedef struct tl_param {
    const char *key;
    size_t key_len;
    const char *value;
    size_t value_len;
} tl_param;

#define TL_SIG_LEN 28 /* base64 of a 20-byte HMAC-SHA1, with padding */

enum {
    TL_SIG_VALID = 0,
    TL_SIG_MISSING = 1,           /* empty signature header */
    TL_SIG_MISMATCH = 2,          /* no URL spelling produced this signature */
    TL_SIG_NO_BODY_HASH = 3,      /* a body was given but the URL has no bodySHA256 */
    TL_SIG_BODY_HASH_MISMATCH = 4,/* signature fine, body differs from bodySHA256 */
    TL_SIG_ENOMEM = -1,
    TL_SIG_EKEY = -2              /* empty auth token */
};

/*
 * Computes the signature of `url` and `params` under `token` into `out`
 * (TL_SIG_LEN characters plus a NUL). Returns 0, TL_SIG_ENOMEM or
 * TL_SIG_EKEY.
 */
int tl_sig_compute(const char *token, size_t token_len,
                   const char *url, size_t url_len,
                   const tl_param *params, size_t n, char out[TL_SIG_LEN + 1]);

/*
 * Validates `sig` for a request. For a form-encoded request pass its
 * decoded fields in `params` and body == NULL. For any other body (JSON)
 * pass the raw body; `params` is then ignored and the URL's bodySHA256 is
 * checked against it. Returns one of the TL_SIG_* codes above.
 */
int tl_sig_validate(const char *token, size_t token_len,
                    const char *url, size_t url_len,
                    const tl_param *params, size_t n,
                    const char *sig, size_t sig_len,
                    const char *body, size_t body_len);

/* Lower-case hex SHA-256 of data into out (64 characters plus a NUL). */
void tl_sha256_hex(const void *data, size_t len, char out[65]);

/* A short English reason for a TL_SIG_* code; never contains secrets. */
/*
 * A prepared signing key: HMAC-SHA1's padded key blocks hashed once, for a
 * server that checks many requests under one auth token. Immutable after
 * creation, so threads may share one. tl_sig_key_new returns NULL for an
 * empty token or when OpenSSL cannot allocate; the token is not kept.
 */
typedef struct tl_sig_key tl_sig_key;
tl_sig_key *tl_sig_key_new(const char *token, size_t token_len);
void tl_sig_key_free(tl_sig_key *key);

/* tl_sig_compute / tl_sig_validate with a prepared key (TL_SIG_EKEY for NULL). */
int tl_sig_compute_key(const tl_sig_key *key, const char *url, size_t url_len,
                       const tl_param *params, size_t n, char out[TL_SIG_LEN + 1]);
int tl_sig_validate_key(const tl_sig_key *key, const char *url, size_t url_len,
                        const tl_param *params, size_t n, const char *sig, size_t sig_len,
                        const char *body, size_t body_len);

const char *tl_sig_reason(int code);

#endif
