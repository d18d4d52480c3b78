/*
 * segments.c - SMS segment counting (see segments.h).
 *
 * The grapheme rules are a port of grapheme-splitter 1.0.4's shouldBreak
 * (the calculator's splitter), kept rule for rule so the two split alike,
 * including its lookahead quirks for emoji modifiers and regional
 * indicators. The segment filling follows the calculator's _buildSegments
 * and Segment.addHeader.
 */
#include "segments.h"
#include "segments_tables.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define SEGMENT_BITS 1120
#define UDH_BITS 48

/* ---- tables ---------------------------------------------------------------- */

static int gb_prop(uint32_t c)
{
    int lo = 0, hi = tl_gb_nranges - 1;
    if (c >= 0x20 && c < 0x7F) return TL_GB_OTHER; /* printable ASCII */
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (c < tl_gb_ranges[mid].lo) hi = mid - 1;
        else if (c > tl_gb_ranges[mid].hi) lo = mid + 1;
        else return tl_gb_ranges[mid].prop;
    }
    return TL_GB_OTHER;
}

/* septets of a GSM 03.38 character (a UTF-16 unit), 0 when not GSM */
static int gsm_septets(uint32_t c)
{
    int lo = 0, hi = tl_gsm_n - 1;
    if (c < 128) return tl_gsm_ascii[c];
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (c < tl_gsm_table[mid].unit) hi = mid - 1;
        else if (c > tl_gsm_table[mid].unit) lo = mid + 1;
        else return tl_gsm_table[mid].septets;
    }
    return 0;
}

/* Next code point of well-formed UTF-8 at *p (< e); 0x110000 on bad input. */
static uint32_t next_cp(const unsigned char **pp, const unsigned char *e)
{
    const unsigned char *p = *pp;
    uint32_t c = *p;
    int k, i;
    if (c < 0x80) {
        *pp = p + 1;
        return c;
    }
    if (c >= 0xC2 && c <= 0xDF) { k = 1; c &= 0x1F; }
    else if (c >= 0xE0 && c <= 0xEF) { k = 2; c &= 0x0F; }
    else if (c >= 0xF0 && c <= 0xF4) { k = 3; c &= 0x07; }
    else return 0x110000;
    if (e - p <= k) return 0x110000;
    for (i = 1; i <= k; i++) {
        if ((p[i] & 0xC0) != 0x80) return 0x110000;
        c = (c << 6) | (p[i] & 0x3F);
    }
    if ((k == 2 && (c < 0x800 || (c >= 0xD800 && c <= 0xDFFF))) || (k == 3 && (c < 0x10000 || c > 0x10FFFF)))
        return 0x110000;
    *pp = p + k + 1;
    return c;
}

/* ---- grapheme clusters (grapheme-splitter's shouldBreak) ------------------ */

typedef struct {
    uint8_t *all; /* start, mid..., and room for end */
    size_t n, cap;
    uint8_t local[64];
} cluster;

static int all_are(const uint8_t *a, size_t from, size_t to, int prop)
{
    size_t i;
    for (i = from; i < to; i++)
        if (a[i] != prop) return 0;
    return 1;
}

/* whether a break comes before `end`, given the cluster so far */
static int should_break(const cluster *cl, int end)
{
    const uint8_t *a = cl->all; /* a[0] = start, a[1..n) = mid, a[n] = end */
    size_t n = cl->n + 1, i;   /* length of `all` */
    int start = a[0], previous = a[n - 2], next = end;
    long em = -1, ri = -1, ext = -1;
    for (i = 0; i < n; i++) {
        if (a[i] == TL_GB_E_MODIFIER) em = (long)i;
        if (a[i] == TL_GB_RI) ri = (long)i;
        if (a[i] == TL_GB_EXTEND) ext = (long)i;
    }
    /* lookahead terminator for GB10 */
    if (em > 1 && all_are(a, 1, (size_t)em, TL_GB_EXTEND) && start != TL_GB_EXTEND && start != TL_GB_E_BASE &&
        start != TL_GB_E_BASE_GAZ)
        return 1;
    /* lookahead terminator for GB12, GB13 */
    if (ri > 0 && all_are(a, 1, (size_t)ri, TL_GB_RI) && previous != TL_GB_PREPEND && previous != TL_GB_RI)
        return 1;
    if (previous == TL_GB_CR && next == TL_GB_LF) return 0;                            /* GB3 */
    if (previous == TL_GB_CONTROL || previous == TL_GB_CR || previous == TL_GB_LF) return 1; /* GB4 */
    if (next == TL_GB_CONTROL || next == TL_GB_CR || next == TL_GB_LF) return 1;       /* GB5 */
    if (previous == TL_GB_L && (next == TL_GB_L || next == TL_GB_V || next == TL_GB_LV || next == TL_GB_LVT))
        return 0; /* GB6 */
    if ((previous == TL_GB_LV || previous == TL_GB_V) && (next == TL_GB_V || next == TL_GB_T)) return 0; /* GB7 */
    if ((previous == TL_GB_LVT || previous == TL_GB_T) && next == TL_GB_T) return 0;  /* GB8 */
    if (next == TL_GB_EXTEND || next == TL_GB_ZWJ) return 0;                           /* GB9 */
    if (next == TL_GB_SPACINGMARK) return 0;                                            /* GB9a */
    if (previous == TL_GB_PREPEND) return 0;                                            /* GB9b */
    {   /* GB10: (E_Base | EBG) Extend* x E_Modifier */
        long pne = ext >= 0 ? ext - 1 : (long)n - 2;
        if (pne >= 0 && (a[pne] == TL_GB_E_BASE || a[pne] == TL_GB_E_BASE_GAZ) &&
            all_are(a, (size_t)pne + 1, n - 1, TL_GB_EXTEND) && next == TL_GB_E_MODIFIER)
            return 0;
    }
    if (previous == TL_GB_ZWJ && (next == TL_GB_GLUE_AFTER_ZWJ || next == TL_GB_E_BASE_GAZ)) return 0; /* GB11 */
    for (i = 1; i + 1 < n; i++) /* GB12, GB13 */
        if (a[i] == TL_GB_RI) return 1;
    if (previous == TL_GB_RI && next == TL_GB_RI) return 0;
    return 1; /* GB999 */
}

static int cluster_push(cluster *cl, int prop)
{
    if (cl->n + 2 > cl->cap) {
        size_t nc = cl->cap * 2;
        uint8_t *na = cl->all == cl->local ? malloc(nc) : realloc(cl->all, nc);
        if (!na) return -1;
        if (cl->all == cl->local) memcpy(na, cl->local, cl->n);
        cl->all = na;
        cl->cap = nc;
    }
    cl->all[cl->n++] = (uint8_t)prop;
    return 0;
}

/* One grapheme: where it is, its UTF-16 length, GSM septets (0: not GSM). */
typedef struct {
    size_t off, len, units;
    int septets;
} grapheme;

typedef int (*grapheme_fn)(void *ud, const grapheme *g);

/* Hands one grapheme on; the calculator splits a "\r\n" grapheme into two. */
static int emit(const char *text, size_t off, size_t len, size_t units, int septets, grapheme_fn fn, void *ud)
{
    int rc;
    if (len == 2 && text[off] == '\r' && text[off + 1] == '\n') {
        grapheme cr = { off, 1, 1, gsm_septets('\r') }, lf = { off + 1, 1, 1, gsm_septets('\n') };
        return (rc = fn(ud, &cr)) != 0 ? rc : fn(ud, &lf);
    } else {
        grapheme g = { off, len, units, septets };
        return fn(ud, &g);
    }
}

/* Splits text into graphemes, "\r\n" as two. Returns 0, TL_SEG_EUTF8 (with
 * *where), TL_SEG_ENOMEM, or what fn returned when not 0. */
static int split(const char *text, size_t len, grapheme_fn fn, void *ud, size_t *where)
{
    const unsigned char *p = (const unsigned char *)text, *e = p + len, *gstart = p;
    cluster cl;
    size_t units = 0;
    uint32_t first = 0;
    int rc = 0, ncp = 0;
    cl.all = cl.local;
    cl.cap = sizeof cl.local;
    cl.n = 0;
    while (p < e) {
        const unsigned char *at = p;
        uint32_t c = next_cp(&p, e);
        int prop;
        if (c == 0x110000) {
            if (where) *where = (size_t)(at - (const unsigned char *)text);
            rc = TL_SEG_EUTF8;
            goto out;
        }
        prop = gb_prop(c);
        if (cl.n > 0) cl.all[cl.n] = (uint8_t)prop; /* `end`, after start and mid */
        /* Other then Other always breaks (GB999, no rule before it applies):
         * the common case, decided without the full rules */
        if (cl.n > 0 && ((cl.n == 1 && cl.all[0] == TL_GB_OTHER && prop == TL_GB_OTHER) || should_break(&cl, prop))) {
            if ((rc = emit(text, (size_t)(gstart - (const unsigned char *)text), (size_t)(at - gstart), units,
                           ncp == 1 && units == 1 ? gsm_septets(first) : 0, fn, ud)) != 0)
                goto out;
            gstart = at;
            units = 0;
            ncp = 0;
            cl.n = 0;
        }
        if (cl.n == 0) first = c;
        if (cluster_push(&cl, prop) != 0) {
            rc = TL_SEG_ENOMEM;
            goto out;
        }
        units += c > 0xFFFF ? 2 : 1;
        ncp++;
    }
    if (p > gstart)
        rc = emit(text, (size_t)(gstart - (const unsigned char *)text), (size_t)(p - gstart), units,
                  ncp == 1 && units == 1 ? gsm_septets(first) : 0, fn, ud);
out:
    if (cl.all != cl.local) free(cl.all);
    return rc;
}

/* ---- counting ------------------------------------------------------------------ */

/* The calculator's _buildSegments for one encoding. */
typedef struct {
    int ucs2;
    size_t segments, used, bits, characters;
    int first_open; /* still filling the first segment (no header yet) */
    uint16_t first_sizes[SEGMENT_BITS / 7 + 1];
    size_t nfirst;
} filler;

static void fill(filler *k, const grapheme *g)
{
    size_t size = k->ucs2 ? (g->septets ? 16 : 16 * g->units) : (size_t)(7 * g->septets);
    k->characters += k->ucs2 ? 1 : (size_t)g->septets;
    k->bits += size;
    if (k->used + size > SEGMENT_BITS) { /* freeSizeInBits() < sizeInBits(): a new segment */
        size_t fresh = UDH_BITS;
        k->segments++;
        if (k->first_open) { /* the first segment gets its header; what no longer fits moves on */
            size_t used1 = k->used + UDH_BITS, j = k->nfirst;
            while (used1 > SEGMENT_BITS && j > 0) used1 -= k->first_sizes[--j];
            for (; j < k->nfirst; j++) fresh += k->first_sizes[j];
            k->first_open = 0;
        }
        k->used = fresh;
    }
    k->used += size;
    if (k->first_open && k->nfirst < sizeof k->first_sizes / sizeof k->first_sizes[0])
        k->first_sizes[k->nfirst++] = (uint16_t)(size > 0xFFFF ? 0xFFFF : size);
}

typedef struct {
    filler gsm, ucs;    /* both encodings are filled in the one pass */
    size_t graphemes;
    int any_non_gsm;
    size_t non_gsm_at;
    tl_seg_nongsm_fn nongsm;
    void *ud;
} counter;

static int count_one(void *ud, const grapheme *g)
{
    counter *k = ud;
    k->graphemes++;
    if (g->septets == 0) {
        if (!k->any_non_gsm) k->non_gsm_at = g->off;
        k->any_non_gsm = 1;
        if (k->nongsm) k->nongsm(k->ud, g->off, g->len);
    }
    if (!k->any_non_gsm) fill(&k->gsm, g); /* GSM-7 sizes mean nothing once a grapheme is not GSM */
    fill(&k->ucs, g);
    return 0;
}

int tl_seg_count(const char *text, size_t len, int mode, tl_seg_result *out, tl_seg_nongsm_fn nongsm,
                 void *ud, size_t *where)
{
    counter k;
    const filler *f;
    int rc;
    memset(out, 0, sizeof *out);
    k.graphemes = 0;
    k.any_non_gsm = 0;
    k.non_gsm_at = 0;
    k.nongsm = nongsm;
    k.ud = ud;
    k.gsm.ucs2 = 0;
    k.ucs.ucs2 = 1;
    k.gsm.segments = k.ucs.segments = 1;
    k.gsm.used = k.ucs.used = k.gsm.bits = k.ucs.bits = k.gsm.characters = k.ucs.characters = 0;
    k.gsm.first_open = k.ucs.first_open = 1;
    k.gsm.nfirst = k.ucs.nfirst = 0;
    if ((rc = split(text, len, count_one, &k, where)) != 0) return rc;
    if (mode == TL_SEG_GSM7 && k.any_non_gsm) {
        if (where) *where = k.non_gsm_at;
        return TL_SEG_ENOTGSM;
    }
    f = (mode == TL_SEG_UCS2 || (mode == TL_SEG_AUTO && k.any_non_gsm)) ? &k.ucs : &k.gsm;
    out->ucs2 = f->ucs2;
    out->segments = f->segments;
    out->characters = f->characters;
    out->graphemes = k.graphemes;
    out->bits = f->bits;
    return TL_SEG_OK;
}

/* ---- Smart Encoding --------------------------------------------------------------- */

static const char *smart_lookup(uint32_t c)
{
    int lo = 0, hi = tl_smart_n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (c < tl_smart_table[mid].cp) hi = mid - 1;
        else if (c > tl_smart_table[mid].cp) lo = mid + 1;
        else return tl_smart_table[mid].to;
    }
    return NULL;
}

static size_t smart(const char *text, size_t len, char *out)
{
    const unsigned char *p = (const unsigned char *)text, *e = p + len;
    size_t o = 0;
    while (p < e) {
        const unsigned char *at = p;
        uint32_t c = next_cp(&p, e);
        const char *to;
        if (c == 0x110000) return (size_t)-1;
        if ((to = smart_lookup(c)) != NULL) {
            size_t k = strlen(to);
            if (out) memcpy(out + o, to, k);
            o += k;
        } else {
            if (out) memcpy(out + o, at, (size_t)(p - at));
            o += (size_t)(p - at);
        }
    }
    return o;
}

size_t tl_seg_smart_len(const char *text, size_t len) { return smart(text, len, NULL); }
size_t tl_seg_smart_encode(const char *text, size_t len, char *out) { return smart(text, len, out); }
