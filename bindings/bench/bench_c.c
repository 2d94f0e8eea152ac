/*
 * Latency of single-pair rk_scorer_score calls from C, the baseline for the
 * bindings' overhead (bindings/bench/compare.sh).
 *
 *   bench_c BUNDLE_DIR N
 *
 * Opens the bundle with default options, makes WARMUP untimed calls, then
 * times N calls one by one and prints
 *   median_us=M p99_us=P
 * where the percentiles are the nearest-rank values of the sorted times.
 * Every binding's bench scores the same pair the same way.
 */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "rewardkit.h"

enum { WARMUP = 20 };

static const char *const PROMPT = "What is the capital of France?";
static const char *const RESPONSE = "The capital of France is Paris.";

static int fail(const char *what, rk_error *err) {
    fprintf(stderr, "bench_c: %s failed: error %u: %s\n", what, (unsigned)rk_error_code(err),
            rk_error_message(err));
    rk_error_free(err);
    return 1;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Nearest rank: the smallest value with at least pct% of the samples at or below it. */
static double percentile(const double *sorted, size_t n, size_t pct) {
    size_t rank = (pct * n + 99) / 100; /* ceil(pct / 100 * n) */
    return sorted[rank < 1 ? 0 : rank - 1];
}

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

int main(int argc, char **argv) {
    if (argc != 3 || atol(argv[2]) <= 0) {
        fprintf(stderr, "usage: %s BUNDLE_DIR N\n", argv[0]);
        return 2;
    }
    size_t n = (size_t)atol(argv[2]);
    double *us = malloc(n * sizeof *us);
    if (us == NULL) {
        fprintf(stderr, "bench_c: out of memory\n");
        return 1;
    }

    rk_scorer *scorer = NULL;
    rk_error *err = rk_scorer_open(argv[1], NULL, &scorer);
    if (err != NULL)
        return fail("rk_scorer_open", err);

    int status = 0;
    float reward = 0.0f;
    for (int i = 0; i < WARMUP && status == 0; i++)
        if ((err = rk_scorer_score(scorer, PROMPT, RESPONSE, &reward)) != NULL)
            status = fail("rk_scorer_score", err);
    for (size_t i = 0; i < n && status == 0; i++) {
        double t0 = now_us();
        err = rk_scorer_score(scorer, PROMPT, RESPONSE, &reward);
        us[i] = now_us() - t0;
        if (err != NULL)
            status = fail("rk_scorer_score", err);
    }
    if (status == 0) {
        qsort(us, n, sizeof *us, cmp_double);
        printf("median_us=%.1f p99_us=%.1f\n", percentile(us, n, 50), percentile(us, n, 99));
    }
    rk_scorer_free(scorer);
    free(us);
    return status;
}
