/*
 * e164.h - phone numbers to E.164 with libphonenumber's numbering-plan
 * metadata (src/core/e164_meta.c, generated from google-libphonenumber).
 *
 * Follows libphonenumber's PhoneNumberUtil (google/libphonenumber,
 * java/.../PhoneNumberUtil.java and javascript/.../phonenumberutil.js):
 * parse (RFC 3966 tel: URIs and phone-context, leading text, extensions,
 * vanity letters, Unicode digits, +, the default region's international
 * prefix, a calling code written without +, the trunk prefix and the
 * national-prefix-for-parsing rules), isPossibleNumber (lengths, with
 * local-only ones), isValidNumber, getNumberType and getRegionCodeForNumber.
 * The national significant number is kept as a digit string, so leading
 * zeros and 17-digit numbers survive.
 *
 * Thread-safe: the metadata's patterns are compiled once, on first use.
 */
#ifndef TELUA_E164_H
#define TELUA_E164_H

#include <stddef.h>

/* parse results: libphonenumber's error kinds */
enum {
    TL_E164_OK = 0,
    TL_E164_INVALID_COUNTRY_CODE = 1, /* no usable calling code and no valid default region */
    TL_E164_NOT_A_NUMBER = 2,         /* not a phone number at all */
    TL_E164_TOO_SHORT_AFTER_IDD = 3,  /* an international prefix with too little after it */
    TL_E164_TOO_SHORT_NSN = 4,        /* fewer than 2 national digits */
    TL_E164_TOO_LONG = 5,             /* over 250 characters, or over 17 national digits */
    TL_E164_ENOMEM = -1
};

/* number types, numbered as libphonenumber's PhoneNumberType */
enum {
    TL_E164_T_FIXED_LINE = 0,
    TL_E164_T_MOBILE = 1,
    TL_E164_T_FIXED_LINE_OR_MOBILE = 2,
    TL_E164_T_TOLL_FREE = 3,
    TL_E164_T_PREMIUM_RATE = 4,
    TL_E164_T_SHARED_COST = 5,
    TL_E164_T_VOIP = 6,
    TL_E164_T_PERSONAL_NUMBER = 7,
    TL_E164_T_PAGER = 8,
    TL_E164_T_UAN = 9,
    TL_E164_T_VOICEMAIL = 10,
    TL_E164_T_UNKNOWN = -1
};

#define TL_E164_MAX_INPUT 250 /* UTF-16 code units, as libphonenumber counts */

typedef struct tl_e164_number {
    int country_code;
    char national[18];   /* national significant number, 2..17 ASCII digits */
    char e164[22];       /* "+" country code national number */
    char extension[84];  /* as written (up to 20 digits, any script), "" if none */
    char region[4];      /* "US", "001" for non-geographic codes, "" if none fits */
    int possible;        /* isPossibleNumber: length fits (local-only lengths count) */
    int valid;           /* isValidNumber */
    int type;            /* TL_E164_T_* */
} tl_e164_number;

/*
 * Parses `input` (UTF-8, len bytes) as dialled or written in
 * `default_region` (ISO 3166 alpha-2, any case; NULL or unknown means the
 * number must start with +). Returns TL_E164_OK with *out filled, or an
 * error above (also for ill-formed UTF-8: TL_E164_NOT_A_NUMBER).
 */
int tl_e164_parse(const char *input, size_t len, const char *default_region, tl_e164_number *out);

/* "INVALID_COUNTRY_CODE", ... ; "OK" for 0 */
const char *tl_e164_error_name(int code);
/* Plain-language message for an error code. */
const char *tl_e164_error_message(int code);
/* "FIXED_LINE", ..., "UNKNOWN" */
const char *tl_e164_type_name(int type);

/* Whether a region code (any case) is one the metadata knows. */
int tl_e164_region_known(const char *region);

/* Forces the one-time pattern compilation now; returns how many metadata
 * patterns failed to compile (0 for a sound build). */
int tl_e164_init(void);

#endif
