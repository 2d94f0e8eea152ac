/*
 * The C test program for rewardkit's C ABI (include/rewardkit.h).
 *
 * Calls every public function, and every error path it can reach, through the
 * header exactly as a C user would. No test framework: CHECK macros count
 * passes and failures, print one line per failure, and the program ends with
 * one line "N passed, M failed" (exit status 1 on any failure).
 *
 * Usage: test_rewardkit WORKDIR
 *
 * WORKDIR is prepared by scripts/test-c.sh and holds:
 *   bundle/                  a scalar-reward bundle
 *   bundle5/                 a five-output (HelpSteer2) bundle
 *   bundle5w/                bundle5 with reward_weights {0.5, 1, 0, 0, -0.25}
 *   broken-no-model/         bundle/ without model.onnx
 *   broken-truncated-model/  bundle/ with the first half of model.onnx only
 *   broken-bad-json/         bundle/ with a malformed rewardkit.json
 *   broken-output-mismatch/  rewardkit.json names 2 outputs, the graph has 1
 *   broken-no-tokenizer/     bundle/ without tokenizer.json
 *   broken-newer-version/    rewardkit.json has format_version 99
 *
 * Environment: RK_TEST_QUICK=1 runs fewer repetitions in the concurrency test
 * (for the valgrind run).
 */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rewardkit.h"

/* ------------------------------------------------------------------------ */
/* Checks                                                                    */

static int g_passed;
static int g_failed;

#if defined(__GNUC__)
static void fail_at(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#endif

/* Count a failure and print "file:line: FAILED: ..." on stderr. */
static void fail_at(const char *file, int line, const char *fmt, ...) {
    va_list ap;
    g_failed++;
    fprintf(stderr, "%s:%d: FAILED: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

#define CHECK(cond)                                                 \
    do {                                                            \
        if (cond)                                                   \
            g_passed++;                                             \
        else                                                        \
            fail_at(__FILE__, __LINE__, "CHECK(%s)", #cond);        \
    } while (0)

#define CHECK_STR_EQ(a, b)                                                              \
    do {                                                                                \
        const char *a_ = (a), *b_ = (b);                                                \
        if (a_ && b_ && strcmp(a_, b_) == 0)                                            \
            g_passed++;                                                                 \
        else                                                                            \
            fail_at(__FILE__, __LINE__, "%s == %s: \"%s\" vs \"%s\"", #a, #b,           \
                    a_ ? a_ : "(null)", b_ ? b_ : "(null)");                            \
    } while (0)

#define CHECK_NEAR(a, b, tol)                                                           \
    do {                                                                                \
        double a_ = (a), b_ = (b);                                                      \
        if (fabs(a_ - b_) <= (tol))                                                     \
            g_passed++;                                                                 \
        else                                                                            \
            fail_at(__FILE__, __LINE__, "%s ~= %s: %.9g vs %.9g (tol %g)", #a, #b, a_,  \
                    b_, (double)(tol));                                                 \
    } while (0)

/* `call` must succeed (return NULL); on failure print the error and free it. */
#define CHECK_OK(call) check_ok((call), #call, __FILE__, __LINE__)
static int check_ok(rk_error *err, const char *what, const char *file, int line) {
    if (err == NULL) {
        g_passed++;
        return 1;
    }
    fail_at(file, line, "%s returned error %u: %s", what, (unsigned)rk_error_code(err),
            rk_error_message(err));
    rk_error_free(err);
    return 0;
}

/* `call` must fail with `code`, a non-empty message that contains `needle`
 * (unless NULL); the error is freed. */
#define CHECK_ERR(call, code, needle) check_err((call), (code), (needle), #call, __FILE__, __LINE__)
static void check_err(rk_error *err, uint32_t code, const char *needle, const char *what,
                      const char *file, int line) {
    if (err == NULL) {
        fail_at(file, line, "%s succeeded, expected error %u", what, (unsigned)code);
        return;
    }
    const char *msg = rk_error_message(err);
    uint32_t got = rk_error_code(err);
    if (got != code)
        fail_at(file, line, "%s: error code %u, expected %u (message: %s)", what,
                (unsigned)got, (unsigned)code, msg);
    else if (msg == NULL || msg[0] == '\0')
        fail_at(file, line, "%s: error %u has an empty message", what, (unsigned)got);
    else if (needle != NULL && strstr(msg, needle) == NULL)
        fail_at(file, line, "%s: message \"%s\" does not mention \"%s\"", what, msg, needle);
    else
        g_passed++;
    rk_error_free(err);
}

/* ------------------------------------------------------------------------ */
/* Fixtures                                                                  */

static const char *g_workdir;
static char g_bundle[4096];
static char g_bundle5[4096];
static char g_bundle5w[4096];

static const char *work_path(char *buf, size_t size, const char *name) {
    snprintf(buf, size, "%s/%s", g_workdir, name);
    return buf;
}

/* A value rk_scorer_open must never write on error. */
static char g_sentinel_storage;
#define SENTINEL_SCORER ((rk_scorer *)(void *)&g_sentinel_storage)
#define SENTINEL_FLOAT (-12345.5f)

/* Pairs of quite different lengths, so batching sorts and pads. */
#define NPAIRS 5
static const char *const PROMPTS[NPAIRS] = {
    "what is the sun?",
    "User: tell me about cats\n\nAssistant: cats are good.\n\nUser: and dogs?",
    "write one list",
    "",
    "explain fire",
};
static const char *const RESPONSES[NPAIRS] = {
    "the sun is a star.",
    "dogs are good too, and they like to help people find water.",
    "one two three",
    "no",
    "fire is hot. fire is hot. fire is hot. fire is hot. fire is hot. fire is hot.",
};

static rk_scorer *open_ok(const char *dir, const rk_scorer_options *opts) {
    rk_scorer *s = NULL;
    rk_error *err = rk_scorer_open(dir, opts, &s);
    if (err != NULL) {
        fprintf(stderr, "cannot open %s: error %u: %s\n", dir, (unsigned)rk_error_code(err),
                rk_error_message(err));
        rk_error_free(err);
        return NULL;
    }
    return s;
}

/* ------------------------------------------------------------------------ */
/* Tests                                                                     */

static void test_version(void) {
    char expected[64];
    snprintf(expected, sizeof expected, "%d.%d.%d", RK_VERSION_MAJOR, RK_VERSION_MINOR,
             RK_VERSION_PATCH);
    CHECK_STR_EQ(rk_version(), expected);
    CHECK(rk_version() == rk_version());
}

static void test_null_error(void) {
    CHECK(rk_error_code(NULL) == 0);
    CHECK(rk_error_message(NULL) != NULL);
    CHECK_STR_EQ(rk_error_message(NULL), "");
    rk_error_free(NULL);
    CHECK(1); /* reached: rk_error_free(NULL) is a no-op */
}

static void test_options_default(void) {
    rk_scorer_options o = rk_scorer_options_default();
    CHECK(o.threads == 0);
    CHECK(o.max_batch == 32);
    CHECK(o.max_length == 0);
    CHECK(o.device == RK_DEVICE_CPU);
    CHECK(o.device_id == 0);
    CHECK(o.max_sessions == 1);
}

/* rk_scorer_open with `opts` on `dir` fails with `code`; *out stays as it was. */
#define CHECK_OPEN_FAILS(dir, opts, code, needle)                                   \
    do {                                                                            \
        rk_scorer *out_ = SENTINEL_SCORER;                                          \
        CHECK_ERR(rk_scorer_open((dir), (opts), &out_), (code), (needle));          \
        CHECK(out_ == SENTINEL_SCORER);                                             \
    } while (0)

static void test_open(void) {
    char buf[4096];

    /* Success, default options. */
    rk_scorer *s = SENTINEL_SCORER;
    if (CHECK_OK(rk_scorer_open(g_bundle, NULL, &s))) {
        CHECK(s != NULL && s != SENTINEL_SCORER);
        rk_scorer_free(s);
    }

    /* Success, explicit options (lower max_length, one thread, two sessions). */
    rk_scorer_options o = rk_scorer_options_default();
    o.threads = 1;
    o.max_batch = 2;
    o.max_length = 16;
    o.max_sessions = 2;
    s = SENTINEL_SCORER;
    if (CHECK_OK(rk_scorer_open(g_bundle, &o, &s))) {
        CHECK(s != NULL && s != SENTINEL_SCORER);
        float r = SENTINEL_FLOAT;
        /* Long enough to be truncated at 16 tokens. */
        CHECK_OK(rk_scorer_score(s, PROMPTS[1], RESPONSES[4], &r));
        CHECK(isfinite(r) && r != SENTINEL_FLOAT);
        rk_scorer_free(s);
    }

    /* Arguments. */
    CHECK_OPEN_FAILS(NULL, NULL, RK_ERR_NULL_ARGUMENT, "bundle_dir");
    CHECK_ERR(rk_scorer_open(g_bundle, NULL, NULL), RK_ERR_NULL_ARGUMENT, "out");
    CHECK_OPEN_FAILS("\xff\xfe", NULL, RK_ERR_INVALID_UTF8, "bundle_dir");
    CHECK_OPEN_FAILS(work_path(buf, sizeof buf, "does-not-exist"), NULL, RK_ERR_INVALID_BUNDLE,
                     "does-not-exist");

    o = rk_scorer_options_default();
    o.device = 7;
    CHECK_OPEN_FAILS(g_bundle, &o, RK_ERR_INVALID_ARGUMENT, "device 7");

    o = rk_scorer_options_default();
    o.max_batch = 0;
    CHECK_OPEN_FAILS(g_bundle, &o, RK_ERR_INVALID_ARGUMENT, "max_batch");

    o = rk_scorer_options_default();
    o.max_length = 100000; /* the test bundles have max_length 128 */
    CHECK_OPEN_FAILS(g_bundle, &o, RK_ERR_INVALID_ARGUMENT, "max_length");

    o = rk_scorer_options_default();
    o.max_sessions = 0;
    CHECK_OPEN_FAILS(g_bundle, &o, RK_ERR_INVALID_ARGUMENT, "max_sessions");

    /* The ONNX Runtime used by the tests is the CPU-only build. */
    o = rk_scorer_options_default();
    o.device = RK_DEVICE_CUDA;
    CHECK_OPEN_FAILS(g_bundle, &o, RK_ERR_PROVIDER_UNAVAILABLE, "CUDA");
}

static void test_broken_bundles(void) {
    static const struct {
        const char *dir;
        uint32_t code;
        const char *needle; /* what the message must name (not part of the path) */
    } cases[] = {
        {"broken-no-model", RK_ERR_INVALID_BUNDLE, "model.onnx"},
        {"broken-truncated-model", RK_ERR_INVALID_MODEL, "model.onnx"},
        {"broken-bad-json", RK_ERR_INVALID_BUNDLE, "rewardkit.json"},
        {"broken-output-mismatch", RK_ERR_INVALID_BUNDLE, "2 outputs"},
        {"broken-no-tokenizer", RK_ERR_INVALID_BUNDLE, "tokenizer.json"},
        /* A newer manifest has its own code: upgrade rewardkit. */
        {"broken-newer-version", RK_ERR_UNSUPPORTED_VERSION, "unsupported format version 99"},
    };
    char buf[4096];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rk_scorer *out = SENTINEL_SCORER;
        rk_error *err = rk_scorer_open(work_path(buf, sizeof buf, cases[i].dir), NULL, &out);
        if (err == NULL) {
            fail_at(__FILE__, __LINE__, "%s opened, expected error %u", cases[i].dir,
                    (unsigned)cases[i].code);
            if (out != SENTINEL_SCORER)
                rk_scorer_free(out);
            continue;
        }
        const char *msg = rk_error_message(err);
        if (rk_error_code(err) != cases[i].code)
            fail_at(__FILE__, __LINE__, "%s: error code %u, expected %u (message: %s)",
                    cases[i].dir, (unsigned)rk_error_code(err), (unsigned)cases[i].code, msg);
        else if (strstr(msg, cases[i].needle) == NULL)
            fail_at(__FILE__, __LINE__, "%s: message \"%s\" does not mention \"%s\"",
                    cases[i].dir, msg, cases[i].needle);
        else
            g_passed++;
        CHECK(out == SENTINEL_SCORER);
        rk_error_free(err);
    }
}

static void test_score(const rk_scorer *s) {
    float r1 = SENTINEL_FLOAT, r2 = SENTINEL_FLOAT;
    CHECK_OK(rk_scorer_score(s, PROMPTS[0], RESPONSES[0], &r1));
    CHECK(isfinite(r1) && r1 != SENTINEL_FLOAT);
    CHECK_OK(rk_scorer_score(s, PROMPTS[0], RESPONSES[0], &r2));
    CHECK(r1 == r2);

    /* Errors leave *out_reward as it was. */
    float r = SENTINEL_FLOAT;
    CHECK_ERR(rk_scorer_score(NULL, "p", "r", &r), RK_ERR_NULL_ARGUMENT, "scorer");
    CHECK_ERR(rk_scorer_score(s, NULL, "r", &r), RK_ERR_NULL_ARGUMENT, "prompt");
    CHECK_ERR(rk_scorer_score(s, "p", NULL, &r), RK_ERR_NULL_ARGUMENT, "response");
    CHECK_ERR(rk_scorer_score(s, "p", "r", NULL), RK_ERR_NULL_ARGUMENT, "out_reward");
    CHECK_ERR(rk_scorer_score(s, "ok \xc3\x28", "r", &r), RK_ERR_INVALID_UTF8, "prompt");
    CHECK_ERR(rk_scorer_score(s, "p", "\xff", &r), RK_ERR_INVALID_UTF8, "response");
    CHECK(r == SENTINEL_FLOAT);

    /* Empty strings are fine. */
    r = SENTINEL_FLOAT;
    CHECK_OK(rk_scorer_score(s, "", "", &r));
    CHECK(isfinite(r) && r != SENTINEL_FLOAT);

    /* Non-ASCII UTF-8 is fine. */
    r = SENTINEL_FLOAT;
    CHECK_OK(rk_scorer_score(s, "caf\xc3\xa9 \xe2\x98\x95?", "s\xc3\xad", &r));
    CHECK(isfinite(r) && r != SENTINEL_FLOAT);

    /* A very long response is truncated, not an error. */
    enum { LONG_LEN = 20000 };
    char *long_text = malloc(LONG_LEN + 1);
    CHECK(long_text != NULL);
    if (long_text != NULL) {
        static const char *const words[] = {"the ", "sun ", "is ", "a ", "star. "};
        size_t len = 0, w = 0;
        while (len + 6 < LONG_LEN) {
            size_t n = strlen(words[w]);
            memcpy(long_text + len, words[w], n);
            len += n;
            w = (w + 1) % 5;
        }
        long_text[len] = '\0';
        r = SENTINEL_FLOAT;
        CHECK_OK(rk_scorer_score(s, "tell me about the sun", long_text, &r));
        CHECK(isfinite(r) && r != SENTINEL_FLOAT);
        free(long_text);
    }
}

static void test_score_batch(const rk_scorer *s) {
    float one[NPAIRS], batch[NPAIRS];
    for (size_t i = 0; i < NPAIRS; i++) {
        one[i] = SENTINEL_FLOAT;
        CHECK_OK(rk_scorer_score(s, PROMPTS[i], RESPONSES[i], &one[i]));
        batch[i] = SENTINEL_FLOAT;
    }
    if (CHECK_OK(rk_scorer_score_batch(s, NPAIRS, PROMPTS, RESPONSES, batch)))
        for (size_t i = 0; i < NPAIRS; i++)
            CHECK_NEAR(batch[i], one[i], 1e-5);

    /* A batch of one, and a prefix of the arrays. */
    float b1 = SENTINEL_FLOAT;
    CHECK_OK(rk_scorer_score_batch(s, 1, PROMPTS + 1, RESPONSES + 1, &b1));
    CHECK_NEAR(b1, one[1], 1e-5);

    /* Errors: out_rewards is not written. */
    float out[NPAIRS];
    for (size_t i = 0; i < NPAIRS; i++)
        out[i] = SENTINEL_FLOAT;
    CHECK_ERR(rk_scorer_score_batch(s, 0, PROMPTS, RESPONSES, out), RK_ERR_EMPTY_BATCH, NULL);
    CHECK_ERR(rk_scorer_score_batch(NULL, NPAIRS, PROMPTS, RESPONSES, out),
              RK_ERR_NULL_ARGUMENT, "scorer");
    CHECK_ERR(rk_scorer_score_batch(s, NPAIRS, NULL, RESPONSES, out), RK_ERR_NULL_ARGUMENT,
              "prompts");
    CHECK_ERR(rk_scorer_score_batch(s, NPAIRS, PROMPTS, NULL, out), RK_ERR_NULL_ARGUMENT,
              "responses");
    CHECK_ERR(rk_scorer_score_batch(s, NPAIRS, PROMPTS, RESPONSES, NULL), RK_ERR_NULL_ARGUMENT,
              "out_rewards");

    const char *prompts[NPAIRS], *responses[NPAIRS];
    memcpy(prompts, PROMPTS, sizeof prompts);
    memcpy(responses, RESPONSES, sizeof responses);
    prompts[2] = NULL;
    CHECK_ERR(rk_scorer_score_batch(s, NPAIRS, prompts, responses, out), RK_ERR_NULL_ARGUMENT,
              "prompts[2]");
    prompts[2] = PROMPTS[2];
    responses[4] = NULL;
    CHECK_ERR(rk_scorer_score_batch(s, NPAIRS, prompts, responses, out), RK_ERR_NULL_ARGUMENT,
              "responses[4]");
    responses[4] = RESPONSES[4];
    responses[3] = "bad \xe2\x82";
    CHECK_ERR(rk_scorer_score_batch(s, NPAIRS, prompts, responses, out), RK_ERR_INVALID_UTF8,
              "responses[3]");

    int untouched = 1;
    for (size_t i = 0; i < NPAIRS; i++)
        untouched &= out[i] == SENTINEL_FLOAT;
    CHECK(untouched);
}

static float sigmoid(float x) { return (float)(1.0 / (1.0 + exp(-(double)x))); }

static void test_compare(const rk_scorer *s) {
    const char *p = PROMPTS[1], *a = RESPONSES[1], *b = RESPONSES[2];
    float ra = SENTINEL_FLOAT, rb = SENTINEL_FLOAT, ab = SENTINEL_FLOAT, ba = SENTINEL_FLOAT;
    CHECK_OK(rk_scorer_score(s, p, a, &ra));
    CHECK_OK(rk_scorer_score(s, p, b, &rb));
    CHECK_OK(rk_scorer_compare(s, p, a, b, &ab));
    CHECK_OK(rk_scorer_compare(s, p, b, a, &ba));
    CHECK(ab > 0.0f && ab < 1.0f);
    CHECK_NEAR(ab, sigmoid(ra - rb), 1e-5);
    CHECK_NEAR(ab + ba, 1.0, 1e-5);

    /* A response compared with itself is a coin toss. */
    float same = SENTINEL_FLOAT;
    CHECK_OK(rk_scorer_compare(s, p, a, a, &same));
    CHECK_NEAR(same, 0.5, 1e-6);

    float out = SENTINEL_FLOAT;
    CHECK_ERR(rk_scorer_compare(NULL, p, a, b, &out), RK_ERR_NULL_ARGUMENT, "scorer");
    CHECK_ERR(rk_scorer_compare(s, NULL, a, b, &out), RK_ERR_NULL_ARGUMENT, "prompt");
    CHECK_ERR(rk_scorer_compare(s, p, NULL, b, &out), RK_ERR_NULL_ARGUMENT, "response_a");
    CHECK_ERR(rk_scorer_compare(s, p, a, NULL, &out), RK_ERR_NULL_ARGUMENT, "response_b");
    CHECK_ERR(rk_scorer_compare(s, p, a, b, NULL), RK_ERR_NULL_ARGUMENT, "out_prob_a");
    CHECK_ERR(rk_scorer_compare(s, p, a, "\xc0\xaf", &out), RK_ERR_INVALID_UTF8, "response_b");
    CHECK(out == SENTINEL_FLOAT);
}

static void test_outputs(const rk_scorer *s, const rk_scorer *s5) {
    static const char *const names5[] = {"helpfulness", "correctness", "coherence",
                                          "complexity", "verbosity"};
    CHECK(rk_scorer_num_outputs(s) == 1);
    CHECK_STR_EQ(rk_scorer_output_name(s, 0), "reward");
    CHECK(rk_scorer_output_name(s, 1) == NULL);
    CHECK(rk_scorer_output_name(s, SIZE_MAX) == NULL);

    CHECK(rk_scorer_num_outputs(s5) == 5);
    for (size_t i = 0; i < 5; i++)
        CHECK_STR_EQ(rk_scorer_output_name(s5, i), names5[i]);
    CHECK(rk_scorer_output_name(s5, 5) == NULL);

    CHECK(rk_scorer_num_outputs(NULL) == 0);
    CHECK(rk_scorer_output_name(NULL, 0) == NULL);

    /* A five-output scorer scores like any other (its reward is helpfulness). */
    float one[NPAIRS], batch[NPAIRS];
    for (size_t i = 0; i < NPAIRS; i++)
        CHECK_OK(rk_scorer_score(s5, PROMPTS[i], RESPONSES[i], &one[i]));
    if (CHECK_OK(rk_scorer_score_batch(s5, NPAIRS, PROMPTS, RESPONSES, batch)))
        for (size_t i = 0; i < NPAIRS; i++)
            CHECK_NEAR(batch[i], one[i], 1e-5);
    float prob = SENTINEL_FLOAT;
    CHECK_OK(rk_scorer_compare(s5, PROMPTS[0], RESPONSES[0], RESPONSES[3], &prob));

    /* All outputs, row-major; column 0 (helpfulness) is the reward. */
    float all[NPAIRS * 5];
    for (size_t i = 0; i < NPAIRS * 5; i++)
        all[i] = SENTINEL_FLOAT;
    if (CHECK_OK(rk_scorer_score_outputs(s5, NPAIRS, PROMPTS, RESPONSES, all)))
        for (size_t i = 0; i < NPAIRS; i++) {
            CHECK_NEAR(all[i * 5], one[i], 1e-5);
            for (size_t j = 1; j < 5; j++)
                CHECK(all[i * 5 + j] != SENTINEL_FLOAT);
        }
    float single = SENTINEL_FLOAT, single_reward = SENTINEL_FLOAT;
    if (CHECK_OK(rk_scorer_score_outputs(s, 1, PROMPTS, RESPONSES, &single)) &&
        CHECK_OK(rk_scorer_score(s, PROMPTS[0], RESPONSES[0], &single_reward)))
        CHECK_NEAR(single, single_reward, 1e-5);
    CHECK_ERR(rk_scorer_score_outputs(NULL, 1, PROMPTS, RESPONSES, all), RK_ERR_NULL_ARGUMENT,
              "scorer");
    CHECK_ERR(rk_scorer_score_outputs(s5, 1, NULL, RESPONSES, all), RK_ERR_NULL_ARGUMENT,
              "prompts");
    CHECK_ERR(rk_scorer_score_outputs(s5, 1, PROMPTS, NULL, all), RK_ERR_NULL_ARGUMENT,
              "responses");
    CHECK_ERR(rk_scorer_score_outputs(s5, 1, PROMPTS, RESPONSES, NULL), RK_ERR_NULL_ARGUMENT,
              "out_scores");
    CHECK_ERR(rk_scorer_score_outputs(s5, 0, PROMPTS, RESPONSES, all), RK_ERR_EMPTY_BATCH, "0");
    CHECK_ERR(rk_scorer_score_outputs(s5, 0, NULL, NULL, NULL), RK_ERR_EMPTY_BATCH, "0");
    CHECK_ERR(rk_scorer_score_batch(s5, 0, NULL, NULL, NULL), RK_ERR_EMPTY_BATCH, "0");

    /* A bundle with reward_weights: the reward is the weighted sum of outputs. */
    rk_scorer *sw = open_ok(g_bundle5w, NULL);
    if (sw != NULL) {
        static const float w[5] = {0.5f, 1.0f, 0.0f, 0.0f, -0.25f};
        float rewards[NPAIRS];
        if (CHECK_OK(rk_scorer_score_batch(sw, NPAIRS, PROMPTS, RESPONSES, rewards)) &&
            CHECK_OK(rk_scorer_score_outputs(sw, NPAIRS, PROMPTS, RESPONSES, all)))
            for (size_t i = 0; i < NPAIRS; i++) {
                float expect = 0.0f;
                for (size_t j = 0; j < 5; j++)
                    expect += w[j] * all[i * 5 + j];
                CHECK_NEAR(rewards[i], expect, 1e-5);
            }
        rk_scorer_free(sw);
    }
    CHECK(prob > 0.0f && prob < 1.0f);
}

/* Batches split into chunks of max_batch give the same rewards. */
static void test_small_max_batch(const rk_scorer *s) {
    rk_scorer_options o = rk_scorer_options_default();
    o.max_batch = 2;
    rk_scorer *small = open_ok(g_bundle, &o);
    CHECK(small != NULL);
    if (small == NULL)
        return;
    float want[NPAIRS], got[NPAIRS];
    CHECK_OK(rk_scorer_score_batch(s, NPAIRS, PROMPTS, RESPONSES, want));
    if (CHECK_OK(rk_scorer_score_batch(small, NPAIRS, PROMPTS, RESPONSES, got)))
        for (size_t i = 0; i < NPAIRS; i++)
            CHECK_NEAR(got[i], want[i], 1e-5);
    rk_scorer_free(small);
}

struct worker {
    const rk_scorer *scorer;
    const float *expected; /* NPAIRS sequential results */
    int reps;
    int errors;
    int mismatches;
};

static void *worker_main(void *arg) {
    struct worker *w = arg;
    for (int rep = 0; rep < w->reps; rep++) {
        for (size_t i = 0; i < NPAIRS; i++) {
            float r = SENTINEL_FLOAT;
            rk_error *err = rk_scorer_score(w->scorer, PROMPTS[i], RESPONSES[i], &r);
            if (err != NULL) {
                w->errors++;
                rk_error_free(err);
            } else if (r != w->expected[i]) {
                w->mismatches++;
            }
        }
    }
    return NULL;
}

static void test_threads(int quick) {
    enum { NTHREADS = 4 };
    /* Two sessions, so calls really run at the same time. */
    rk_scorer_options o = rk_scorer_options_default();
    o.max_sessions = 2;
    rk_scorer *s = open_ok(g_bundle, &o);
    CHECK(s != NULL);
    if (s == NULL)
        return;
    float expected[NPAIRS];
    for (size_t i = 0; i < NPAIRS; i++)
        CHECK_OK(rk_scorer_score(s, PROMPTS[i], RESPONSES[i], &expected[i]));

    struct worker workers[NTHREADS];
    pthread_t threads[NTHREADS];
    int started[NTHREADS];
    for (int t = 0; t < NTHREADS; t++) {
        workers[t] = (struct worker){s, expected, quick ? 2 : 10, 0, 0};
        started[t] = pthread_create(&threads[t], NULL, worker_main, &workers[t]) == 0;
        CHECK(started[t]);
    }
    for (int t = 0; t < NTHREADS; t++) {
        if (!started[t])
            continue;
        CHECK(pthread_join(threads[t], NULL) == 0);
        CHECK(workers[t].errors == 0);
        CHECK(workers[t].mismatches == 0);
    }
    rk_scorer_free(s);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s WORKDIR\n", argv[0]);
        return 2;
    }
    g_workdir = argv[1];
    work_path(g_bundle, sizeof g_bundle, "bundle");
    work_path(g_bundle5, sizeof g_bundle5, "bundle5");
    work_path(g_bundle5w, sizeof g_bundle5w, "bundle5w");
    const char *quick_env = getenv("RK_TEST_QUICK");
    int quick = quick_env != NULL && strcmp(quick_env, "1") == 0;

    test_version();
    test_null_error();
    test_options_default();
    test_open();
    test_broken_bundles();

    rk_scorer *s = open_ok(g_bundle, NULL);
    rk_scorer *s5 = open_ok(g_bundle5, NULL);
    CHECK(s != NULL);
    CHECK(s5 != NULL);
    if (s != NULL && s5 != NULL) {
        test_score(s);
        test_score_batch(s);
        test_compare(s);
        test_outputs(s, s5);
        test_small_max_batch(s);
    }
    rk_scorer_free(s5);
    rk_scorer_free(s);
    test_threads(quick);

    rk_scorer_free(NULL);
    CHECK(1); /* reached: rk_scorer_free(NULL) is a no-op */

    printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed == 0 ? 0 : 1;
}
