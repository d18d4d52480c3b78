/*
 * clock.h - the host's clocks: monotonic nanoseconds for budgets and
 * deadlines (never the wall clock, which jumps), and a sleep that
 * finishes its time across signals.
 */
#ifndef TELUA_CLOCK_H
#define TELUA_CLOCK_H

/* CLOCK_MONOTONIC in nanoseconds. */
long long tl_now_ns(void);

/* Sleeps `seconds` (fractions allowed; <= 0 returns at once). */
void tl_sleep_s(double seconds);

#endif
