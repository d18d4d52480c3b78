/*
 * e164.c - parse, isPossible, isValid, type and region (see e164.h).
 *
 * Function names follow PhoneNumberUtil's so the two can be read side by
 * side; comments give the upstream behaviour where it is not obvious.
 * Input text is handled as Unicode code points; once normalised, numbers
 * are ASCII digit strings.
 */
#include "e164.h"
#include "e164_meta.h"
#include "re.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CP 1024   /* code points handled (phone-context + number) */
#define MAX_NSN 17
#define MIN_NSN 2

enum { LEN_POSSIBLE, LEN_LOCAL_ONLY, LEN_TOO_SHORT, LEN_TOO_LONG, LEN_INVALID };

/* what decoding saw, so later passes can skip work */
#define HAS_SEMI 1u   /* a ';' (RFC 3966 parameters, some extensions) */
#define HAS_ALPHA 2u  /* an ASCII letter (vanity numbers) */
#define HAS_ASTRAL 4u /* a character above U+FFFF (two UTF-16 units) */

typedef struct {
    uint32_t c[MAX_CP];
    size_t n;
    unsigned flags; /* HAS_*, of the input this text came from */
} ustr;

/* ---- one-time setup: compiled metadata and fixed patterns ---------------- */

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int setup_failures;      /* patterns that did not compile; -1: out of memory */
static tl_re *re_viable, *re_extn, *re_global_ctx, *re_domain_ctx;

/* compiled metadata patterns: per territory, these fields */
enum { F_IDD, F_NPFP, F_LEAD, F_DESC, F_COUNT = F_DESC + TL_E164_NSLOTS };
static tl_re **terr_re;         /* [territory * F_COUNT + field] */
static tl_re_set **terr_types;  /* per territory: all its number descriptions, one pass */
static tl_re **pool_re;         /* each distinct pool string compiled once */
static uint32_t *pool_offsets;  /* offset of each pool string, ascending */
static int16_t region_index[26 * 26]; /* "AA".."ZZ" -> geographic territory, or -1 */
static int16_t cc_index[1000];        /* calling code -> tl_e164_ccs entry, or -1 */

#define DIGITS "0-9\\uFF10-\\uFF19\\u0660-\\u0669\\u06F0-\\u06F9"
#define PUNCT                                                                                  \
    "\\-x\\u2010-\\u2015\\u2212\\u30FC\\uFF0D-\\uFF0F \\u00A0\\u00AD\\u200B\\u2060\\u3000()" \
    "\\uFF08\\uFF09\\uFF3B\\uFF3D.\\[\\]/~\\u2053\\u223C\\uFF5E"
#define SEP_BEFORE "[ \\u00A0\\t,]*"
#define AFTER_LABEL "[:.\\uFF0E]?[ \\u00A0\\t,\\-]*"
#define EXT_DIGITS(n) "([" DIGITS "]{1," #n "})"
/* createExtnPattern(forParsing = true), in upstream order */
#define EXTN                                                                                        \
    ";ext=" EXT_DIGITS(20) "|" SEP_BEFORE                                                           \
    "(?:e?xt(?:ensi(?:o\\u0301?|\\u00F3))?n?|\\uFF45?\\uFF58\\uFF54\\uFF4E?|\\u0434\\u043E\\u0431|anexo)" \
    AFTER_LABEL EXT_DIGITS(20) "#?|" SEP_BEFORE                                                     \
    "(?:[x\\uFF58#\\uFF03~\\uFF5E]|int|\\uFF49\\uFF4E\\uFF54)" AFTER_LABEL EXT_DIGITS(9) "#?|"      \
    "[\\- ]+" EXT_DIGITS(6) "#|"                                                                    \
    "[ \\u00A0\\t]*(?:,{2}|;)" AFTER_LABEL EXT_DIGITS(15) "#?|"                                    \
    "[ \\u00A0\\t]*(?:,)+" AFTER_LABEL EXT_DIGITS(9) "#?"
/* VALID_PHONE_NUMBER_PATTERN_ as matchesEntirely uses it */
#define VIABLE "[" DIGITS "]{2}|[+\\uFF0B]*(?:[" PUNCT "*]*[" DIGITS "]){3,}[" PUNCT "*A-Za-z" DIGITS "]*(?:" EXTN ")?"
/* RFC 3966 phone-context: a global number or a domain name (written without
 * the ambiguous nested repetitions of upstream's, same language) */
#define CTX_GLOBAL "\\+[" DIGITS "\\-.()]*[" DIGITS "][" DIGITS "\\-.()]*"
#define ALNUM "A-Za-z" DIGITS
#define CTX_DOMAIN "(?:[" ALNUM "](?:[" ALNUM "]|\\-+[" ALNUM "])*\\.)*[A-Za-z](?:[" ALNUM "]|\\-+[" ALNUM "])*\\.?"

/* the compiled pattern of the pool string at `off` (NULL for none) */
static tl_re *compile_at(uint32_t off)
{
    int lo = 0, hi = tl_e164_npatterns - 1;
    if (!off) return NULL;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (pool_offsets[mid] == off) {
            if (!pool_re[mid] && !(pool_re[mid] = tl_re_compile(tl_e164_pool + off, 0))) setup_failures++;
            return pool_re[mid];
        }
        if (pool_offsets[mid] < off) lo = mid + 1;
        else hi = mid - 1;
    }
    setup_failures++;
    return NULL;
}

/* Compiles every metadata pattern once (about 1,300, a few milliseconds). */
static void setup(void)
{
    size_t off = 0;
    int i, s;
    pool_offsets = malloc((size_t)tl_e164_npatterns * sizeof *pool_offsets);
    pool_re = calloc((size_t)tl_e164_npatterns, sizeof *pool_re);
    terr_re = calloc((size_t)tl_e164_nterritories * F_COUNT, sizeof *terr_re);
    terr_types = calloc((size_t)tl_e164_nterritories, sizeof *terr_types);
    if (!pool_offsets || !pool_re || !terr_re || !terr_types) { setup_failures = -1; return; }
    for (i = 0; i < tl_e164_npatterns; i++) {
        pool_offsets[i] = (uint32_t)off;
        off += strlen(tl_e164_pool + off) + 1;
    }
    for (i = 0; i < 26 * 26; i++) region_index[i] = -1;
    for (i = 0; i < 1000; i++) cc_index[i] = -1;
    for (i = 0; i < tl_e164_nccs; i++) cc_index[tl_e164_ccs[i].cc] = (int16_t)i;
    for (i = 0; i < tl_e164_nterritories; i++) {
        const tl_e164_territory *t = &tl_e164_territories[i];
        tl_re **f = &terr_re[i * F_COUNT];
        if (i < tl_e164_ngeo) region_index[(t->id[0] - 'A') * 26 + (t->id[1] - 'A')] = (int16_t)i;
        f[F_IDD] = compile_at(t->idd);
        f[F_NPFP] = compile_at(t->npfp);
        f[F_LEAD] = compile_at(t->leading_digits);
        for (s = 0; s < TL_E164_NSLOTS; s++) f[F_DESC + s] = compile_at(t->desc[s].pattern);
        if (!(terr_types[i] = tl_re_set_new(f + F_DESC, TL_E164_NSLOTS))) { setup_failures = -1; return; }
    }
    free(pool_offsets);
    pool_offsets = NULL;
    re_viable = tl_re_compile(VIABLE, 1);
    re_extn = tl_re_compile("(?:" EXTN ")$", 1);
    re_global_ctx = tl_re_compile(CTX_GLOBAL, 0);
    re_domain_ctx = tl_re_compile(CTX_DOMAIN, 0);
    if (!re_viable || !re_extn || !re_global_ctx || !re_domain_ctx) setup_failures = -1;
}

static tl_re *field_re(const tl_e164_territory *t, int field)
{
    return terr_re[(t - tl_e164_territories) * F_COUNT + field];
}

int tl_e164_init(void)
{
    pthread_once(&once, setup);
    return setup_failures;
}

/* ---- metadata lookups ----------------------------------------------------- */

static const tl_e164_territory *region_meta(const char *region)
{
    int a, b, i;
    if (!region || !region[0] || !region[1] || region[2]) return NULL;
    a = (region[0] | 0x20) - 'a';
    b = (region[1] | 0x20) - 'a';
    if (a < 0 || a > 25 || b < 0 || b > 25) return NULL;
    i = region_index[a * 26 + b];
    return i >= 0 ? &tl_e164_territories[i] : NULL;
}

int tl_e164_region_known(const char *region) { return region_meta(region) != NULL; }

static const tl_e164_cc *cc_entry(int cc)
{
    return (cc > 0 && cc < 1000 && cc_index[cc] >= 0) ? &tl_e164_ccs[cc_index[cc]] : NULL;
}

/* the main territory of a calling code (getMetadataForRegionOrCallingCode
 * of getRegionCodeForCountryCode) */
static const tl_e164_territory *main_meta(int cc)
{
    const tl_e164_cc *e = cc_entry(cc);
    return e ? &tl_e164_territories[tl_e164_cc_regions[e->first]] : NULL;
}

/* ---- characters ------------------------------------------------------------ */

static int digit_value(uint32_t c)
{
    if (c >= '0' && c <= '9') return (int)(c - '0');
    if (c >= 0xFF10 && c <= 0xFF19) return (int)(c - 0xFF10);
    if (c >= 0x0660 && c <= 0x0669) return (int)(c - 0x0660);
    if (c >= 0x06F0 && c <= 0x06F9) return (int)(c - 0x06F0);
    return -1;
}

static int is_plus(uint32_t c) { return c == '+' || c == 0xFF0B; }
static int is_ascii_alpha(uint32_t c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }

/* VALID_PUNCTUATION */
static int is_punct(uint32_t c)
{
    if (c < 128) return c == '-' || c == 'x' || c == ' ' || c == '(' || c == ')' || c == '.' || c == '[' ||
                        c == ']' || c == '/' || c == '~';
    return (c >= 0x2010 && c <= 0x2015) || c == 0x2212 || c == 0x30FC || (c >= 0xFF0D && c <= 0xFF0F) ||
           c == 0xA0 || c == 0xAD || c == 0x200B || c == 0x2060 || c == 0x3000 || c == 0xFF08 ||
           c == 0xFF09 || c == 0xFF3B || c == 0xFF3D || c == 0x2053 || c == 0x223C || c == 0xFF5E;
}

/* E.161 keypad letters, after JavaScript's toUpperCase of one character */
static int keypad(uint32_t c)
{
    static const char map[] = "22233344455566677778889999";
    if (c >= 'a' && c <= 'z') c -= 32;
    else if (c == 0x131) c = 'I'; /* dotless i upper-cases to I */
    else if (c == 0x17F) c = 'S'; /* long s upper-cases to S */
    if (c >= 'A' && c <= 'Z') return map[c - 'A'] - '0';
    return -1;
}

/* UTF-16 length, which is what libphonenumber's limits count */
static size_t units(const uint32_t *s, size_t n, unsigned flags)
{
    size_t i, u = 0;
    if (!(flags & HAS_ASTRAL)) return n;
    for (i = 0; i < n; i++) u += s[i] > 0xFFFF ? 2 : 1;
    return u;
}

/* VALID_ALPHA_PHONE_PATTERN_ /(?:.*?[A-Za-z]){3}.* /: three ASCII letters
 * on one line (. stops at line terminators) */
static int has_alpha_run(const uint32_t *s, size_t n)
{
    size_t i;
    int letters = 0;
    for (i = 0; i < n; i++) {
        uint32_t c = s[i];
        if (c == '\n' || c == '\r' || c == 0x2028 || c == 0x2029) letters = 0;
        else if (is_ascii_alpha(c) && ++letters >= 3) return 1;
    }
    return 0;
}

/* normalize(): keypad letters and all digit scripts when there are three
 * letters, else digits only; everything else is dropped. Returns the length
 * written to out (room for n + 1). */
static size_t normalize(const uint32_t *s, size_t n, unsigned flags, char *out)
{
    size_t i, o = 0;
    int alpha = (flags & HAS_ALPHA) && has_alpha_run(s, n);
    for (i = 0; i < n; i++) {
        int d = digit_value(s[i]);
        if (d < 0 && alpha) d = keypad(s[i]);
        if (d >= 0) out[o++] = (char)('0' + d);
    }
    out[o] = 0;
    return o;
}

/* ---- pattern helpers -------------------------------------------------------- */

/* s is always a string of ASCII digits here, which the DFA path needs */
static int full_match(tl_re *re, const char *s, size_t n)
{
    if (!re) return n == 0; /* an empty pattern matches only "" */
    return tl_re_full_digits(re, s, n);
}

static long prefix_match(const tl_re *re, const char *s, size_t n, long *caps)
{
    if (!re) return -1;
    return tl_re_match_bytes(re, s, n, 0, caps);
}

/* ---- lengths and types ------------------------------------------------------ */

static int bit(uint32_t mask, size_t len) { return len < 30 && (mask & (1u << len)); }

/* testNumberLength(number, metadata, UNKNOWN) */
static int test_length(const tl_e164_territory *t, size_t len)
{
    const tl_e164_desc *g = &t->desc[TL_E164_GENERAL];
    uint32_t m = g->len & ~(TL_E164_LEN_NEVER | TL_E164_LEN_INHERIT);
    int lo, hi;
    if (g->len & TL_E164_LEN_NEVER) return LEN_INVALID;
    if (bit(g->local, len)) return LEN_LOCAL_ONLY;
    if (!m) return LEN_INVALID;
    lo = __builtin_ctz(m);
    hi = 31 - __builtin_clz(m);
    if ((size_t)lo == len) return LEN_POSSIBLE;
    if ((size_t)lo > len) return LEN_TOO_SHORT;
    if ((size_t)hi < len) return LEN_TOO_LONG;
    return bit(m, len) ? LEN_POSSIBLE : LEN_INVALID;
}

/* isNumberMatchingDesc: the listed lengths (none listed: no check), then
 * the pattern as a full match, here read from `mask` (bit per slot, all
 * the territory's patterns run in one pass) */
static int matches_desc(const tl_e164_territory *t, int slot, unsigned mask, size_t len)
{
    const tl_e164_desc *d = &t->desc[slot];
    if (d->len & TL_E164_LEN_NEVER) return 0;
    if (!(d->len & TL_E164_LEN_INHERIT) && d->len != 0 && !bit(d->len, len)) return 0;
    return d->pattern && ((mask >> slot) & 1);
}

/* getNumberTypeHelper */
static int number_type(const tl_e164_territory *t, const char *nsn, size_t len)
{
    static const struct { int slot, type; } order[] = {
        { TL_E164_PREMIUM_RATE, TL_E164_T_PREMIUM_RATE }, { TL_E164_TOLL_FREE, TL_E164_T_TOLL_FREE },
        { TL_E164_SHARED_COST, TL_E164_T_SHARED_COST },   { TL_E164_VOIP, TL_E164_T_VOIP },
        { TL_E164_PERSONAL_NUMBER, TL_E164_T_PERSONAL_NUMBER }, { TL_E164_PAGER, TL_E164_T_PAGER },
        { TL_E164_UAN, TL_E164_T_UAN },                   { TL_E164_VOICEMAIL, TL_E164_T_VOICEMAIL },
    };
    size_t i;
    unsigned mask = tl_re_set_full_digits(terr_types[t - tl_e164_territories], nsn, len);
    if (!matches_desc(t, TL_E164_GENERAL, mask, len)) return TL_E164_T_UNKNOWN;
    for (i = 0; i < sizeof order / sizeof order[0]; i++)
        if (matches_desc(t, order[i].slot, mask, len)) return order[i].type;
    if (matches_desc(t, TL_E164_FIXED_LINE, mask, len)) {
        if (t->same_mobile_fixed || matches_desc(t, TL_E164_MOBILE, mask, len))
            return TL_E164_T_FIXED_LINE_OR_MOBILE;
        return TL_E164_T_FIXED_LINE;
    }
    if (!t->same_mobile_fixed && matches_desc(t, TL_E164_MOBILE, mask, len)) return TL_E164_T_MOBILE;
    return TL_E164_T_UNKNOWN;
}

/* getRegionCodeForNumber: the only territory of the code, or the first of
 * a shared code whose leading digits match or that gives the number a type */
static const tl_e164_territory *number_region(int cc, const char *nsn, size_t len)
{
    const tl_e164_cc *e = cc_entry(cc);
    int i;
    if (!e) return NULL;
    if (e->count == 1) return &tl_e164_territories[tl_e164_cc_regions[e->first]];
    for (i = 0; i < e->count; i++) {
        const tl_e164_territory *t = &tl_e164_territories[tl_e164_cc_regions[e->first + i]];
        if (t->leading_digits) {
            if (prefix_match(field_re(t, F_LEAD), nsn, len, NULL) >= 0) return t;
        } else if (number_type(t, nsn, len) != TL_E164_T_UNKNOWN) {
            return t;
        }
    }
    return NULL;
}

/* ---- parsing ------------------------------------------------------------------ */

/* decimal digits of 0 < v < 1000 into out (NUL-terminated); returns the count */
static size_t put_int(char *out, int v)
{
    size_t n = v >= 100 ? 3 : v >= 10 ? 2 : 1, i;
    for (i = n; i > 0; i--, v /= 10) out[i - 1] = (char)('0' + v % 10);
    out[n] = 0;
    return n;
}

#define INDEX_OF(s, from, lit) index_of(s, from, lit, sizeof lit - 1)
static long index_of(const ustr *s, size_t from, const char *ascii, size_t k)
{
    size_t i, j;
    for (i = from; i + k <= s->n; i++) {
        for (j = 0; j < k && s->c[i + j] == (unsigned char)ascii[j]; j++) {}
        if (j == k) return (long)i;
    }
    return -1;
}

static void append(ustr *d, const uint32_t *s, size_t n)
{
    if (n > MAX_CP - d->n) n = MAX_CP - d->n;
    memcpy(d->c + d->n, s, n * sizeof *s);
    d->n += n;
}

/* extractPossibleNumber */
static void extract_possible(const ustr *in, ustr *out)
{
    size_t start, end, i;
    for (start = 0; start < in->n && !is_plus(in->c[start]) && digit_value(in->c[start]) < 0; start++) {}
    out->n = 0;
    if (start == in->n) return;
    end = in->n; /* UNWANTED_END_CHAR_PATTERN_: trailing run of non digit/letter/# */
    while (end > start && digit_value(in->c[end - 1]) < 0 && !is_ascii_alpha(in->c[end - 1]) && in->c[end - 1] != '#')
        end--;
    for (i = start; i < end; i++) { /* SECOND_NUMBER_START_PATTERN_ [\\/] *x */
        if (in->c[i] == '\\' || in->c[i] == '/') {
            size_t j = i + 1;
            while (j < end && in->c[j] == ' ') j++;
            if (j < end && in->c[j] == 'x') {
                end = i;
                break;
            }
        }
    }
    append(out, in->c + start, end - start);
}

static int re_full(const tl_re *re, const uint32_t *s, size_t n)
{
    return tl_re_match_at(re, s, n, 0, 1, NULL) == (long)n;
}

/* buildNationalNumberForParsing: RFC 3966 (tel:, phone-context, isub) or
 * the possible number inside the text. NOT_A_NUMBER for a bad context. */
static int build_national(const ustr *in, ustr *out)
{
    long ctx = (in->flags & HAS_SEMI) ? INDEX_OF(in, 0, ";phone-context=") : -1;
    long isub;
    out->n = 0;
    out->flags = in->flags;
    if (ctx >= 0) {
        size_t cs = (size_t)ctx + 15, ce;
        long semi, tel;
        size_t a, b;
        if (cs >= in->n) return TL_E164_NOT_A_NUMBER; /* empty context */
        semi = INDEX_OF(in, cs, ";");
        ce = semi >= 0 ? (size_t)semi : in->n;
        if (ce == cs) return TL_E164_NOT_A_NUMBER;
        if (!re_full(re_global_ctx, in->c + cs, ce - cs) && !re_full(re_domain_ctx, in->c + cs, ce - cs))
            return TL_E164_NOT_A_NUMBER;
        if (in->c[cs] == '+') append(out, in->c + cs, ce - cs);
        tel = INDEX_OF(in, 0, "tel:");
        a = tel >= 0 ? (size_t)tel + 4 : 0;
        b = (size_t)ctx;
        if (a > b) { size_t t = a; a = b; b = t; } /* String.prototype.substring swaps */
        append(out, in->c + a, b - a);
    } else {
        extract_possible(in, out);
    }
    isub = (in->flags & HAS_SEMI) ? INDEX_OF(out, 0, ";isub=") : -1;
    if (isub > 0) out->n = (size_t)isub;
    return TL_E164_OK;
}

/* isViablePhoneNumber. Fast path for what the pattern's second branch
 * takes without its extension part: plus signs, then punctuation, '*' and
 * digits until the third digit, then also ASCII letters. */
static int viable(const uint32_t *s, size_t n, unsigned flags)
{
    size_t i = 0, digits = 0;
    if (units(s, n, flags) < MIN_NSN) return 0;
    while (i < n && is_plus(s[i])) i++;
    for (; i < n; i++) {
        uint32_t c = s[i];
        if (digit_value(c) >= 0) digits++;
        else if (!is_punct(c) && c != '*' && !(digits >= 3 && is_ascii_alpha(c))) break;
    }
    if (i == n && digits >= 3) return 1;
    return re_full(re_viable, s, n);
}

/* A cheap necessary condition for EXTN_PATTERN_: every form ends in digits
 * (then perhaps '#') and needs a label character somewhere before them. */
static int may_have_extension(const uint32_t *s, size_t n)
{
    size_t i;
    int hash = n && (s[n - 1] == '#' || s[n - 1] == 0xFF03);
    if (hash) n--;
    if (!n || digit_value(s[n - 1]) < 0) return 0;
    if (hash) return 1; /* "- 503#" needs nothing more */
    for (i = 0; i < n; i++) {
        uint32_t c = s[i];
        if (c == ';' || c == ',' || c == '#' || c == '~' || c == 'x' || c == 'X' || c == 'i' || c == 'I' ||
            c == 0x434 || c == 0x414 || c == 0xFF58 || c == 0xFF38 || c == 0xFF03 || c == 0xFF5E ||
            c == 0xFF49 || c == 0xFF29)
            return 1;
    }
    return 0;
}

/* maybeStripExtension: the leftmost extension that leaves a viable number */
static void strip_extension(ustr *num, char *ext, size_t extcap)
{
    size_t start, i, o = 0;
    long caps[2 * TL_RE_MAX_GROUPS], end;
    ext[0] = 0;
    if (!may_have_extension(num->c, num->n)) return;
    end = tl_re_search(re_extn, num->c, num->n, &start, caps);
    if (end < 0 || !viable(num->c, start, num->flags)) return;
    for (i = 0; i < TL_RE_MAX_GROUPS; i++) {
        long a = caps[2 * i], b = caps[2 * i + 1];
        if (a >= 0 && b > a) {
            long k;
            for (k = a; k < b; k++) { /* UTF-8 */
                uint32_t c = num->c[k];
                if (o + 4 >= extcap) break;
                if (c < 0x80) ext[o++] = (char)c;
                else if (c < 0x800) { ext[o++] = (char)(0xC0 | (c >> 6)); ext[o++] = (char)(0x80 | (c & 0x3F)); }
                else { ext[o++] = (char)(0xE0 | (c >> 12)); ext[o++] = (char)(0x80 | ((c >> 6) & 0x3F)); ext[o++] = (char)(0x80 | (c & 0x3F)); }
            }
            ext[o] = 0;
            num->n = start;
            return;
        }
    }
}

/* maybeStripNationalPrefixAndCarrierCode on a digit string of n digits,
 * in place; returns the new length */
static size_t strip_national_prefix(char *num, size_t n, const tl_e164_territory *t)
{
    long caps[2 * TL_RE_MAX_GROUPS], end, ga, gb;
    const tl_re *re;
    int viable_before, ng;
    char out[2 * MAX_CP + 64];
    tl_re *gen = field_re(t, F_DESC + TL_E164_GENERAL);
    if (n == 0 || !t->npfp || !(re = field_re(t, F_NPFP))) return n;
    end = tl_re_match_bytes(re, num, n, 0, caps);
    if (end < 0) return n;
    viable_before = full_match(gen, num, n);
    ng = tl_re_groups(re);
    if (ng == 0) { ga = 0; gb = end; }
    else { ga = caps[2 * (ng - 1)]; gb = caps[2 * (ng - 1) + 1]; }
    if (!t->transform_rule || ga < 0 || gb <= ga) {
        if (viable_before && !full_match(gen, num + end, n - (size_t)end)) return n;
        memmove(num, num + end, n - (size_t)end + 1);
        return n - (size_t)end;
    } else {
        /* String.prototype.replace(^(?:npfp), rule): $n, $$, $& */
        const char *r = tl_e164_pool + t->transform_rule;
        size_t o = 0;
        for (; *r && o < sizeof out - MAX_CP; r++) {
            if (r[0] == '$' && r[1] >= '1' && r[1] <= '9' && r[1] - '0' <= ng) {
                int g = r[1] - '1';
                if (caps[2 * g] >= 0) {
                    memcpy(out + o, num + caps[2 * g], (size_t)(caps[2 * g + 1] - caps[2 * g]));
                    o += (size_t)(caps[2 * g + 1] - caps[2 * g]);
                }
                r++;
            } else if (r[0] == '$' && r[1] == '$') {
                out[o++] = '$';
                r++;
            } else if (r[0] == '$' && r[1] == '&') {
                memcpy(out + o, num, (size_t)end);
                o += (size_t)end;
                r++;
            } else {
                out[o++] = *r;
            }
        }
        memcpy(out + o, num + end, n - (size_t)end);
        o += n - (size_t)end;
        out[o] = 0;
        if (viable_before && !full_match(gen, out, o)) return n;
        if (o > MAX_CP) return n;
        memcpy(num, out, o + 1);
        return o;
    }
}

/* maybeExtractCountryCode. Returns the calling code (national digits in
 * `national`), or 0 when none is written (`national` then holds the whole
 * number normalised, as parseHelper goes on with), or -error. */
static int extract_cc(const uint32_t *s, size_t n, unsigned flags, const tl_e164_territory *meta, char *national,
                      size_t *nlen)
{
    char full[MAX_CP + 1];
    size_t len, i;
    int from_default = 1;
    national[0] = 0;
    *nlen = 0;
    if (n == 0) return 0;
    if (is_plus(s[0])) {
        i = 0;
        while (i < n && is_plus(s[i])) i++;
        len = normalize(s + i, n - i, flags, full);
        from_default = 0;
    } else {
        len = normalize(s, n, flags, full);
        if (meta && meta->idd) { /* parsePrefixAsIdd: not when a 0 follows */
            long end = prefix_match(field_re(meta, F_IDD), full, len, NULL);
            if (end >= 0 && full[end] != '0') {
                memmove(full, full + end, len - (size_t)end + 1);
                len -= (size_t)end;
                from_default = 0;
            }
        }
    }
    if (!from_default) {
        int cc = 0;
        if (len <= MIN_NSN) return -TL_E164_TOO_SHORT_AFTER_IDD;
        if (full[0] != '0') /* extractCountryCode: 1 to 3 digits */
            for (i = 1; i <= 3 && i <= len; i++) {
                cc = cc * 10 + (full[i - 1] - '0');
                if (cc_entry(cc)) {
                    memcpy(national, full + i, len - i + 1);
                    *nlen = len - i;
                    return cc;
                }
            }
        return -TL_E164_INVALID_COUNTRY_CODE;
    }
    if (meta) { /* the default region's code written without + */
        char ccs[8], potential[MAX_CP + 1];
        size_t cl = put_int(ccs, meta->cc);
        if (len >= cl && memcmp(full, ccs, cl) == 0) {
            tl_re *gen = field_re(meta, F_DESC + TL_E164_GENERAL);
            size_t pl;
            memcpy(potential, full + cl, len - cl + 1);
            pl = strip_national_prefix(potential, len - cl, meta);
            if ((!full_match(gen, full, len) && full_match(gen, potential, pl)) ||
                test_length(meta, len) == LEN_TOO_LONG) {
                memcpy(national, potential, pl + 1);
                *nlen = pl;
                return meta->cc;
            }
        }
    }
    memcpy(national, full, len + 1);
    *nlen = len;
    return 0;
}

static int decode_utf8(const char *in, size_t len, ustr *out)
{
    const unsigned char *p = (const unsigned char *)in, *e = p + len;
    out->n = 0;
    out->flags = 0;
    while (p < e) {
        uint32_t c = *p;
        int k, i;
        if (out->n == MAX_CP) return TL_E164_TOO_LONG;
        if (c < 0x80) {
            k = 0;
            if (c == ';') out->flags |= HAS_SEMI;
            else if (is_ascii_alpha(c)) out->flags |= HAS_ALPHA;
        } else if (c >= 0xC2 && c <= 0xDF) { k = 1; c &= 0x1F; }
        else if (c >= 0xE0 && c <= 0xEF) { k = 2; c &= 0x0F; }
        else if (c >= 0xF0 && c <= 0xF4) { k = 3; c &= 0x07; }
        else return TL_E164_NOT_A_NUMBER;
        if (e - p <= k) return TL_E164_NOT_A_NUMBER;
        for (i = 1; i <= k; i++) {
            if ((p[i] & 0xC0) != 0x80) return TL_E164_NOT_A_NUMBER;
            c = (c << 6) | (p[i] & 0x3F);
        }
        if ((k == 2 && (c < 0x800 || (c >= 0xD800 && c <= 0xDFFF))) || (k == 3 && (c < 0x10000 || c > 0x10FFFF)))
            return TL_E164_NOT_A_NUMBER;
        if (k == 3) out->flags |= HAS_ASTRAL;
        out->c[out->n++] = c;
        p += k + 1;
    }
    return TL_E164_OK;
}

int tl_e164_parse(const char *input, size_t len, const char *default_region, tl_e164_number *out)
{
    ustr raw_s, nat_s, *raw = &raw_s, *nat = &nat_s;
    char national[MAX_CP + 1], potential[MAX_CP + 1];
    const tl_e164_territory *meta, *t;
    size_t nlen;
    int cc, rc;
    out->country_code = 0;
    out->national[0] = out->e164[0] = out->extension[0] = out->region[0] = 0;
    out->possible = out->valid = 0;
    out->type = TL_E164_T_UNKNOWN;
    pthread_once(&once, setup);
    if (setup_failures < 0) return TL_E164_ENOMEM;
    if (!input) return TL_E164_NOT_A_NUMBER;
    national[0] = 0;

    rc = decode_utf8(input, len, raw);
    if (rc == TL_E164_OK && units(raw->c, raw->n, raw->flags) > TL_E164_MAX_INPUT) rc = TL_E164_TOO_LONG;
    if (rc == TL_E164_OK) rc = build_national(raw, nat);
    if (rc == TL_E164_OK && !viable(nat->c, nat->n, nat->flags)) rc = TL_E164_NOT_A_NUMBER;
    meta = region_meta(default_region);
    if (rc == TL_E164_OK && !meta && !(nat->n > 0 && is_plus(nat->c[0]))) rc = TL_E164_INVALID_COUNTRY_CODE;
    if (rc != TL_E164_OK) goto done;

    strip_extension(nat, out->extension, sizeof out->extension);
    cc = extract_cc(nat->c, nat->n, nat->flags, meta, national, &nlen);
    if (cc == -TL_E164_INVALID_COUNTRY_CODE && nat->n > 0 && is_plus(nat->c[0])) {
        size_t i = 0; /* strip the plus signs and try again */
        while (i < nat->n && is_plus(nat->c[i])) i++;
        cc = extract_cc(nat->c + i, nat->n - i, nat->flags, meta, national, &nlen);
        if (cc == 0) cc = -TL_E164_INVALID_COUNTRY_CODE;
    }
    if (cc < 0) {
        rc = -cc;
        goto done;
    }
    if (cc != 0) {
        meta = main_meta(cc);
    } else { /* national already holds the number normalised */
        if (!meta) {
            rc = TL_E164_INVALID_COUNTRY_CODE;
            goto done;
        }
        cc = meta->cc;
    }
    if (nlen < MIN_NSN) {
        rc = TL_E164_TOO_SHORT_NSN;
        goto done;
    }
    if (meta) { /* keep the trunk-prefix-stripped form only when its length can be right */
        int r;
        size_t pl;
        memcpy(potential, national, nlen + 1);
        pl = strip_national_prefix(potential, nlen, meta);
        r = test_length(meta, pl);
        if (r != LEN_TOO_SHORT && r != LEN_LOCAL_ONLY && r != LEN_INVALID) {
            memcpy(national, potential, pl + 1);
            nlen = pl;
        }
    }
    if (nlen < MIN_NSN) { rc = TL_E164_TOO_SHORT_NSN; goto done; }
    if (nlen > MAX_NSN) { rc = TL_E164_TOO_LONG; goto done; }

    out->country_code = cc;
    memcpy(out->national, national, nlen + 1);
    out->e164[0] = '+';
    memcpy(out->e164 + 1 + put_int(out->e164 + 1, cc), national, nlen + 1);
    t = main_meta(cc);
    if (t) {
        int len_ok = test_length(t, nlen);
        out->possible = len_ok == LEN_POSSIBLE || len_ok == LEN_LOCAL_ONLY;
    }
    t = number_region(cc, national, nlen);
    if (t) {
        memcpy(out->region, t->id, sizeof out->region);
        out->type = number_type(t, national, nlen);
        out->valid = out->type != TL_E164_T_UNKNOWN;
    }
done:
    if (rc != TL_E164_OK) out->extension[0] = 0;
    return rc;
}

const char *tl_e164_error_name(int code)
{
    switch (code) {
    case TL_E164_OK: return "OK";
    case TL_E164_INVALID_COUNTRY_CODE: return "INVALID_COUNTRY_CODE";
    case TL_E164_NOT_A_NUMBER: return "NOT_A_NUMBER";
    case TL_E164_TOO_SHORT_AFTER_IDD: return "TOO_SHORT_AFTER_IDD";
    case TL_E164_TOO_SHORT_NSN: return "TOO_SHORT_NSN";
    case TL_E164_TOO_LONG: return "TOO_LONG";
    default: return "OUT_OF_MEMORY";
    }
}

const char *tl_e164_error_message(int code)
{
    switch (code) {
    case TL_E164_OK: return "ok";
    case TL_E164_INVALID_COUNTRY_CODE: return "no valid country calling code (write the number with + or give a default region)";
    case TL_E164_NOT_A_NUMBER: return "not a phone number";
    case TL_E164_TOO_SHORT_AFTER_IDD: return "too few digits after the international prefix";
    case TL_E164_TOO_SHORT_NSN: return "too few digits for a national number";
    case TL_E164_TOO_LONG: return "too long for a phone number";
    default: return "out of memory";
    }
}

const char *tl_e164_type_name(int type)
{
    static const char *const names[] = { "FIXED_LINE", "MOBILE", "FIXED_LINE_OR_MOBILE", "TOLL_FREE",
                                         "PREMIUM_RATE", "SHARED_COST", "VOIP", "PERSONAL_NUMBER",
                                         "PAGER", "UAN", "VOICEMAIL" };
    return (type >= 0 && type <= 10) ? names[type] : "UNKNOWN";
}
