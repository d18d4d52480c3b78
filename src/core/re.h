/*
 * re.h - the small backtracking regex engine behind telua's E.164 parser.
 *
 * It covers the dialect libphonenumber's metadata is written in (digits,
 * \d, classes with ranges, (?:...), (...), |, ?, {n}, {n,m}) plus what the
 * parser's own fixed patterns need (*, +, {n,}, $, ^ at the start, literal
 * non-ASCII characters written in UTF-8, \t and escaped punctuation).
 *
 * Semantics are those of JavaScript's RegExp and Java's Matcher, which the
 * metadata was written for: alternatives are tried left to right and
 * quantifiers are greedy, so a prefix match returns the first match in that
 * priority order (leftmost-first), not the longest one. Subjects are arrays
 * of Unicode code points; \d is ASCII 0-9 as in JavaScript.
 *
 * Matching is bounded: a match that would need more than TL_RE_MAX_STEPS
 * backtracking steps reports no match rather than running away.
 */
#ifndef TELUA_RE_H
#define TELUA_RE_H

#include <stddef.h>
#include <stdint.h>

#define TL_RE_MAX_GROUPS 8
#define TL_RE_MAX_STEPS 200000

typedef struct tl_re tl_re;

/* Compiles a pattern (UTF-8). Returns NULL when the pattern is outside the
 * dialect or memory runs out. icase folds ASCII, Latin-1, Cyrillic and
 * fullwidth letters on both sides. */
tl_re *tl_re_compile(const char *pattern, int icase);
void tl_re_free(tl_re *re);

/* Number of capturing groups. */
int tl_re_groups(const tl_re *re);

/*
 * Runs re on s[0..n) starting at `start` only (no scanning). full: the match
 * must end at n (Java matches()); otherwise the first match in priority order
 * (Java lookingAt()). Returns the end of the match, or -1. caps, when not
 * NULL, receives 2 * TL_RE_MAX_GROUPS offsets (-1 for groups that did not
 * take part); caps[0..1] is group 1.
 */
long tl_re_match_at(const tl_re *re, const uint32_t *s, size_t n, size_t start, int full, long *caps);

/* JavaScript's String.prototype.search + match: the leftmost start at which
 * re matches; its start in *mstart. Returns the end or -1. */
long tl_re_search(const tl_re *re, const uint32_t *s, size_t n, size_t *mstart, long *caps);

/* Same on an ASCII/byte string (metadata patterns on digit strings). */
long tl_re_match_bytes(const tl_re *re, const char *s, size_t n, int full, long *caps);

/* Full match of an ASCII-digit string through a DFA built from re on first
 * use (a one-pattern tl_re_set, below; thread-safe; the backtracking VM for
 * patterns a small DFA cannot hold). Same answer as
 * tl_re_match_bytes(re, s, n, 1, NULL) == n. */
int tl_re_full_digits(tl_re *re, const char *s, size_t n);

/* Up to 16 patterns (NULL entries never match) run together: one DFA pass
 * over an ASCII-digit string gives the mask of the patterns that match all
 * of it (bit i for res[i]). Built on first use, thread-safe. The patterns
 * must outlive the set. */
typedef struct tl_re_set tl_re_set;
tl_re_set *tl_re_set_new(tl_re *const *res, int n);
void tl_re_set_free(tl_re_set *set);
unsigned tl_re_set_full_digits(tl_re_set *set, const char *s, size_t n);

#endif
