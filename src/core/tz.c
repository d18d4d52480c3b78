/*
 * Time zones of numbers and local time from the system's tzdata: see tz.h.
 */
#include "tz.h"
#include "tz_meta.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------
 * the zones of a number */

static int prefix_cmp(const void *key, const void *elem)
{
    return strcmp((const char *)key, ((const tl_tz_prefix *)elem)->prefix);
}

size_t tl_tz_of_number(const char *digits, size_t len, const char **out, size_t cap)
{
    char buf[TL_TZ_PREFIX_MAX + 1];
    if (len > TL_TZ_PREFIX_MAX) len = TL_TZ_PREFIX_MAX;
    for (size_t i = 0; i < len; i++) {
        if (digits[i] < '0' || digits[i] > '9') return 0;
        buf[i] = digits[i];
    }
    for (size_t n = len; n > 0; n--) { /* the longest prefix listed */
        buf[n] = '\0';
        const tl_tz_prefix *p = bsearch(buf, tl_tz_prefixes, tl_tz_prefix_count, sizeof *p, prefix_cmp);
        if (p) {
            size_t a = tl_tz_set_start[p->set], b = tl_tz_set_start[p->set + 1];
            for (size_t i = a; i < b && i - a < cap; i++) out[i - a] = tl_tz_names[tl_tz_set_zones[i]];
            return b - a;
        }
    }
    return 0;
}

const char *tl_tz_source(void) { return TL_TZ_META_SOURCE; }

/* ------------------------------------------------------------------------
 * TZif (RFC 8536) */

typedef struct {
    int32_t utoff;
    uint8_t isdst;
    char abbr[16];
} ttype;

/* one date of a POSIX TZ rule: Jn (kind 'J'), n ('N') or Mm.w.d ('M') */
typedef struct {
    char kind;
    int a, b, c;     /* J/N: day; M: month, week, weekday */
    int32_t time;    /* seconds after local midnight (may be < 0 or > 24 h) */
} rule_date;

struct tl_tz_zone {
    int64_t *trans;
    uint8_t *idx;
    size_t timecnt;
    ttype *types;
    size_t typecnt;
    /* the footer's rule, for instants past the last transition */
    int has_rule, has_dst;
    ttype std, dst;
    rule_date start, end;
};

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const unsigned char *p)
{
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

/* POSIX TZ string parsing (the footer) */

static const char *tz_name(const char *s, char *out)
{
    size_t n = 0;
    if (*s == '<') {
        s++;
        while (*s && *s != '>') {
            if (n < 15) out[n++] = *s;
            s++;
        }
        if (*s != '>' || n < 3) return NULL;
        s++;
    } else {
        while ((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z')) {
            if (n < 15) out[n++] = *s;
            s++;
        }
        if (n < 3) return NULL;
    }
    out[n] = '\0';
    return s;
}

/* [+-]hh[:mm[:ss]] with hh up to max_h; seconds in *out */
static const char *tz_hms(const char *s, int max_h, int32_t *out)
{
    int sign = 1, part[3] = { 0, 0, 0 };
    if (*s == '+' || *s == '-') sign = *s++ == '-' ? -1 : 1;
    for (int i = 0; i < 3; i++) {
        if (i > 0) {
            if (*s != ':') break;
            s++;
        }
        if (*s < '0' || *s > '9') return NULL;
        int v = 0, digits = 0;
        while (*s >= '0' && *s <= '9' && digits < 3) v = v * 10 + (*s++ - '0'), digits++;
        part[i] = v;
    }
    if (part[0] > max_h || part[1] > 59 || part[2] > 59) return NULL;
    *out = sign * (part[0] * 3600 + part[1] * 60 + part[2]);
    return s;
}

static const char *tz_num(const char *s, int lo, int hi, int *out)
{
    if (*s < '0' || *s > '9') return NULL;
    int v = 0;
    while (*s >= '0' && *s <= '9' && v <= hi) v = v * 10 + (*s++ - '0');
    if (v < lo || v > hi) return NULL;
    *out = v;
    return s;
}

static const char *tz_date(const char *s, rule_date *d)
{
    if (*s == 'J') {
        d->kind = 'J';
        s = tz_num(s + 1, 1, 365, &d->a);
    } else if (*s == 'M') {
        d->kind = 'M';
        if (!(s = tz_num(s + 1, 1, 12, &d->a)) || *s++ != '.') return NULL;
        if (!(s = tz_num(s, 1, 5, &d->b)) || *s++ != '.') return NULL;
        s = tz_num(s, 0, 6, &d->c);
    } else {
        d->kind = 'N';
        s = tz_num(s, 0, 365, &d->a);
    }
    if (!s) return NULL;
    d->time = 7200;
    if (*s == '/') s = tz_hms(s + 1, 167, &d->time);
    return s;
}

static int parse_rule(tl_tz_zone *z, const char *s)
{
    int32_t off;
    if (!(s = tz_name(s, z->std.abbr)) || !(s = tz_hms(s, 24, &off))) return 0;
    z->std.utoff = -off; /* POSIX counts west of UTC */
    z->std.isdst = 0;
    if (*s == '\0') {
        z->has_rule = 1;
        return 1;
    }
    if (!(s = tz_name(s, z->dst.abbr))) return 0;
    z->dst.utoff = z->std.utoff + 3600;
    z->dst.isdst = 1;
    if (*s != ',' && *s != '\0') {
        if (!(s = tz_hms(s, 24, &off))) return 0;
        z->dst.utoff = -off;
    }
    if (*s++ != ',') return 0; /* a footer with DST has its rule */
    if (!(s = tz_date(s, &z->start)) || *s++ != ',' || !(s = tz_date(s, &z->end)) || *s != '\0') return 0;
    z->has_rule = z->has_dst = 1;
    return 1;
}

/* days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil) */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int64_t year_of_days(int64_t z)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int m = (int)(mp < 10 ? mp + 3 : mp - 9);
    return yoe + era * 400 + (m <= 2);
}

static int is_leap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

/* local seconds since the epoch of a rule's date in year y */
static int64_t rule_local(const rule_date *d, int64_t y)
{
    int64_t day;
    if (d->kind == 'J') {
        day = days_from_civil(y, 1, 1) + d->a - 1 + (is_leap(y) && d->a >= 60);
    } else if (d->kind == 'N') {
        day = days_from_civil(y, 1, 1) + d->a;
    } else {
        static const int mdays[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
        int64_t first = days_from_civil(y, d->a, 1);
        int wd = (int)(((first % 7) + 11) % 7); /* 1970-01-01 was a Thursday (4) */
        int dom = 1 + (d->c - wd + 7) % 7 + (d->b - 1) * 7;
        int len = mdays[d->a - 1] + (d->a == 2 && is_leap(y));
        while (dom > len) dom -= 7;
        day = first + dom - 1;
    }
    return day * 86400 + d->time;
}

static void rule_at(const tl_tz_zone *z, int64_t t, tl_tz_local *out)
{
    const ttype *ty = &z->std;
    if (z->has_dst) {
        int64_t local = t + z->std.utoff;
        int64_t y = year_of_days(local >= 0 ? local / 86400 : -((-local + 86399) / 86400));
        int64_t s = rule_local(&z->start, y) - z->std.utoff;
        int64_t e = rule_local(&z->end, y) - z->dst.utoff;
        int dst = s < e ? (t >= s && t < e) : !(t >= e && t < s);
        if (dst) ty = &z->dst;
    }
    out->utoff = ty->utoff;
    out->isdst = ty->isdst;
    memcpy(out->abbr, ty->abbr, sizeof out->abbr);
}

void tl_tz_zone_free(tl_tz_zone *z)
{
    if (!z) return;
    free(z->trans);
    free(z->idx);
    free(z->types);
    free(z);
}

tl_tz_zone *tl_tz_parse(const unsigned char *p, size_t len)
{
    if (len < 44 || memcmp(p, "TZif", 4) != 0) return NULL;
    int version = p[4];
    size_t tsize = 4;
    const unsigned char *h = p, *end = p + len;
    uint64_t isut, isstd, leap, timecnt, typecnt, charcnt, block;
    for (;;) {
        isut = be32(h + 20), isstd = be32(h + 24), leap = be32(h + 28);
        timecnt = be32(h + 32), typecnt = be32(h + 36), charcnt = be32(h + 40);
        block = timecnt * tsize + timecnt + typecnt * 6 + charcnt + leap * (tsize + 4) + isstd + isut;
        if (typecnt == 0 || charcnt == 0 || (uint64_t)(end - h) < 44 + block) return NULL;
        if (tsize == 8 || version < '2') break;
        h += 44 + block; /* the version 2+ header and data: 64-bit times */
        tsize = 8;
        if (end - h < 44 || memcmp(h, "TZif", 4) != 0) return NULL;
    }
    tl_tz_zone *z = calloc(1, sizeof *z);
    if (!z) return NULL;
    z->timecnt = timecnt;
    z->typecnt = typecnt;
    z->trans = malloc((timecnt ? timecnt : 1) * sizeof *z->trans);
    z->idx = malloc(timecnt ? timecnt : 1);
    z->types = malloc(typecnt * sizeof *z->types);
    if (!z->trans || !z->idx || !z->types) goto bad;
    const unsigned char *q = h + 44;
    for (size_t i = 0; i < timecnt; i++, q += tsize) {
        z->trans[i] = tsize == 8 ? be64(q) : (int64_t)(int32_t)be32(q);
        if (i > 0 && z->trans[i] <= z->trans[i - 1]) goto bad; /* RFC 8536: ascending */
    }
    for (size_t i = 0; i < timecnt; i++, q++) {
        if (*q >= typecnt) goto bad;
        z->idx[i] = *q;
    }
    const unsigned char *chars = q + typecnt * 6;
    for (size_t i = 0; i < typecnt; i++, q += 6) {
        z->types[i].utoff = (int32_t)be32(q);
        z->types[i].isdst = q[4] != 0;
        uint8_t di = q[5];
        if (di >= charcnt || z->types[i].utoff == INT32_MIN) goto bad;
        size_t n = 0;
        while (di + n < charcnt && chars[di + n] && n < 15) n++;
        memcpy(z->types[i].abbr, chars + di, n);
        z->types[i].abbr[n] = '\0';
    }
    q = h + 44 + block;
    if (version >= '2' && q < end && *q == '\n') { /* the footer: \n TZ string \n */
        const unsigned char *nl = memchr(q + 1, '\n', (size_t)(end - q - 1));
        if (nl && nl - q - 1 > 0 && nl - q - 1 < 128) {
            char rule[128];
            memcpy(rule, q + 1, (size_t)(nl - q - 1));
            rule[nl - q - 1] = '\0';
            if (!parse_rule(z, rule)) z->has_rule = z->has_dst = 0; /* keep the last transition's type */
        }
    }
    return z;
bad:
    tl_tz_zone_free(z);
    return NULL;
}

/* instants are kept within ±2^53 s (about 285 million years), where every
 * sum below stays far from overflow */
#define TZ_T_MAX ((int64_t)1 << 53)

void tl_tz_zone_at(const tl_tz_zone *z, int64_t t, tl_tz_local *out)
{
    const ttype *ty;
    if (t > TZ_T_MAX) t = TZ_T_MAX;
    if (t < -TZ_T_MAX) t = -TZ_T_MAX;
    if (z->timecnt == 0 || t >= z->trans[z->timecnt - 1]) {
        if (z->has_rule) {
            rule_at(z, t, out);
            return;
        }
        ty = &z->types[z->timecnt ? z->idx[z->timecnt - 1] : 0];
    } else if (t < z->trans[0]) {
        ty = &z->types[0]; /* RFC 8536 §3.2: before the first transition, type 0 */
    } else {
        size_t lo = 0, hi = z->timecnt - 1; /* the last transition at or before t */
        while (lo < hi) {
            size_t mid = lo + (hi - lo + 1) / 2;
            if (z->trans[mid] <= t) lo = mid; else hi = mid - 1;
        }
        ty = &z->types[z->idx[lo]];
    }
    out->utoff = ty->utoff;
    out->isdst = ty->isdst;
    memcpy(out->abbr, ty->abbr, sizeof out->abbr);
}

/* ------------------------------------------------------------------------
 * zones by name, each file read once per process */

typedef struct loaded {
    struct loaded *next;
    tl_tz_zone *zone; /* NULL: the zone could not be read (err) */
    int err;
    char name[64];
} loaded;

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static loaded *cache;

static int name_ok(const char *s)
{
    size_t n = 0;
    if (*s == '/' || *s == '\0') return 0;
    for (; s[n]; n++) {
        char c = s[n];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
              c == '+' || c == '/'))
            return 0; /* no '.', so no ".." either */
        if (n >= 63) return 0;
    }
    return 1;
}

static loaded *load(const char *name)
{
    loaded *l = calloc(1, sizeof *l);
    if (!l) return NULL;
    strcpy(l->name, name);
    const char *dir = getenv("TZDIR");
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir && *dir ? dir : "/usr/share/zoneinfo", name);
    FILE *f = fopen(path, "rb");
    if (!f) {
        l->err = TL_TZ_NO_ZONE;
        return l;
    }
    unsigned char *buf = malloc(1 << 20);
    size_t n = buf ? fread(buf, 1, 1 << 20, f) : 0;
    fclose(f);
    l->zone = buf ? tl_tz_parse(buf, n) : NULL;
    l->err = l->zone ? TL_TZ_OK : TL_TZ_BAD_FILE;
    free(buf);
    return l;
}

int tl_tz_at(const char *zone, int64_t t, tl_tz_local *out)
{
    if (!name_ok(zone)) return TL_TZ_BAD_NAME;
    pthread_mutex_lock(&cache_lock);
    loaded *l = cache;
    while (l && strcmp(l->name, zone) != 0) l = l->next;
    if (!l && (l = load(zone)) != NULL) {
        l->next = cache;
        cache = l;
    }
    pthread_mutex_unlock(&cache_lock);
    if (!l) return TL_TZ_BAD_FILE; /* out of memory */
    if (!l->zone) return l->err;
    tl_tz_zone_at(l->zone, t, out); /* a loaded zone never changes */
    return TL_TZ_OK;
}
