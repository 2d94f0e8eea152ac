/*
 * C ABI tests for training: every rk_trainer_* function and its error paths,
 * on a tiny backbone prepared by scripts/test-c.sh.
 *
 * Usage: test_trainer WORK_DIR
 *   WORK_DIR/tiny/        a tiny backbone (config.json, model.safetensors, tokenizer.json)
 *   WORK_DIR/pairs.jsonl  a few preference pairs
 * Prints "N passed, M failed" and exits non-zero on any failure.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rewardkit.h"

static int passed = 0, failed = 0;

#define CHECK(cond, ...)                                                          \
    do {                                                                          \
        if (cond) {                                                               \
            passed++;                                                             \
        } else {                                                                  \
            failed++;                                                             \
            fprintf(stderr, "%s:%d: FAILED: %s: ", __FILE__, __LINE__, #cond);    \
            fprintf(stderr, __VA_ARGS__);                                         \
            fputc('\n', stderr);                                                  \
        }                                                                         \
    } while (0)

/* Check `err` carries `code`, then free it. */
static void expect_code(rk_error *err, uint32_t code, const char *what) {
    CHECK(err != NULL, "%s: expected error %u, got success", what, (unsigned)code);
    if (err) {
        CHECK(rk_error_code(err) == code, "%s: code %u, expected %u (%s)", what,
              (unsigned)rk_error_code(err), (unsigned)code, rk_error_message(err));
        CHECK(strlen(rk_error_message(err)) > 0, "%s: empty message", what);
        rk_error_free(err);
    }
}

static void expect_ok(rk_error *err, const char *what) {
    CHECK(err == NULL, "%s: %s", what, err ? rk_error_message(err) : "");
    rk_error_free(err);
}

/* optimizer_piece = 100 cuts the tiny model's matrices, so the optimizer
 * updates them through views of the engine's buffers: run under valgrind. */
static const char *RECIPE =
    "name = \"c-test\"\n"
    "[model]\nmax_length = 48\n"
    "[loss]\nkind = \"bt\"\n"
    "[optimizer]\nlr = 3e-3\nclip = 1.0\n"
    "[training]\nbatch_size = 2\nepochs = 2\nthreads = 1\noptimizer_piece = 100\n";

struct progress_log {
    int calls;
    int stop_at;
    uint64_t last_step;
    int finite;
};

static int on_progress(void *user_data, const rk_progress *p) {
    struct progress_log *log = user_data;
    log->calls++;
    log->last_step = p->step;
    if (!isfinite(p->loss) || !isfinite(p->grad_norm) || p->total_steps == 0) log->finite = 0;
    return (log->stop_at > 0 && log->calls >= log->stop_at) ? 1 : 0;
}

static char *join(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *s = malloc(n);
    snprintf(s, n, "%s/%s", dir, name);
    return s;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s WORK_DIR\n", argv[0]);
        return 2;
    }
    const char *work = argv[1];
    char *tiny = join(work, "tiny");
    char *pairs = join(work, "pairs.jsonl");
    char *graphs = join(work, "trainer-work");
    char *out = join(work, "trained");
    char *online_out = join(work, "online-bundle");
    char *recipe_file = join(work, "recipe.toml");

    /* Argument errors; *out stays untouched. */
    rk_trainer *t = (rk_trainer *)(uintptr_t)0x1;
    expect_code(rk_trainer_new(NULL, tiny, RK_INIT_BACKBONE, graphs, &t), RK_ERR_NULL_ARGUMENT, "NULL recipe");
    expect_code(rk_trainer_new(RECIPE, NULL, RK_INIT_BACKBONE, graphs, &t), RK_ERR_NULL_ARGUMENT, "NULL init_dir");
    expect_code(rk_trainer_new(RECIPE, tiny, RK_INIT_BACKBONE, graphs, NULL), RK_ERR_NULL_ARGUMENT, "NULL out");
    expect_code(rk_trainer_new(RECIPE, tiny, 9, graphs, &t), RK_ERR_INVALID_ARGUMENT, "bad init_kind");
    expect_code(rk_trainer_new("[loss]\nkind = \"bt\"\n[optimizer]\nlr = 1e-3\nbogus = 1\n", tiny, RK_INIT_BACKBONE, graphs, &t),
                RK_ERR_INVALID_ARGUMENT, "unknown recipe key");
    expect_code(rk_trainer_new("\xff\xfe", tiny, RK_INIT_BACKBONE, graphs, &t), RK_ERR_INVALID_UTF8, "invalid UTF-8 recipe");
    expect_code(rk_trainer_new_from_file("/no/such/recipe.toml", tiny, RK_INIT_BACKBONE, graphs, &t), RK_ERR_IO, "missing recipe file");
    CHECK(t == (rk_trainer *)(uintptr_t)0x1, "out written on error");
    rk_trainer_free(NULL);

    /* Online steps on caller-supplied pairs. */
    t = NULL;
    expect_ok(rk_trainer_new(RECIPE, tiny, RK_INIT_BACKBONE, graphs, &t), "rk_trainer_new");
    if (t) {
        const char *prompts[] = {"explain water please", "explain fire please"};
        const char *chosen[] = {"water is good and helpful.", "fire is hot, here is a correct answer."};
        const char *rejected[] = {"no. wrong.", "i will not help."};
        const float strengths[] = {2.0f, 1.0f};
        float first = NAN, loss = NAN;
        expect_ok(rk_trainer_step(t, 2, prompts, chosen, rejected, NULL, &first), "step");
        CHECK(isfinite(first), "first loss %f", first);
        for (int i = 0; i < 8; i++) expect_ok(rk_trainer_step(t, 2, prompts, chosen, rejected, strengths, &loss), "step");
        CHECK(loss < first, "loss did not fall over 9 steps on the same pairs: %f -> %f", first, loss);
        expect_ok(rk_trainer_step(t, 2, prompts, chosen, rejected, NULL, NULL), "step without out_loss");

        float kept = 123.0f;
        expect_code(rk_trainer_step(t, 0, prompts, chosen, rejected, NULL, &kept), RK_ERR_EMPTY_BATCH, "n = 0");
        expect_code(rk_trainer_step(NULL, 2, prompts, chosen, rejected, NULL, &kept), RK_ERR_NULL_ARGUMENT, "NULL trainer");
        expect_code(rk_trainer_step(t, 2, NULL, chosen, rejected, NULL, &kept), RK_ERR_NULL_ARGUMENT, "NULL prompts");
        const char *bad_chosen[] = {"ok", NULL};
        rk_error *err = rk_trainer_step(t, 2, prompts, bad_chosen, rejected, NULL, &kept);
        CHECK(err && strstr(rk_error_message(err), "chosen[1]") != NULL, "NULL element not named: %s",
              err ? rk_error_message(err) : "(success)");
        rk_error_free(err);
        const float bad_strengths[] = {1.0f, -2.0f};
        expect_code(rk_trainer_step(t, 2, prompts, chosen, rejected, bad_strengths, &kept), RK_ERR_INVALID_ARGUMENT,
                    "negative strength");
        const char *bad_utf8[] = {"fine", "\xc3\x28"};
        expect_code(rk_trainer_step(t, 2, bad_utf8, chosen, rejected, NULL, &kept), RK_ERR_INVALID_UTF8, "invalid UTF-8 prompt");
        CHECK(kept == 123.0f, "out_loss written on error");

        /* Save, then score with the saved bundle: the trained preference shows. */
        expect_ok(rk_trainer_save_bundle(t, online_out), "save bundle");
        expect_code(rk_trainer_save_bundle(t, NULL), RK_ERR_NULL_ARGUMENT, "NULL out_dir");
        rk_scorer *s = NULL;
        expect_ok(rk_scorer_open(online_out, NULL, &s), "open saved bundle");
        if (s) {
            float p = 0.0f;
            expect_ok(rk_scorer_compare(s, prompts[0], chosen[0], rejected[0], &p), "compare");
            CHECK(p > 0.5f, "trained bundle prefers the rejected answer: %f", p);
            rk_scorer_free(s);
        }

        /* A run over a data file, stopped by the callback after 2 steps. */
        struct progress_log log = {0, 2, 0, 1};
        expect_ok(rk_trainer_run(t, pairs, NULL, out, on_progress, &log), "run (stopped)");
        CHECK(log.calls == 2 && log.last_step == 12, "callback calls %d, last step %llu (10 online steps before)", log.calls,
              (unsigned long long)log.last_step);
        CHECK(log.finite, "non-finite progress values");
        /* A full run without a callback, with eval data. */
        expect_ok(rk_trainer_run(t, pairs, pairs, out, NULL, NULL), "run");
        expect_code(rk_trainer_run(t, "/no/such/data.jsonl", NULL, out, NULL, NULL), RK_ERR_IO, "missing data");
        expect_code(rk_trainer_run(t, NULL, NULL, out, NULL, NULL), RK_ERR_NULL_ARGUMENT, "NULL data");
        rk_trainer_free(t);
    }

    /* From a recipe file, continuing from the bundle just trained. */
    FILE *f = fopen(recipe_file, "w");
    if (f) {
        fputs(RECIPE, f);
        fclose(f);
    }
    t = NULL;
    expect_ok(rk_trainer_new_from_file(recipe_file, out, RK_INIT_BUNDLE, graphs, &t), "rk_trainer_new_from_file from a bundle");
    if (t) {
        const char *prompts[] = {"explain a tree"};
        const char *chosen[] = {"a tree is good."};
        const char *rejected[] = {"no."};
        float loss = NAN;
        expect_ok(rk_trainer_step(t, 1, prompts, chosen, rejected, NULL, &loss), "step from bundle");
        CHECK(isfinite(loss), "loss %f", loss);
        rk_trainer_free(t);
    }

    free(tiny);
    free(pairs);
    free(graphs);
    free(out);
    free(online_out);
    free(recipe_file);
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
