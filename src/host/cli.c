/*
 * cli.c - see cli.h.
 */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int tl_cli_long(const char *cmd, const char *opt, const char *v, long min, long max, long *out)
{
    char *end;
    long n;
    errno = 0;
    n = strtol(v, &end, 10);
    if (errno || end == v || *end || n < min || n > max) {
        fprintf(stderr, "telua %s: --%s wants a whole number from %ld to %ld, got '%s'\n", cmd, opt, min, max, v);
        return -1;
    }
    *out = n;
    return 0;
}

int tl_cli_double(const char *cmd, const char *opt, const char *v, double min, double *out)
{
    char *end;
    double n;
    errno = 0;
    n = strtod(v, &end);
    if (errno || end == v || *end || !(n >= min)) {
        fprintf(stderr, "telua %s: --%s wants a number of at least %g, got '%s'\n", cmd, opt, min, v);
        return -1;
    }
    *out = n;
    return 0;
}

int tl_cli_refused(const char *cmd, char **argv, int c)
{
    const char *arg = optind > 0 ? argv[optind - 1] : "?";
    if (c == ':') { /* optstring starts with ':' */
        fprintf(stderr, "telua %s: %s needs a value (telua %s --help)\n", cmd, arg, cmd);
        return 2;
    }
    fprintf(stderr, "telua %s: unknown option %s (telua %s --help lists them)\n", cmd, arg, cmd);
    return 2;
}
