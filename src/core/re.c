/*
 * re.c - compile to a small backtracking VM (see re.h).
 *
 * Pattern -> syntax tree -> instructions (CLASS, SPLIT, JMP, SAVE, EOL,
 * BOL, MATCH). SPLIT tries its first branch first, which gives the
 * leftmost-first priority of JavaScript and Java. Counted repetition is
 * unrolled; the optional copies of {n,m} are nested, so a failing match
 * backtracks linearly in m - n rather than exponentially.
 */
#include "re.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

enum { R_CLASS, R_CAT, R_ALT, R_REP, R_GROUP, R_EOL, R_BOL, R_EMPTY };
enum { I_CLASS, I_SPLIT, I_JMP, I_SAVE, I_EOL, I_BOL, I_MATCH, I_CLASSN };

typedef struct {
    int kind, a, b, min, max, cap, cls;
} rnode;

typedef struct {
    int neg, first, count; /* ranges[first .. first+count) */
} rclass;

typedef struct {
    unsigned char op;
    int x, y;
} rinst;

/* What the code from one instruction on can consume first: ASCII bytes as
 * a bitmap, whether any non-ASCII character can come first, and whether it
 * can succeed without consuming (then nothing may be pruned). */
typedef struct {
    uint64_t bits[2];
    unsigned char nonascii, nullable;
} rfirst;

struct tl_re {
    char lit[16];          /* the pattern when it is only ASCII digits ("00", "011", "1"), else "" */
    size_t litlen;
    struct tl_re_set *self_set; /* this pattern alone, for tl_re_full_digits (made on first use) */
    rinst *code;
    rfirst *first; /* per instruction */
    int ncode, ngroups, icase;
    rclass *cls;
    uint64_t (*ascii)[2]; /* per class: which ASCII characters it accepts */
    uint32_t (*ranges)[2];
};

/* ---- parsing ------------------------------------------------------------ */

typedef struct {
    const unsigned char *p;
    int err, ngroups;
    rnode *nodes;
    int nnodes, capnodes;
    rclass *cls;
    int ncls, capcls;
    uint32_t (*ranges)[2];
    int nranges, capranges;
} parser;

static int grow(void **arr, int *cap, int need, size_t size)
{
    if (need <= *cap) return 0;
    {
        int nc = *cap ? *cap * 2 : 32;
        void *np;
        while (nc < need) nc *= 2;
        np = realloc(*arr, (size_t)nc * size);
        if (!np) return -1;
        *arr = np;
        *cap = nc;
    }
    return 0;
}

static int node(parser *ps, int kind, int a, int b)
{
    rnode *n;
    if (grow((void **)&ps->nodes, &ps->capnodes, ps->nnodes + 1, sizeof *ps->nodes)) {
        ps->err = 1;
        return -1;
    }
    n = &ps->nodes[ps->nnodes];
    memset(n, 0, sizeof *n);
    n->kind = kind;
    n->a = a;
    n->b = b;
    n->cap = -1;
    return ps->nnodes++;
}

static void add_range(parser *ps, uint32_t lo, uint32_t hi)
{
    if (grow((void **)&ps->ranges, &ps->capranges, ps->nranges + 1, sizeof *ps->ranges)) {
        ps->err = 1;
        return;
    }
    ps->ranges[ps->nranges][0] = lo;
    ps->ranges[ps->nranges][1] = hi;
    ps->nranges++;
    ps->cls[ps->ncls - 1].count++;
}

static int new_class(parser *ps, int neg)
{
    if (grow((void **)&ps->cls, &ps->capcls, ps->ncls + 1, sizeof *ps->cls)) {
        ps->err = 1;
        return -1;
    }
    ps->cls[ps->ncls].neg = neg;
    ps->cls[ps->ncls].first = ps->nranges;
    ps->cls[ps->ncls].count = 0;
    return ps->ncls++;
}

/* Next UTF-8 code point of the pattern; 0 at the end. */
static uint32_t utf8_next(const unsigned char **pp, int *err)
{
    const unsigned char *p = *pp;
    uint32_t c = p[0];
    int n = 0, i;
    if (c < 0x80) n = 0;
    else if ((c & 0xE0) == 0xC0) { c &= 0x1F; n = 1; }
    else if ((c & 0xF0) == 0xE0) { c &= 0x0F; n = 2; }
    else if ((c & 0xF8) == 0xF0) { c &= 0x07; n = 3; }
    else { *err = 1; return 0; }
    for (i = 1; i <= n; i++) {
        if ((p[i] & 0xC0) != 0x80) { *err = 1; return 0; }
        c = (c << 6) | (p[i] & 0x3F);
    }
    *pp = p + n + 1;
    return c;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* An escape after '\': returns the code point, or sets *digit for \d. */
static uint32_t escape(parser *ps, int *digit)
{
    int c = *ps->p;
    *digit = 0;
    if (!c) { ps->err = 1; return 0; }
    ps->p++;
    switch (c) {
    case 'd': *digit = 1; return 0;
    case 't': return '\t';
    case 'n': return '\n';
    case 'u': {
        uint32_t v = 0;
        int i;
        for (i = 0; i < 4; i++) {
            int h = hexval(ps->p[i]);
            if (h < 0) { ps->err = 1; return 0; }
            v = v * 16 + (uint32_t)h;
        }
        ps->p += 4;
        return v;
    }
    default:
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
            ps->err = 1; /* \w, \s, back-references...: not in the dialect */
            return 0;
        }
        return (uint32_t)c;
    }
}

static int parse_alt(parser *ps);

static int parse_class(parser *ps)
{
    int neg = 0, cls, first = 1;
    if (*ps->p == '^') { neg = 1; ps->p++; }
    cls = new_class(ps, neg);
    if (cls < 0) return -1;
    while (!ps->err && (*ps->p != ']' || first)) {
        uint32_t lo, hi;
        int digit = 0;
        first = 0;
        if (!*ps->p) { ps->err = 1; break; }
        if (*ps->p == '\\') { ps->p++; lo = escape(ps, &digit); }
        else lo = utf8_next(&ps->p, &ps->err);
        if (digit) { add_range(ps, '0', '9'); continue; }
        hi = lo;
        if (ps->p[0] == '-' && ps->p[1] && ps->p[1] != ']') {
            ps->p++;
            if (*ps->p == '\\') { ps->p++; hi = escape(ps, &digit); if (digit) ps->err = 1; }
            else hi = utf8_next(&ps->p, &ps->err);
            if (hi < lo) ps->err = 1;
        }
        add_range(ps, lo, hi);
    }
    if (*ps->p != ']') ps->err = 1;
    else ps->p++;
    return node(ps, R_CLASS, -1, -1) >= 0 ? (ps->nodes[ps->nnodes - 1].cls = cls, ps->nnodes - 1) : -1;
}

static int literal(parser *ps, uint32_t c)
{
    int cls = new_class(ps, 0), n;
    if (cls < 0) return -1;
    add_range(ps, c, c);
    n = node(ps, R_CLASS, -1, -1);
    if (n >= 0) ps->nodes[n].cls = cls;
    return n;
}

static int parse_atom(parser *ps)
{
    int c = *ps->p;
    if (c == '(') {
        int cap = -1, inner, n;
        ps->p++;
        if (ps->p[0] == '?') {
            if (ps->p[1] != ':') { ps->err = 1; return -1; }
            ps->p += 2;
        } else {
            cap = ps->ngroups++;
            if (cap >= TL_RE_MAX_GROUPS) { ps->err = 1; return -1; }
        }
        inner = parse_alt(ps);
        if (*ps->p != ')') { ps->err = 1; return -1; }
        ps->p++;
        n = node(ps, R_GROUP, inner, -1);
        if (n >= 0) ps->nodes[n].cap = cap;
        return n;
    }
    if (c == '[') { ps->p++; return parse_class(ps); }
    if (c == '$') { ps->p++; return node(ps, R_EOL, -1, -1); }
    if (c == '^') { ps->p++; return node(ps, R_BOL, -1, -1); }
    if (c == '.' || c == '*' || c == '+' || c == '?' || c == '{') { ps->err = 1; return -1; }
    if (c == '\\') {
        int digit;
        uint32_t v;
        ps->p++;
        v = escape(ps, &digit);
        if (digit) {
            int cls = new_class(ps, 0), n;
            if (cls < 0) return -1;
            add_range(ps, '0', '9');
            n = node(ps, R_CLASS, -1, -1);
            if (n >= 0) ps->nodes[n].cls = cls;
            return n;
        }
        return literal(ps, v);
    }
    return literal(ps, utf8_next(&ps->p, &ps->err));
}

static int number(parser *ps)
{
    int v = 0, any = 0;
    while (*ps->p >= '0' && *ps->p <= '9') {
        v = v * 10 + (*ps->p++ - '0');
        any = 1;
        if (v > 1000) { ps->err = 1; return 0; }
    }
    if (!any) ps->err = 1;
    return v;
}

static int parse_rep(parser *ps)
{
    int a = parse_atom(ps);
    while (!ps->err) {
        int min, max, n;
        int c = *ps->p;
        if (c == '?') { min = 0; max = 1; }
        else if (c == '*') { min = 0; max = -1; }
        else if (c == '+') { min = 1; max = -1; }
        else if (c == '{') {
            ps->p++;
            min = number(ps);
            max = min;
            if (*ps->p == ',') {
                ps->p++;
                max = (*ps->p == '}') ? -1 : number(ps);
            }
            if (*ps->p != '}' || (max >= 0 && max < min)) { ps->err = 1; return -1; }
        } else break;
        ps->p++;
        if (*ps->p == '?') { ps->err = 1; return -1; } /* lazy quantifiers: not needed */
        n = node(ps, R_REP, a, -1);
        if (n < 0) return -1;
        ps->nodes[n].min = min;
        ps->nodes[n].max = max;
        a = n;
    }
    return a;
}

static int parse_cat(parser *ps)
{
    int left = -1;
    while (!ps->err && *ps->p && *ps->p != '|' && *ps->p != ')') {
        int r = parse_rep(ps);
        left = left < 0 ? r : node(ps, R_CAT, left, r);
    }
    return left < 0 ? node(ps, R_EMPTY, -1, -1) : left;
}

static int parse_alt(parser *ps)
{
    int left = parse_cat(ps);
    while (!ps->err && *ps->p == '|') {
        ps->p++;
        left = node(ps, R_ALT, left, parse_cat(ps));
    }
    return left;
}

/* ---- code generation ------------------------------------------------------ */

typedef struct {
    rinst *code;
    int n, cap, err;
    const rnode *nodes;
} emitter;

static int emit(emitter *e, int op, int x, int y)
{
    if (grow((void **)&e->code, &e->cap, e->n + 1, sizeof *e->code)) {
        e->err = 1;
        return 0;
    }
    e->code[e->n].op = (unsigned char)op;
    e->code[e->n].x = x;
    e->code[e->n].y = y;
    return e->n++;
}

static void gen(emitter *e, int ni)
{
    const rnode *n = &e->nodes[ni];
    int i;
    if (e->err || e->n > 100000) { e->err = 1; return; }
    switch (n->kind) {
    case R_CLASS: emit(e, I_CLASS, n->cls, 0); break;
    case R_CAT: gen(e, n->a); gen(e, n->b); break;
    case R_ALT: {
        int split = emit(e, I_SPLIT, 0, 0), jmp;
        e->code[split].x = e->n;
        gen(e, n->a);
        jmp = emit(e, I_JMP, 0, 0);
        if (e->err) return;
        e->code[split].y = e->n;
        gen(e, n->b);
        if (e->err) return;
        e->code[jmp].x = e->n;
        break;
    }
    case R_GROUP:
        if (n->cap >= 0) emit(e, I_SAVE, 2 * n->cap, 0);
        gen(e, n->a);
        if (n->cap >= 0) emit(e, I_SAVE, 2 * n->cap + 1, 0);
        break;
    case R_REP:
        if (n->min > 1 && e->nodes[n->a].kind == R_CLASS) /* \d{6}: one instruction */
            emit(e, I_CLASSN, e->nodes[n->a].cls, n->min);
        else
            for (i = 0; i < n->min; i++) gen(e, n->a);
        if (n->max < 0) {
            int top = emit(e, I_SPLIT, 0, 0);
            if (e->err) return;
            e->code[top].x = e->n;
            gen(e, n->a);
            emit(e, I_JMP, top, 0);
            if (e->err) return;
            e->code[top].y = e->n;
        } else {
            int opt = n->max - n->min, *splits, k;
            if (opt == 0) break;
            splits = malloc((size_t)opt * sizeof *splits);
            if (!splits) { e->err = 1; return; }
            for (k = 0; k < opt && !e->err; k++) {
                splits[k] = emit(e, I_SPLIT, 0, 0);
                if (e->err) break;
                e->code[splits[k]].x = e->n;
                gen(e, n->a);
            }
            if (!e->err)
                for (k = 0; k < opt; k++) e->code[splits[k]].y = e->n;
            free(splits);
        }
        break;
    case R_EOL: emit(e, I_EOL, 0, 0); break;
    case R_BOL: emit(e, I_BOL, 0, 0); break;
    case R_EMPTY: break;
    }
}

static int class_match(const tl_re *re, const rclass *k, uint32_t c);

static int first_merge(rfirst *d, const rfirst *a)
{
    rfirst o = *d;
    d->bits[0] |= a->bits[0];
    d->bits[1] |= a->bits[1];
    d->nonascii |= a->nonascii;
    d->nullable |= a->nullable;
    return memcmp(&o, d, sizeof o) != 0;
}

/* Bitmaps of the classes, then the first sets by fixpoint (loops make the
 * instruction graph cyclic; the sets only grow, so this terminates). */
static int analyse(tl_re *re, int ncls)
{
    int i, changed = 1, c;
    re->ascii = calloc((size_t)(ncls ? ncls : 1), sizeof *re->ascii);
    re->first = calloc((size_t)re->ncode, sizeof *re->first);
    if (!re->ascii || !re->first) return -1;
    for (i = 0; i < ncls; i++)
        for (c = 0; c < 128; c++)
            if (class_match(re, &re->cls[i], (uint32_t)c)) re->ascii[i][c >> 6] |= (uint64_t)1 << (c & 63);
    while (changed) {
        changed = 0;
        for (i = re->ncode - 1; i >= 0; i--) {
            const rinst *in = &re->code[i];
            rfirst *f = &re->first[i];
            switch (in->op) {
            case I_CLASSN:
            case I_CLASS: {
                const rclass *k = &re->cls[in->x];
                rfirst a;
                int r, nonascii = k->neg;
                for (r = 0; r < k->count && !nonascii; r++) nonascii = re->ranges[k->first + r][1] >= 128;
                memset(&a, 0, sizeof a);
                a.bits[0] = re->ascii[in->x][0];
                a.bits[1] = re->ascii[in->x][1];
                a.nonascii = (unsigned char)(nonascii || re->icase);
                changed |= first_merge(f, &a);
                break;
            }
            case I_SPLIT:
                changed |= first_merge(f, &re->first[in->x]);
                changed |= first_merge(f, &re->first[in->y]);
                break;
            case I_JMP: changed |= first_merge(f, &re->first[in->x]); break;
            case I_SAVE: changed |= first_merge(f, &re->first[i + 1]); break;
            default: /* EOL, BOL, MATCH: zero-width */
                if (!f->nullable) { f->nullable = 1; changed = 1; }
            }
        }
    }
    return 0;
}

tl_re *tl_re_compile(const char *pattern, int icase)
{
    parser ps;
    emitter e;
    int root;
    tl_re *re;
    memset(&ps, 0, sizeof ps);
    memset(&e, 0, sizeof e);
    ps.p = (const unsigned char *)pattern;
    root = parse_alt(&ps);
    if (*ps.p) ps.err = 1; /* an unmatched ')' */
    if (!ps.err && root >= 0) {
        e.nodes = ps.nodes;
        gen(&e, root);
        emit(&e, I_MATCH, 0, 0);
    }
    re = calloc(1, sizeof *re);
    if (ps.err || root < 0 || e.err || !re) {
        free(ps.nodes);
        free(ps.cls);
        free(ps.ranges);
        free(e.code);
        free(re);
        return NULL;
    }
    free(ps.nodes);
    re->code = e.code;
    re->ncode = e.n;
    re->ngroups = ps.ngroups;
    re->icase = icase;
    re->cls = ps.cls;
    re->ranges = ps.ranges;
    if (analyse(re, ps.ncls) != 0) {
        tl_re_free(re);
        return NULL;
    }
    {
        size_t k = strlen(pattern);
        if (k > 0 && k < sizeof re->lit && strspn(pattern, "0123456789") == k) {
            memcpy(re->lit, pattern, k + 1);
            re->litlen = k;
        }
    }
    return re;
}

void tl_re_free(tl_re *re)
{
    if (!re) return;
    tl_re_set_free(re->self_set);
    free(re->code);
    free(re->first);
    free(re->ascii);
    free(re->cls);
    free(re->ranges);
    free(re);
}

int tl_re_groups(const tl_re *re) { return re->ngroups; }

/* ---- matching ------------------------------------------------------------ */

static uint32_t lower(uint32_t c)
{
    if ((c >= 'A' && c <= 'Z') || (c >= 0xC0 && c <= 0xDE && c != 0xD7) || (c >= 0x410 && c <= 0x42F))
        return c + 0x20;
    if (c >= 0xFF21 && c <= 0xFF3A) return c + 0x20;
    return c;
}

static uint32_t upper(uint32_t c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 0xE0 && c <= 0xFE && c != 0xF7) || (c >= 0x430 && c <= 0x44F))
        return c - 0x20;
    if (c >= 0xFF41 && c <= 0xFF5A) return c - 0x20;
    return c;
}

static int in_class(const tl_re *re, const rclass *k, uint32_t c)
{
    int i, hit = 0;
    for (i = 0; i < k->count && !hit; i++) {
        const uint32_t *r = re->ranges[k->first + i];
        hit = c >= r[0] && c <= r[1];
    }
    return hit;
}

static int class_match(const tl_re *re, const rclass *k, uint32_t c)
{
    int hit = in_class(re, k, c);
    if (!hit && re->icase) hit = in_class(re, k, lower(c)) || in_class(re, k, upper(c));
    return k->neg ? !hit : hit;
}

typedef struct {
    int pc;   /* -1: a capture restore */
    int slot;
    long sp;  /* position, or the old capture value */
} frame;

static inline int can_start(const rfirst *f, int have, uint32_t c)
{
    if (f->nullable) return 1;
    if (!have) return 0;
    if (c < 128) return (int)((f->bits[c >> 6] >> (c & 63)) & 1);
    return f->nonascii;
}

/* The VM, specialised by the compiler for byte and code-point subjects. */
static inline __attribute__((always_inline)) long run(const tl_re *re, const void *subject, size_t n,
                                                      size_t start, int full, long *caps, const int wide)
{
    frame local[128], *stack = local;
    int cap = 128, top = 0, i;
    long steps = 0, result = -1, slots[2 * TL_RE_MAX_GROUPS];
    const uint32_t *ws = subject;
    const unsigned char *bs = subject;
#define AT(i) (wide ? ws[i] : (uint32_t)bs[i])
    for (i = 0; i < 2 * re->ngroups; i++) slots[i] = -1;
    stack[top].pc = 0;
    stack[top].sp = (long)start;
    stack[top].slot = 0;
    top++;
    while (top > 0 && result < 0) {
        frame f = stack[--top];
        int pc;
        long sp;
        if (f.pc < 0) {
            slots[f.slot] = f.sp;
            continue;
        }
        pc = f.pc;
        sp = f.sp;
        for (;;) {
            const rinst *in = &re->code[pc];
            if (++steps > TL_RE_MAX_STEPS) goto out;
            if (in->op == I_CLASS) {
                if ((size_t)sp < n) {
                    uint32_t c = AT(sp);
                    int hit = c < 128 ? (int)((re->ascii[in->x][c >> 6] >> (c & 63)) & 1)
                                      : class_match(re, &re->cls[in->x], c);
                    if (hit) {
                        sp++;
                        pc++;
                        continue;
                    }
                }
                break;
            }
            if (in->op == I_CLASSN) {
                long k, end = sp + in->y;
                if ((size_t)end > n) break;
                for (k = sp; k < end; k++) {
                    uint32_t c = AT(k);
                    if (!(c < 128 ? (int)((re->ascii[in->x][c >> 6] >> (c & 63)) & 1)
                                  : class_match(re, &re->cls[in->x], c)))
                        break;
                }
                if (k < end) break;
                sp = end;
                pc++;
                continue;
            }
            if (in->op == I_SPLIT) {
                int have = (size_t)sp < n;
                uint32_t c = have ? AT(sp) : 0;
                int gx = can_start(&re->first[in->x], have, c), gy = can_start(&re->first[in->y], have, c);
                if (!gx && !gy) break;
                if (!gy) { pc = in->x; continue; }
                if (!gx) { pc = in->y; continue; }
            }
            if (in->op == I_JMP) { pc = in->x; continue; }
            if (in->op == I_EOL) { if ((size_t)sp != n) break; pc++; continue; }
            if (in->op == I_BOL) { if (sp != 0) break; pc++; continue; }
            if (in->op == I_MATCH) {
                if (full && (size_t)sp != n) break;
                result = sp;
                break;
            }
            /* SPLIT (both ways possible) and SAVE push a frame */
            if (top == cap) {
                frame *ns;
                int nc = cap * 2;
                if (nc > 1 << 20) goto out;
                ns = malloc((size_t)nc * sizeof *ns);
                if (!ns) goto out;
                memcpy(ns, stack, (size_t)top * sizeof *ns);
                if (stack != local) free(stack);
                stack = ns;
                cap = nc;
            }
            if (in->op == I_SPLIT) {
                stack[top].pc = in->y;
                stack[top].sp = sp;
                stack[top].slot = 0;
                top++;
                pc = in->x;
            } else { /* I_SAVE */
                stack[top].pc = -1;
                stack[top].slot = in->x;
                stack[top].sp = slots[in->x];
                top++;
                slots[in->x] = sp;
                pc++;
            }
        }
    }
#undef AT
out:
    if (stack != local) free(stack);
    if (result >= 0 && caps) {
        for (i = 0; i < 2 * TL_RE_MAX_GROUPS; i += 2) {
            int ok = i / 2 < re->ngroups && slots[i] >= 0 && slots[i + 1] >= 0;
            /* slots past ngroups were never set: ok is 0 before they are read */
            caps[i] = ok ? slots[i] : -1;
            caps[i + 1] = ok ? slots[i + 1] : -1;
        }
    }
    return result;
}

long tl_re_match_at(const tl_re *re, const uint32_t *s, size_t n, size_t start, int full, long *caps)
{
    return run(re, s, n, start, full, caps, 1);
}

long tl_re_search(const tl_re *re, const uint32_t *s, size_t n, size_t *mstart, long *caps)
{
    size_t i;
    for (i = 0; i <= n; i++) {
        long end;
        if (!can_start(&re->first[0], i < n, i < n ? s[i] : 0)) continue; /* cannot start here */
        end = tl_re_match_at(re, s, n, i, 0, caps);
        if (end >= 0) {
            *mstart = i;
            return end;
        }
    }
    return -1;
}

long tl_re_match_bytes(const tl_re *re, const char *s, size_t n, int full, long *caps)
{
    if (re->litlen) { /* a plain digit string: no groups, one way to match */
        if (n < re->litlen || memcmp(s, re->lit, re->litlen) != 0 || (full && n != re->litlen)) return -1;
        if (caps) {
            int i;
            for (i = 0; i < 2 * TL_RE_MAX_GROUPS; i++) caps[i] = -1;
        }
        return (long)re->litlen;
    }
    /* most metadata prefixes (IDD, trunk prefix, leading digits) fail on
     * the first character: decide those before setting up the VM */
    if (!can_start(&re->first[0], n > 0, n > 0 ? (unsigned char)s[0] : 0)) return -1;
    return run(re, s, n, 0, full, caps, 0);
}

/* ---- several patterns at once --------------------------------------------- */

#define SET_MAX 16

typedef struct {
    int *ids;   /* sorted NFA positions (see set_build) */
    int n;
} tset;

static int cmp_int(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }

static pthread_mutex_t dfa_mu = PTHREAD_MUTEX_INITIALIZER;

/* The DFA of a set runs all its patterns in one pass over a digit string;
 * accept[state] has bit i set when pattern i matches the whole string. */
struct tl_re_set {
    tl_re *re[SET_MAX];
    int n;
    int16_t (*next)[10];
    uint16_t *accept;
    int nstates;
    int built; /* 0 not yet, 1 DFA ready, -1 too big: run the patterns one by one */
};

tl_re_set *tl_re_set_new(tl_re *const *res, int n)
{
    tl_re_set *set;
    if (n < 0 || n > SET_MAX || !(set = calloc(1, sizeof *set))) return NULL;
    memcpy(set->re, res, (size_t)n * sizeof *res);
    set->n = n;
    return set;
}

void tl_re_set_free(tl_re_set *set)
{
    if (!set) return;
    free(set->next);
    free(set->accept);
    free(set);
}

typedef struct {
    const tl_re_set *set;
    int *base[SET_MAX]; /* position id of (pattern, pc); CLASSN takes y ids */
    unsigned *seen, gen;
    int *ids, n, cap;
    unsigned acc;
} set_build;

static int set_closure(set_build *b, int p, int pc, int k)
{
    const tl_re *re = b->set->re[p];
    const rinst *in = &re->code[pc];
    int id = b->base[p][pc] + k;
    if (b->seen[id] == b->gen) return 0;
    b->seen[id] = b->gen;
    switch (in->op) {
    case I_CLASS:
    case I_CLASSN:
        if (b->n == b->cap) return -1;
        b->ids[b->n++] = id;
        return 0;
    case I_SPLIT:
        if (set_closure(b, p, in->x, 0) < 0) return -1;
        return set_closure(b, p, in->y, 0);
    case I_JMP: return set_closure(b, p, in->x, 0);
    case I_SAVE: return set_closure(b, p, pc + 1, 0);
    case I_MATCH: b->acc |= 1u << p; return 0;
    default: return -1;
    }
}

/* position id -> (pattern, pc, k) */
static void set_locate(const set_build *b, int id, int *p, int *pc, int *k)
{
    int i;
    for (i = b->set->n - 1; i >= 0; i--) {
        if (!b->set->re[i]) continue;
        if (id >= b->base[i][0]) {
            int lo = 0, hi = b->set->re[i]->ncode - 1;
            while (lo < hi) { /* last pc whose base <= id */
                int mid = (lo + hi + 1) / 2;
                if (b->base[i][mid] <= id) lo = mid;
                else hi = mid - 1;
            }
            *p = i;
            *pc = lo;
            *k = id - b->base[i][lo];
            return;
        }
    }
    *p = *pc = *k = 0;
}

#define SET_MAX_STATES 2048
#define SET_MAX_IDS 2048

static int set_build_dfa(tl_re_set *set)
{
    set_build b;
    tset *states = NULL;
    int total = 0, i, pc, cur, fail = 0, ok = -1;
    memset(&b, 0, sizeof b);
    b.set = set;
    for (i = 0; i < set->n; i++) {
        const tl_re *re = set->re[i];
        if (!re) continue;
        if (!(b.base[i] = malloc((size_t)re->ncode * sizeof(int)))) goto out;
        for (pc = 0; pc < re->ncode; pc++) {
            b.base[i][pc] = total;
            total += re->code[pc].op == I_CLASSN ? re->code[pc].y : 1;
            if (re->code[pc].op == I_EOL || re->code[pc].op == I_BOL) goto out;
        }
    }
    b.seen = calloc((size_t)(total ? total : 1), sizeof *b.seen);
    b.ids = malloc(SET_MAX_IDS * sizeof *b.ids);
    b.cap = SET_MAX_IDS;
    states = calloc(SET_MAX_STATES, sizeof *states);
    set->next = malloc(SET_MAX_STATES * sizeof *set->next);
    set->accept = calloc(SET_MAX_STATES, sizeof *set->accept);
    if (!b.seen || !b.ids || !states || !set->next || !set->accept) goto out;
    b.gen = 1;
    for (i = 0; i < set->n; i++)
        if (set->re[i] && set_closure(&b, i, 0, 0) < 0) goto out;
    qsort(b.ids, (size_t)b.n, sizeof *b.ids, cmp_int);
    if (!(states[0].ids = malloc((size_t)(b.n ? b.n : 1) * sizeof(int)))) goto out;
    memcpy(states[0].ids, b.ids, (size_t)b.n * sizeof(int));
    states[0].n = b.n;
    set->accept[0] = (uint16_t)b.acc;
    set->nstates = 1;
    for (cur = 0; cur < set->nstates && !fail; cur++) {
        int digit;
        for (digit = 0; digit < 10 && !fail; digit++) {
            int j, t;
            b.n = 0;
            b.acc = 0;
            b.gen++;
            for (j = 0; j < states[cur].n && !fail; j++) {
                int p, ppc, k;
                const rinst *in;
                set_locate(&b, states[cur].ids[j], &p, &ppc, &k);
                in = &set->re[p]->code[ppc];
                if (!((set->re[p]->ascii[in->x][0] >> ('0' + digit)) & 1)) continue;
                if (in->op == I_CLASSN && k + 1 < in->y) fail = set_closure(&b, p, ppc, k + 1) < 0;
                else fail = set_closure(&b, p, ppc + 1, 0) < 0;
            }
            if (fail) break;
            if (b.n == 0 && !b.acc) {
                set->next[cur][digit] = -1;
                continue;
            }
            qsort(b.ids, (size_t)b.n, sizeof *b.ids, cmp_int);
            for (t = 0; t < set->nstates; t++)
                if (states[t].n == b.n && set->accept[t] == b.acc &&
                    memcmp(states[t].ids, b.ids, (size_t)b.n * sizeof(int)) == 0)
                    break;
            if (t == set->nstates) {
                if (t == SET_MAX_STATES || !(states[t].ids = malloc((size_t)(b.n ? b.n : 1) * sizeof(int)))) {
                    fail = 1;
                    break;
                }
                memcpy(states[t].ids, b.ids, (size_t)b.n * sizeof(int));
                states[t].n = b.n;
                set->accept[t] = (uint16_t)b.acc;
                set->nstates++;
            }
            set->next[cur][digit] = (int16_t)t;
        }
    }
    ok = fail ? -1 : 0;
out:
    if (states) {
        for (i = 0; i < SET_MAX_STATES; i++) free(states[i].ids);
        free(states);
    }
    for (i = 0; i < SET_MAX; i++) free(b.base[i]);
    free(b.seen);
    free(b.ids);
    if (ok != 0) {
        free(set->next);
        free(set->accept);
        set->next = NULL;
        set->accept = NULL;
    }
    return ok;
}

unsigned tl_re_set_full_digits(tl_re_set *set, const char *s, size_t n)
{
    int built = __atomic_load_n(&set->built, __ATOMIC_ACQUIRE), st = 0, i;
    size_t k;
    unsigned mask = 0;
    if (!built) {
        pthread_mutex_lock(&dfa_mu);
        if (!(built = set->built)) {
            built = set_build_dfa(set) == 0 ? 1 : -1;
            __atomic_store_n(&set->built, built, __ATOMIC_RELEASE);
        }
        pthread_mutex_unlock(&dfa_mu);
    }
    if (built < 0) { /* too many states: the backtracking VM, pattern by pattern */
        for (i = 0; i < set->n; i++)
            if (set->re[i] && tl_re_match_bytes(set->re[i], s, n, 1, NULL) == (long)n) mask |= 1u << i;
        return mask;
    }
    for (k = 0; k < n; k++) {
        unsigned v = (unsigned char)s[k] - '0';
        if (v > 9 || (st = set->next[st][v]) < 0) return 0;
    }
    return set->accept[st];
}

int tl_re_full_digits(tl_re *re, const char *s, size_t n)
{
    tl_re_set *set = __atomic_load_n(&re->self_set, __ATOMIC_ACQUIRE);
    if (!set) {
        pthread_mutex_lock(&dfa_mu);
        if (!(set = re->self_set)) {
            set = tl_re_set_new(&re, 1);
            if (set) __atomic_store_n(&re->self_set, set, __ATOMIC_RELEASE);
        }
        pthread_mutex_unlock(&dfa_mu);
        if (!set) return tl_re_match_bytes(re, s, n, 1, NULL) == (long)n;
    }
    return (int)(tl_re_set_full_digits(set, s, n) & 1u);
}
