/*
 * cli.h - the command line's shared parts: number options and one-line
 * errors (getopt_long does the parsing; see main.c and sandbox.c).
 */
#ifndef TELUA_CLI_H
#define TELUA_CLI_H

#include <getopt.h>

/* Parses v as a whole decimal number in [min, max] into *out. On failure
 * prints "telua CMD: --OPT wants ..." on stderr and returns -1. */
int tl_cli_long(const char *cmd, const char *opt, const char *v, long min, long max, long *out);

/* Parses v as a decimal or fractional number >= min into *out (same
 * error rules). */
int tl_cli_double(const char *cmd, const char *opt, const char *v, double min, double *out);

/* The one line for what getopt_long refused (c is '?', or ':' for a missing
 * value with an optstring that starts with ':'; argv[optind-1] the offender); returns 2, the exit status of a usage error. */
int tl_cli_refused(const char *cmd, char **argv, int c);

#endif
