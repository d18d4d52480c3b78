/*
 * sigbench.c - X-Twilio-Signature validations per second on one core, for
 * a typical 8-parameter inbound SMS webhook, next to raw HMAC-SHA1 over the
 * same string-to-sign (OpenSSL's one-shot HMAC(), the floor any validator
 * pays). Prints both rates and their ratio.
 */
#include "../src/core/signature.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    static const tl_param p[] = {
        { "MessageSid", 10, "SM0123456789abcdef0123456789abcdef", 34 },
        { "AccountSid", 10, "AC0123456789abcdef0123456789abcdef", 34 },
        { "From", 4, "+14155550199", 12 },
        { "To", 2, "+14155550100", 12 },
        { "Body", 4, "Hello there, is my order 1234 on its way?", 41 },
        { "NumMedia", 8, "0", 1 },
        { "NumSegments", 11, "1", 1 },
        { "SmsStatus", 9, "received", 8 },
    };
    const char *token = "a1b2c3d4e5f60718293a4b5c6d7e8f90";
    const char *url = "https://telua.example.com/sms/incoming";
    long n = argc > 1 ? atol(argv[1]) : 1000000, i;
    char sig[TL_SIG_LEN + 1], data[1024];
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int ml;
    size_t dl = 0, k;
    double t0, t_val, t_key, t_raw;
    tl_sig_key *key = tl_sig_key_new(token, strlen(token));
    volatile int sink = 0;
    /* the string to sign (keys in sorted order), built once for the raw loop */
    tl_sig_compute(token, strlen(token), url, strlen(url), p, 8, sig);
    dl = strlen(url);
    memcpy(data, url, dl);
    {
        const char *keys[] = { "AccountSid", "Body", "From", "MessageSid", "NumMedia", "NumSegments", "SmsStatus", "To" };
        for (k = 0; k < 8; k++) {
            size_t j;
            for (j = 0; j < 8; j++)
                if (strcmp(p[j].key, keys[k]) == 0) {
                    memcpy(data + dl, p[j].key, p[j].key_len); dl += p[j].key_len;
                    memcpy(data + dl, p[j].value, p[j].value_len); dl += p[j].value_len;
                }
        }
    }
    t0 = now();
    for (i = 0; i < n; i++)
        sink += tl_sig_validate(token, strlen(token), url, strlen(url), p, 8, sig, TL_SIG_LEN, NULL, 0);
    t_val = now() - t0;
    t0 = now();
    for (i = 0; i < n; i++)
        sink += tl_sig_validate_key(key, url, strlen(url), p, 8, sig, TL_SIG_LEN, NULL, 0);
    t_key = now() - t0;
    t0 = now();
    for (i = 0; i < n; i++) {
        HMAC(EVP_sha1(), token, (int)strlen(token), (const unsigned char *)data, dl, mac, &ml);
        sink += mac[0];
    }
    t_raw = now() - t0;
    printf("string to sign: %zu bytes, %ld iterations\n", dl, n);
    printf("raw HMAC-SHA1 (OpenSSL HMAC()):     %10.0f /s\n", n / t_raw);
    printf("tl_sig_validate (8 params, valid):  %10.0f /s\n", n / t_val);
    printf("tl_sig_validate_key (prepared key): %10.0f /s   (the host's path)\n", n / t_key);
    printf("validate / raw time ratio: %.2fx, with a prepared key %.2fx (bar: within 2x)\n",
           t_val / t_raw, t_key / t_raw);
    tl_sig_key_free(key);
    return sink == 42 ? 1 : 0;
}
