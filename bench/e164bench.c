/*
 * e164bench.c - telua's E.164 parser on the benchmark inputs: parse,
 * validate and E.164 for every line "input<TAB>region" of FILE, repeated.
 * Prints numbers per second and a checksum of the answers (count valid).
 *   build/e164bench FILE [passes]
 */
#include "../src/core/e164.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    FILE *f;
    char line[1024], **in = NULL, **reg = NULL;
    size_t n = 0, cap = 0, i, *lens;
    int passes = argc > 2 ? atoi(argv[2]) : 20, p, valid = 0, run;
    double best = 1e30;
    if (argc < 2 || !(f = fopen(argv[1], "r"))) {
        fprintf(stderr, "usage: e164bench FILE [passes]\n");
        return 2;
    }
    while (fgets(line, sizeof line, f)) {
        char *tab = strchr(line, '\t'), *nl;
        if (!tab) continue;
        *tab = 0;
        if ((nl = strchr(tab + 1, '\n'))) *nl = 0;
        if (n == cap) {
            cap = cap ? cap * 2 : 1024;
            in = realloc(in, cap * sizeof *in);
            reg = realloc(reg, cap * sizeof *reg);
        }
        in[n] = strdup(line);
        reg[n] = strdup(tab + 1);
        n++;
    }
    fclose(f);
    lens = malloc(n * sizeof *lens);
    for (i = 0; i < n; i++) lens[i] = strlen(in[i]);
    tl_e164_init();
    for (run = 0; run < 5; run++) { /* best of five runs of `passes` passes */
        double t0 = now(), dt;
        valid = 0;
        for (p = 0; p < passes; p++)
            for (i = 0; i < n; i++) {
                tl_e164_number num;
                if (tl_e164_parse(in[i], lens[i], reg[i], &num) == TL_E164_OK && num.valid) valid++;
            }
        dt = now() - t0;
        if (dt < best) best = dt;
    }
    printf("telua C (tl_e164_parse)      %10.0f numbers/s   valid %d of %zu\n", (double)n * passes / best,
           valid / passes, n);
    return 0;
}
