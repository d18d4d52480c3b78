/*
 * segments.h - how many SMS segments a message body takes, counted exactly
 * as Twilio's message-segment-calculator (npm sms-segments-calculator
 * 1.3.0) counts, with its tables (segments_tables.c).
 *
 * The rules (3GPP TS 23.038 and 23.040, as the calculator applies them):
 *   - the text is split into grapheme clusters (UAX #29, Unicode 10, as
 *     grapheme-splitter splits; "\r\n" counts as two);
 *   - GSM-7 when every grapheme is one UTF-16 unit of the GSM 03.38 table
 *     (basic: 7 bits; extension \f ^ { } \ [ ~ ] | EUR: 14 bits), else UCS-2
 *     for the whole message (16 bits per UTF-16 unit; a GSM character 16);
 *   - a segment holds 1120 bits (140 octets); once a second one is needed
 *     every segment carries a 48-bit user data header: 160/153 septets,
 *     70/67 units;
 *   - a grapheme never straddles two segments: it moves whole to the next.
 * Smart Encoding (optional) first replaces look-alikes (curly quotes, dashes,
 * ellipsis, odd spaces, ...) with GSM characters, as a Messaging Service
 * with Smart Encoding on does.
 */
#ifndef TELUA_SEGMENTS_H
#define TELUA_SEGMENTS_H

#include <stddef.h>

enum { TL_SEG_AUTO = 0, TL_SEG_GSM7 = 1, TL_SEG_UCS2 = 2 };

enum {
    TL_SEG_OK = 0,
    TL_SEG_EUTF8 = -1,   /* the text is not well-formed UTF-8 (offset in *where) */
    TL_SEG_ENOTGSM = -2, /* GSM-7 was asked for and a grapheme is not in GSM 03.38 */
    TL_SEG_ENOMEM = -3
};

typedef struct tl_seg_result {
    int ucs2;           /* 0: GSM-7, 1: UCS-2 */
    size_t segments;    /* at least 1 (an empty body is one empty segment) */
    size_t characters;  /* GSM-7: septets; UCS-2: grapheme clusters (the calculator's numberOfCharacters) */
    size_t graphemes;   /* grapheme clusters */
    size_t bits;        /* message bits, without user data headers */
} tl_seg_result;

/* Called for each grapheme that is not GSM-7, with its byte offset and
 * length in the text; may be NULL. */
typedef void (*tl_seg_nongsm_fn)(void *ud, size_t offset, size_t len);

/*
 * Counts the segments of `text` (UTF-8, len bytes) in `mode` (TL_SEG_AUTO
 * chooses GSM-7 when it can). Returns TL_SEG_OK, or an error above; for
 * TL_SEG_EUTF8 and TL_SEG_ENOTGSM *where (when not NULL) is the byte offset.
 */
int tl_seg_count(const char *text, size_t len, int mode, tl_seg_result *out, tl_seg_nongsm_fn nongsm,
                 void *ud, size_t *where);

/*
 * Smart Encoding: writes the text with the calculator's replacements into
 * out (room for tl_seg_smart_len bytes) and returns the length written;
 * (size_t)-1 for ill-formed UTF-8.
 */
size_t tl_seg_smart_len(const char *text, size_t len);
size_t tl_seg_smart_encode(const char *text, size_t len, char *out);

#endif
