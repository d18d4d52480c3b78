/*
 * segbench.c - telua's segment counter on the benchmark bodies (one per
 * line of FILE): tl_seg_count for every body, best of five runs of PASSES
 * passes; characters are Unicode code points of the input.
 *   build/segbench FILE [passes]
 */
#include "../src/core/segments.h"

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
    static char line[8192];
    char **texts = NULL;
    size_t n = 0, cap = 0, i, *lens, chars = 0, segs = 0;
    int passes = argc > 2 ? atoi(argv[2]) : 20, p, run;
    double best = 1e30;
    if (argc < 2 || !(f = fopen(argv[1], "r"))) {
        fprintf(stderr, "usage: segbench FILE [passes]\n");
        return 2;
    }
    while (fgets(line, sizeof line, f)) {
        size_t l = strcspn(line, "\n");
        line[l] = 0;
        if (!l) continue;
        if (n == cap) texts = realloc(texts, (cap = cap ? cap * 2 : 1024) * sizeof *texts);
        texts[n++] = strdup(line);
    }
    fclose(f);
    lens = malloc(n * sizeof *lens);
    for (i = 0; i < n; i++) {
        const unsigned char *s = (const unsigned char *)texts[i];
        lens[i] = strlen(texts[i]);
        for (; *s; s++) chars += (*s & 0xC0) != 0x80;
    }
    for (run = 0; run < 5; run++) {
        double t0 = now(), dt;
        segs = 0;
        for (p = 0; p < passes; p++)
            for (i = 0; i < n; i++) {
                tl_seg_result r;
                if (tl_seg_count(texts[i], lens[i], TL_SEG_AUTO, &r, NULL, NULL, NULL) == TL_SEG_OK) segs += r.segments;
            }
        dt = now() - t0;
        if (dt < best) best = dt;
    }
    printf("%-34s%12.0f chars/s   segments %zu\n", "telua C (tl_seg_count)", (double)chars * passes / best,
           segs / (size_t)passes);
    return 0;
}
