/*
 * form.h - application/x-www-form-urlencoded decode and encode.
 *
 * Follows the WHATWG URL Standard's "application/x-www-form-urlencoded
 * parser" (https://url.spec.whatwg.org/#urlencoded-parsing) with one
 * deliberate difference: a '%' that does not start a valid two-hex-digit
 * escape is an error (TL_FORM_EBADESCAPE) instead of being kept literally,
 * because Twilio never sends one and a silent pass-through would let a
 * mangled body reach the signature check and the rules.
 *
 * No Lua here: callers pass buffers and get status codes.
 */
#ifndef TELUA_FORM_H
#define TELUA_FORM_H

#include <stddef.h>

enum {
    TL_FORM_OK = 0,
    TL_FORM_EBADESCAPE = -1   /* '%' not followed by two hex digits */
};

/*
 * Called once per name/value pair, in the order they appear. Both buffers
 * are decoded and not NUL-terminated; they point into the caller's scratch
 * buffer, each pair after the one before, so they stay valid as long as
 * it does. A non-zero return stops decoding and is returned by
 * tl_form_decode().
 */
typedef int (*tl_form_emit)(void *ud, const char *key, size_t key_len,
                            const char *value, size_t value_len);

/*
 * Decodes `len` bytes of `src`. `scratch` must hold at least `len` bytes
 * (a decoded pair is never longer than its source, so all of them fit). Empty sequences between
 * '&' are skipped; a sequence without '=' is a key with an empty value;
 * '+' is a space. Returns TL_FORM_OK, TL_FORM_EBADESCAPE (and the byte
 * offset of the bad '%' in *err_pos when err_pos is not NULL), or the
 * emitter's non-zero return.
 */
int tl_form_decode(const char *src, size_t len, char *scratch,
                   tl_form_emit emit, void *ud, size_t *err_pos);

/*
 * Percent-encodes one name or value the way HTML forms and Twilio's Python
 * helper do: ASCII letters, digits and "*-._" stay, space becomes '+',
 * every other byte becomes %XX (upper-case hex). `dst` must hold 3 * len
 * bytes. Returns the number of bytes written.
 */
size_t tl_form_encode(const char *src, size_t len, char *dst);

#endif
