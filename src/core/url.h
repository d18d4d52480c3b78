/*
 * url.h - the URL rewrites a Twilio signature validator tries.
 *
 * Twilio's back end is inconsistent about ports and about how it escapes
 * query strings, so the official validators try several spellings of the
 * URL Twilio requested. These functions build them exactly as the official
 * `twilio` npm package 6.2.0 does (src/webhooks/webhooks.ts):
 *
 *   tl_url_remove_port / tl_url_add_port   string surgery on the authority
 *                                          (userinfo and [IPv6] aware)
 *   tl_url_normalize                       WHATWG URL serialisation, what
 *                                          `new URL(u).toString()` returns,
 *                                          for http and https URLs
 *   tl_url_legacy_query                    the query re-encoded by Node's
 *                                          legacy querystring parse+stringify
 *
 * All write into `dst` (capacity `cap`) and return the length written, or
 * -1 when the input cannot be rewritten (not a URL of that form, or `dst`
 * too small). Callers size `dst` with TL_URL_MAX_GROWTH(len).
 */
#ifndef TELUA_URL_H
#define TELUA_URL_H

#include <stddef.h>

/* Worst case output size for an input of n bytes: every byte may become
 * %XX, plus room for an added port (":65535") and a trailing slash. */
#define TL_URL_MAX_GROWTH(n) (3 * (n) + 16)

long tl_url_remove_port(const char *url, size_t len, char *dst, size_t cap);
long tl_url_add_port(const char *url, size_t len, char *dst, size_t cap);
long tl_url_normalize(const char *url, size_t len, char *dst, size_t cap);
long tl_url_legacy_query(const char *url, size_t len, char *dst, size_t cap);

#endif
