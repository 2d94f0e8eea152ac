/*
 * Hostile-input tests for rewardkit's C ABI (include/rewardkit.h).
 *
 * Every public function is called with what a careless or hostile caller
 * might pass: NULL for each pointer argument in turn, invalid UTF-8 in every
 * string argument (batch elements at index > 0 and paths included), empty,
 * whitespace-only and very long strings, n = 0, NULL elements inside batch
 * arrays, out-of-range indices, bad options, bad recipes and paths, and many
 * threads at once. Each call must return the code the header documents,
 * with a message that names the bad argument, and must leave its
 * out-parameters untouched on error (the tests fill them with sentinels).
 * It runs plainly, under AddressSanitizer and under valgrind
 * (scripts/test-asan.sh).
 *
 * Not tested, on purpose: a handle used after its *_free, a string without
 * its NUL, arrays shorter than n, and output buffers smaller than documented.
 * These break the contract (undefined behaviour, as with free() in libc) and
 * the library cannot detect them: an opaque handle is a bare pointer, with no
 * registry of live handles to check it against. What is tested instead is
 * that *_free(NULL) is a no-op, any number of times.
 *
 * Usage: test_hostile WORKDIR
 *   WORKDIR/tiny/         a tiny backbone (rewardkit dev tiny-backbone)
 *   WORKDIR/bundle/       a scalar-reward bundle made from it
 *   WORKDIR/bundle5/      a five-output (HelpSteer2) bundle made from it
 *   WORKDIR/pairs.jsonl   a few preference pairs (4 lines)
 * The program writes its own files into a new directory WORKDIR/hostile-XXXXXX
 * (so that runs under several tools can share WORKDIR).
 *
 * Environment: RK_TEST_QUICK=1 (the valgrind run) uses 16 KiB instead of
 * 1 MiB for the longest strings (4 KiB instead of 64 KiB for the others), a
 * smaller big batch and fewer repetitions in the thread tests; every string
 * is still far beyond the test bundles' 128 tokens.
 *
 * Prints one line per failure and ends with "N passed, M failed" (exit
 * status 1 on any failure).
 */
#define _POSIX_C_SOURCE 200809L

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rewardkit.h"

/* ------------------------------------------------------------------------ */
/* Checks (main thread only; worker threads count into their own structs)   */

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

/* Whether `s` is well-formed UTF-8 (no overlongs, surrogates or code points
 * above U+10FFFF). Error messages must be, whatever the input was. */
static int utf8_valid(const char *s) {
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned c = *p;
        int n;
        unsigned min, cp;
        if (c < 0x80) {
            p++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            n = 1, min = 0x80, cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            n = 2, min = 0x800, cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            n = 3, min = 0x10000, cp = c & 0x07;
        } else {
            return 0;
        }
        for (int i = 1; i <= n; i++) {
            if ((p[i] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (p[i] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        p += n + 1;
    }
    return 1;
}

/* Print at most this many bytes of a message (some quote a 1 MiB path). */
#define MSG_SHOWN 300

/* `call` must succeed (return NULL); on failure print the error and free it. */
#define CHECK_OK(call) check_ok((call), #call, __FILE__, __LINE__)
static int check_ok(rk_error *err, const char *what, const char *file, int line) {
    if (err == NULL) {
        g_passed++;
        return 1;
    }
    fail_at(file, line, "%s returned error %u: %.*s", what, (unsigned)rk_error_code(err),
            MSG_SHOWN, rk_error_message(err));
    rk_error_free(err);
    return 0;
}

/* `call` must fail with `code` (or `code2`, when not 0) and a non-empty,
 * valid UTF-8 message that contains `needle` (unless NULL); the error is
 * freed. */
#define CHECK_ERR(call, code, needle) \
    check_err((call), (code), 0, (needle), #call, __FILE__, __LINE__)
#define CHECK_ERR2(call, code, code2, needle) \
    check_err((call), (code), (code2), (needle), #call, __FILE__, __LINE__)
static int check_err(rk_error *err, uint32_t code, uint32_t code2, const char *needle,
                     const char *what, const char *file, int line) {
    int ok = 0;
    if (err == NULL) {
        fail_at(file, line, "%s succeeded, expected error %u", what, (unsigned)code);
        return 0;
    }
    const char *msg = rk_error_message(err);
    uint32_t got = rk_error_code(err);
    if (got != code && (code2 == 0 || got != code2))
        fail_at(file, line, "%s: error code %u, expected %u (message: %.*s)", what,
                (unsigned)got, (unsigned)code, MSG_SHOWN, msg);
    else if (msg == NULL || msg[0] == '\0')
        fail_at(file, line, "%s: error %u has an empty message", what, (unsigned)got);
    else if (!utf8_valid(msg))
        fail_at(file, line, "%s: error %u has a message that is not valid UTF-8", what,
                (unsigned)got);
    else if (needle != NULL && strstr(msg, needle) == NULL)
        fail_at(file, line, "%s: message \"%.*s\" does not mention \"%s\"", what, MSG_SHOWN,
                msg, needle);
    else
        ok = 1;
    if (ok)
        g_passed++;
    rk_error_free(err);
    return ok;
}

/* ------------------------------------------------------------------------ */
/* Fixtures                                                                  */

static char g_tiny[4096];
static char g_bundle[4096];
static char g_bundle5[4096];
static char g_pairs[4096];
static char g_scratch[4096]; /* WORKDIR/hostile-XXXXXX, new for each run */
static int g_quick;
static size_t g_long_len;   /* bytes in a "very long" string (1 MiB) */
static size_t g_medium_len; /* bytes in a merely long one (64 KiB) */

#define PATH_SIZE 4200

/* `dir`/`name` in a static ring of 8 buffers: valid for the next few calls
 * only (a path kept longer is copied with path_into). */
static const char *join(const char *dir, const char *name) {
    static char bufs[8][PATH_SIZE];
    static int next;
    char *b = bufs[next];
    next = (next + 1) % 8;
    snprintf(b, sizeof bufs[0], "%s/%s", dir, name);
    return b;
}
static const char *scratch(const char *name) { return join(g_scratch, name); }
/* Copy `path` into `buf` (PATH_SIZE bytes) and return `buf`. */
static const char *path_into(char *buf, const char *path) {
    snprintf(buf, PATH_SIZE, "%s", path);
    return buf;
}

/* Values a failing call must never write. */
static char g_sentinel_storage[2];
#define SENTINEL_SCORER ((rk_scorer *)(void *)&g_sentinel_storage[0])
#define SENTINEL_TRAINER ((rk_trainer *)(void *)&g_sentinel_storage[1])
#define SENTINEL_FLOAT (-12345.5f)

/* Invalid UTF-8, each broken a different way. */
static const char *const BAD_UTF8[] = {
    "\xff",                       /* a byte that never occurs in UTF-8 */
    "ok \xc3\x28 ok",             /* a lead byte followed by ASCII */
    "truncated at the end \xe2\x82", /* a sequence cut short by the NUL */
    "\xc0\xaf",                   /* overlong encoding of '/' */
    "\xed\xa0\x80",               /* a UTF-16 surrogate (U+D800) */
    "\xf4\x90\x80\x80",           /* above U+10FFFF */
    "\xf8\x88\x80\x80\x80",       /* a 5-byte form */
    "stray \x80 continuation",    /* a continuation byte with no lead */
};
#define N_BAD_UTF8 (sizeof BAD_UTF8 / sizeof BAD_UTF8[0])

/* Odd but valid text: every one must score to a finite number. */
static const char *const ODD_TEXT[] = {
    "",
    " ",
    "   \t\n\r\v\f  ",
    "\n\n\n\n",
    "\x01\x02\x03\x1b[31m\x7f",                 /* control characters */
    "\xef\xbb\xbf" "BOM first",                 /* U+FEFF */
    "\xe2\x80\x8b\xe2\x80\x8b",                 /* zero-width spaces only */
    "\xf4\x8f\xbf\xbf \xf0\x9f\x98\x80 \xc2\x80", /* U+10FFFF, an emoji, U+0080 */
    "[CLS] [SEP] [PAD] [MASK] [UNK] <s> </s> <|endoftext|>",
    "User: hi\n\nAssistant: hello\n\nUser:",     /* looks like a transcript */
    "\xe4\xbd\xa0\xe5\xa5\xbd\xef\xbc\x8c\xe4\xb8\x96\xe7\x95\x8c", /* CJK */
    "\xd9\x85\xd8\xb1\xd8\xad\xd8\xa8\xd8\xa7",  /* right-to-left script */
};
#define N_ODD_TEXT (sizeof ODD_TEXT / sizeof ODD_TEXT[0])

#define NP 5
static const char *const PROMPTS[NP] = {
    "what is the sun?",
    "User: tell me about cats\n\nAssistant: cats are good.\n\nUser: and dogs?",
    "write one list",
    "",
    "explain fire",
};
static const char *const RESPONSES[NP] = {
    "the sun is a star.",
    "dogs are good too, and they like to help people find water.",
    "one two three",
    "no",
    "fire is hot. fire is hot. fire is hot. fire is hot. fire is hot.",
};

/* A NUL-terminated string of `len` bytes repeating `unit` (whole units only,
 * so multi-byte UTF-8 stays valid). The caller frees it. */
static char *repeat(const char *unit, size_t len) {
    size_t u = strlen(unit);
    char *s = malloc(len + 1);
    if (s == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    size_t n = 0;
    while (n + u <= len) {
        memcpy(s + n, unit, u);
        n += u;
    }
    s[n] = '\0';
    return s;
}

static rk_scorer *open_ok(const char *dir, const rk_scorer_options *opts) {
    rk_scorer *s = NULL;
    rk_error *err = rk_scorer_open(dir, opts, &s);
    if (err != NULL) {
        fail_at(__FILE__, __LINE__, "cannot open %s: error %u: %s", dir,
                (unsigned)rk_error_code(err), rk_error_message(err));
        rk_error_free(err);
        return NULL;
    }
    return s;
}

static int is_finite_result(float v) { return isfinite(v) && v != SENTINEL_FLOAT; }

static int exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (f == NULL) {
        fprintf(stderr, "cannot write %s: %s\n", path, strerror(errno));
        exit(2);
    }
    fputs(text, f);
    fclose(f);
}

/* Number of entries (besides . and ..) in `dir`, or -1 if it cannot be read. */
static int count_entries(const char *dir) {
    DIR *d = opendir(dir);
    if (d == NULL)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

/* ------------------------------------------------------------------------ */
/* Errors, version, *_free(NULL)                                             */

static void test_error_functions(void) {
    CHECK(rk_error_code(NULL) == 0);
    CHECK(rk_error_message(NULL) != NULL && rk_error_message(NULL)[0] == '\0');
    rk_error_free(NULL);
    rk_error_free(NULL);
    rk_scorer_free(NULL);
    rk_scorer_free(NULL);
    rk_trainer_free(NULL);
    rk_trainer_free(NULL);
    CHECK(1); /* reached: every *_free(NULL), twice, is a no-op */

    const char *v = rk_version();
    CHECK(v != NULL && utf8_valid(v) && v[0] != '\0');

    /* A real error reads the same any number of times, until it is freed. */
    rk_scorer *out = SENTINEL_SCORER;
    rk_error *err = rk_scorer_open(NULL, NULL, &out);
    CHECK(err != NULL);
    if (err != NULL) {
        const char *m1 = rk_error_message(err);
        CHECK(rk_error_code(err) == RK_ERR_NULL_ARGUMENT);
        CHECK(rk_error_code(err) == rk_error_code(err));
        CHECK(m1 == rk_error_message(err) && strstr(m1, "bundle_dir") != NULL);
        rk_error_free(err);
    }
    CHECK(out == SENTINEL_SCORER);
}

/* ------------------------------------------------------------------------ */
/* rk_scorer_open and its options                                            */

/* rk_scorer_open fails with `code` naming `needle`; *out is left as is. */
#define CHECK_OPEN_FAILS(dir, opts, code, needle)                                   \
    do {                                                                            \
        rk_scorer *out_ = SENTINEL_SCORER;                                          \
        CHECK_ERR(rk_scorer_open((dir), (opts), &out_), (code), (needle));          \
        CHECK(out_ == SENTINEL_SCORER);                                             \
    } while (0)

/* rk_scorer_open succeeds, and the scorer scores one pair to a finite value. */
static void check_opens_and_scores(const char *dir, const rk_scorer_options *opts,
                                   const char *what) {
    rk_scorer *s = SENTINEL_SCORER;
    rk_error *err = rk_scorer_open(dir, opts, &s);
    if (err != NULL) {
        fail_at(__FILE__, __LINE__, "%s: open failed: %u %s", what,
                (unsigned)rk_error_code(err), rk_error_message(err));
        rk_error_free(err);
        return;
    }
    CHECK(s != NULL && s != SENTINEL_SCORER);
    float r = SENTINEL_FLOAT;
    CHECK_OK(rk_scorer_score(s, PROMPTS[1], RESPONSES[4], &r));
    if (!is_finite_result(r))
        fail_at(__FILE__, __LINE__, "%s: reward %g", what, (double)r);
    rk_scorer_free(s);
}

static void test_open(void) {
    /* Each pointer NULL in turn (opts may be NULL: the defaults). */
    CHECK_OPEN_FAILS(NULL, NULL, RK_ERR_NULL_ARGUMENT, "bundle_dir");
    rk_scorer_options o = rk_scorer_options_default();
    CHECK_OPEN_FAILS(NULL, &o, RK_ERR_NULL_ARGUMENT, "bundle_dir");
    CHECK_ERR(rk_scorer_open(g_bundle, NULL, NULL), RK_ERR_NULL_ARGUMENT, "out");
    CHECK_ERR(rk_scorer_open(g_bundle, &o, NULL), RK_ERR_NULL_ARGUMENT, "out");
    CHECK_ERR(rk_scorer_open(NULL, NULL, NULL), RK_ERR_NULL_ARGUMENT, NULL);

    /* Invalid UTF-8, alone and after a valid prefix of a real path. */
    char path[4200];
    for (size_t i = 0; i < N_BAD_UTF8; i++) {
        CHECK_OPEN_FAILS(BAD_UTF8[i], NULL, RK_ERR_INVALID_UTF8, "bundle_dir");
        snprintf(path, sizeof path, "%s%s", g_bundle, BAD_UTF8[i]);
        CHECK_OPEN_FAILS(path, NULL, RK_ERR_INVALID_UTF8, "bundle_dir");
    }

    /* Paths that are not bundle directories: INVALID_BUNDLE, as documented. */
    CHECK_OPEN_FAILS("", NULL, RK_ERR_INVALID_BUNDLE, NULL);
    CHECK_OPEN_FAILS("   ", NULL, RK_ERR_INVALID_BUNDLE, NULL);
    CHECK_OPEN_FAILS(scratch("no-such-bundle"), NULL, RK_ERR_INVALID_BUNDLE, "no-such-bundle");
    CHECK_OPEN_FAILS(join(g_bundle, "model.onnx"), NULL, RK_ERR_INVALID_BUNDLE, NULL);
    CHECK_OPEN_FAILS(g_tiny, NULL, RK_ERR_INVALID_BUNDLE, NULL); /* a backbone */
    char *long_path = repeat("a/", g_long_len);                 /* beyond PATH_MAX */
    CHECK_OPEN_FAILS(long_path, NULL, RK_ERR_INVALID_BUNDLE, NULL);
    free(long_path);

    /* A valid non-ASCII path (with a space) to the bundle opens. */
    char link_buf[PATH_SIZE];
    const char *utf8_link = path_into(link_buf, scratch("b\xc3\xbcndle \xe2\x9c\x93"));
    unlink(utf8_link);
    CHECK(symlink(g_bundle, utf8_link) == 0);
    check_opens_and_scores(utf8_link, NULL, "non-ASCII path");

    /* Options out of range: INVALID_ARGUMENT naming the field. */
    static const int32_t bad_devices[] = {7, -1, 2, INT32_MIN, INT32_MAX};
    for (size_t i = 0; i < sizeof bad_devices / sizeof bad_devices[0]; i++) {
        o = rk_scorer_options_default();
        o.device = bad_devices[i];
        CHECK_OPEN_FAILS(g_bundle, &o, RK_ERR_INVALID_ARGUMENT, "device");
    }
    o = rk_scorer_options_default();
    o.max_batch = 0;
    CHECK_OPEN_FAILS(g_bundle, &o, RK_ERR_INVALID_ARGUMENT, "max_batch");
    o = rk_scorer_options_default();
    o.max_sessions = 0;
    CHECK_OPEN_FAILS(g_bundle, &o, RK_ERR_INVALID_ARGUMENT, "max_sessions");
    /* max_length may only lower the bundle's (128 for the test bundles). */
    static const size_t bad_lengths[] = {129, 100000, SIZE_MAX, 1, 2, 3};
    for (size_t i = 0; i < sizeof bad_lengths / sizeof bad_lengths[0]; i++) {
        o = rk_scorer_options_default();
        o.max_length = bad_lengths[i];
        CHECK_OPEN_FAILS(g_bundle, &o, RK_ERR_INVALID_ARGUMENT, "max_length");
    }

    /* Extreme but valid options work (in the quick run, only the first: each
     * scorer costs seconds under valgrind). */
    o = rk_scorer_options_default();
    o.max_length = 4; /* 3 special tokens + 1 of text */
    check_opens_and_scores(g_bundle, &o, "max_length 4");
    if (g_quick)
        return;
    o = rk_scorer_options_default();
    o.max_length = 128; /* exactly the bundle's */
    check_opens_and_scores(g_bundle, &o, "max_length 128");
    o = rk_scorer_options_default();
    o.max_batch = SIZE_MAX;
    check_opens_and_scores(g_bundle, &o, "max_batch SIZE_MAX");
    o = rk_scorer_options_default();
    o.max_sessions = SIZE_MAX; /* an upper bound: sessions are made on demand */
    check_opens_and_scores(g_bundle, &o, "max_sessions SIZE_MAX");
    o = rk_scorer_options_default();
    o.device_id = -7; /* only read for RK_DEVICE_CUDA */
    check_opens_and_scores(g_bundle, &o, "CPU with device_id -7");
}

/* ------------------------------------------------------------------------ */
/* rk_scorer_score, rk_scorer_compare                                        */

static void test_score(const rk_scorer *s) {
    float r = SENTINEL_FLOAT;

    /* Each pointer NULL in turn, then all of them. */
    CHECK_ERR(rk_scorer_score(NULL, "p", "r", &r), RK_ERR_NULL_ARGUMENT, "scorer");
    CHECK_ERR(rk_scorer_score(s, NULL, "r", &r), RK_ERR_NULL_ARGUMENT, "prompt");
    CHECK_ERR(rk_scorer_score(s, "p", NULL, &r), RK_ERR_NULL_ARGUMENT, "response");
    CHECK_ERR(rk_scorer_score(s, "p", "r", NULL), RK_ERR_NULL_ARGUMENT, "out_reward");
    CHECK_ERR(rk_scorer_score(NULL, NULL, NULL, NULL), RK_ERR_NULL_ARGUMENT, NULL);

    for (size_t i = 0; i < N_BAD_UTF8; i++) {
        CHECK_ERR(rk_scorer_score(s, BAD_UTF8[i], "r", &r), RK_ERR_INVALID_UTF8, "prompt");
        CHECK_ERR(rk_scorer_score(s, "p", BAD_UTF8[i], &r), RK_ERR_INVALID_UTF8, "response");
    }
    CHECK(r == SENTINEL_FLOAT);

    /* Empty, whitespace-only, NUL-only and odd text all score. */
    static const char nul_only[4] = {'\0', '\0', '\0', '\0'};
    r = SENTINEL_FLOAT;
    CHECK_OK(rk_scorer_score(s, "", "", &r));
    CHECK(is_finite_result(r));
    float empty = r;
    r = SENTINEL_FLOAT;
    CHECK_OK(rk_scorer_score(s, nul_only, nul_only, &r));
    CHECK(r == empty); /* the first NUL ends the string */
    for (size_t i = 0; i < N_ODD_TEXT; i++) {
        float a = SENTINEL_FLOAT, b = SENTINEL_FLOAT;
        CHECK_OK(rk_scorer_score(s, ODD_TEXT[i], "a fine answer", &a));
        CHECK_OK(rk_scorer_score(s, "a fine question", ODD_TEXT[i], &b));
        if (!is_finite_result(a) || !is_finite_result(b))
            fail_at(__FILE__, __LINE__, "ODD_TEXT[%zu]: rewards %g, %g", i, (double)a,
                    (double)b);
    }

    /* A 1 MiB prompt and response (max_length is 128 tokens): truncated. */
    char *big = repeat("the sun is a star. ", g_long_len);
    r = SENTINEL_FLOAT;
    CHECK_OK(rk_scorer_score(s, big, big, &r));
    CHECK(is_finite_result(r));
    /* Truncation keeps the start: a long response whose first 2 KiB are the
     * same scores the same (128 tokens never reach past 2 KiB of words). */
    float full = SENTINEL_FLOAT, cut = SENTINEL_FLOAT;
    big[g_medium_len] = '\0';
    CHECK_OK(rk_scorer_score(s, "about the sun", big, &full));
    big[2048] = '\0';
    CHECK_OK(rk_scorer_score(s, "about the sun", big, &cut));
    CHECK(full == cut && is_finite_result(full));
    free(big);

    /* Long strings of other shapes, as prompt, response and both. */
    char *accents = repeat("\xc3\xa9t\xc3\xa9 ", g_medium_len); /* "été " */
    char *emoji = repeat("\xf0\x9f\x98\x80", g_medium_len);     /* one long "word" */
    char *one_word = repeat("a", g_medium_len);
    char *blank = repeat(" \t\n", g_medium_len);
    char *const longs[] = {accents, emoji, one_word, blank};
    for (size_t i = 0; i < sizeof longs / sizeof longs[0]; i++) {
        float a = SENTINEL_FLOAT, b = SENTINEL_FLOAT, c = SENTINEL_FLOAT;
        CHECK_OK(rk_scorer_score(s, longs[i], "short", &a));
        CHECK_OK(rk_scorer_score(s, "short", longs[i], &b));
        CHECK_OK(rk_scorer_score(s, longs[i], longs[i], &c));
        if (!is_finite_result(a) || !is_finite_result(b) || !is_finite_result(c))
            fail_at(__FILE__, __LINE__, "long string %zu: rewards %g, %g, %g", i, (double)a,
                    (double)b, (double)c);
    }
    for (size_t i = 0; i < sizeof longs / sizeof longs[0]; i++)
        free(longs[i]);

    /* Invalid UTF-8 in the last byte of 1 MiB is still found. */
    char *bad_end = repeat("\xc3\xa9", g_long_len);
    bad_end[strlen(bad_end) - 1] = '\xff';
    r = SENTINEL_FLOAT;
    CHECK_ERR(rk_scorer_score(s, "p", bad_end, &r), RK_ERR_INVALID_UTF8, "response");
    CHECK_ERR(rk_scorer_score(s, bad_end, "r", &r), RK_ERR_INVALID_UTF8, "prompt");
    CHECK(r == SENTINEL_FLOAT);
    free(bad_end);
}

static void test_compare(const rk_scorer *s) {
    float p = SENTINEL_FLOAT;
    CHECK_ERR(rk_scorer_compare(NULL, "p", "a", "b", &p), RK_ERR_NULL_ARGUMENT, "scorer");
    CHECK_ERR(rk_scorer_compare(s, NULL, "a", "b", &p), RK_ERR_NULL_ARGUMENT, "prompt");
    CHECK_ERR(rk_scorer_compare(s, "p", NULL, "b", &p), RK_ERR_NULL_ARGUMENT, "response_a");
    CHECK_ERR(rk_scorer_compare(s, "p", "a", NULL, &p), RK_ERR_NULL_ARGUMENT, "response_b");
    CHECK_ERR(rk_scorer_compare(s, "p", "a", "b", NULL), RK_ERR_NULL_ARGUMENT, "out_prob_a");
    CHECK_ERR(rk_scorer_compare(NULL, NULL, NULL, NULL, NULL), RK_ERR_NULL_ARGUMENT, NULL);
    for (size_t i = 0; i < N_BAD_UTF8; i++) {
        CHECK_ERR(rk_scorer_compare(s, BAD_UTF8[i], "a", "b", &p), RK_ERR_INVALID_UTF8,
                  "prompt");
        CHECK_ERR(rk_scorer_compare(s, "p", BAD_UTF8[i], "b", &p), RK_ERR_INVALID_UTF8,
                  "response_a");
        CHECK_ERR(rk_scorer_compare(s, "p", "a", BAD_UTF8[i], &p), RK_ERR_INVALID_UTF8,
                  "response_b");
    }
    CHECK(p == SENTINEL_FLOAT);

    /* Empty and very long strings: a probability; a string against itself: 1/2. */
    char *long_text = repeat("fire is hot. ", g_long_len);
    char *medium_text = repeat("fire is hot. ", g_medium_len);
    CHECK_OK(rk_scorer_compare(s, "", "", "", &p));
    CHECK(fabsf(p - 0.5f) < 1e-6f);
    p = SENTINEL_FLOAT;
    CHECK_OK(rk_scorer_compare(s, "", long_text, "", &p));
    CHECK(p >= 0.0f && p <= 1.0f);
    p = SENTINEL_FLOAT;
    CHECK_OK(rk_scorer_compare(s, medium_text, medium_text, medium_text, &p));
    CHECK(fabsf(p - 0.5f) < 1e-6f);
    free(long_text);
    free(medium_text);
}

/* ------------------------------------------------------------------------ */
/* rk_scorer_score_batch and rk_scorer_score_outputs (same signature)        */

typedef rk_error *(*batch_fn)(const rk_scorer *, size_t, const char *const *,
                              const char *const *, float *);

/* Every error path of one batch function. `k` floats per pair are written;
 * `out_name` is the name of its out-parameter. */
static void check_batch_errors(const rk_scorer *s, batch_fn f, size_t k, const char *out_name) {
    enum { N = 6 };
    float out[N * 5 + 1];
    const size_t len = N * k;
    for (size_t i = 0; i < len + 1; i++)
        out[i] = SENTINEL_FLOAT;
    const char *prompts[N], *responses[N];
    for (size_t i = 0; i < N; i++) {
        prompts[i] = PROMPTS[i % NP];
        responses[i] = RESPONSES[i % NP];
    }

    /* n = 0 is EMPTY_BATCH, whatever the arrays are. */
    CHECK_ERR(f(s, 0, prompts, responses, out), RK_ERR_EMPTY_BATCH, NULL);
    CHECK_ERR(f(s, 0, NULL, NULL, NULL), RK_ERR_EMPTY_BATCH, NULL);
    CHECK_ERR(f(s, 0, prompts, NULL, out), RK_ERR_EMPTY_BATCH, NULL);

    /* Each pointer NULL in turn. */
    CHECK_ERR(f(NULL, N, prompts, responses, out), RK_ERR_NULL_ARGUMENT, "scorer");
    CHECK_ERR(f(s, N, NULL, responses, out), RK_ERR_NULL_ARGUMENT, "prompts");
    CHECK_ERR(f(s, N, prompts, NULL, out), RK_ERR_NULL_ARGUMENT, "responses");
    CHECK_ERR(f(s, N, prompts, responses, NULL), RK_ERR_NULL_ARGUMENT, out_name);
    CHECK_ERR(f(s, N, NULL, NULL, NULL), RK_ERR_NULL_ARGUMENT, NULL);

    /* A NULL element, first, in the middle and last, in each array. */
    static const size_t at[] = {0, 2, N - 1};
    char needle[32];
    for (size_t j = 0; j < sizeof at / sizeof at[0]; j++) {
        size_t i = at[j];
        prompts[i] = NULL;
        snprintf(needle, sizeof needle, "prompts[%zu]", i);
        CHECK_ERR(f(s, N, prompts, responses, out), RK_ERR_NULL_ARGUMENT, needle);
        prompts[i] = PROMPTS[i % NP];
        responses[i] = NULL;
        snprintf(needle, sizeof needle, "responses[%zu]", i);
        CHECK_ERR(f(s, N, prompts, responses, out), RK_ERR_NULL_ARGUMENT, needle);
        responses[i] = RESPONSES[i % NP];
    }

    /* Invalid UTF-8 at index > 0 in each array, every kind of breakage. */
    for (size_t b = 0; b < N_BAD_UTF8; b++) {
        size_t i = 1 + b % (N - 1);
        prompts[i] = BAD_UTF8[b];
        snprintf(needle, sizeof needle, "prompts[%zu]", i);
        CHECK_ERR(f(s, N, prompts, responses, out), RK_ERR_INVALID_UTF8, needle);
        prompts[i] = PROMPTS[i % NP];
        responses[i] = BAD_UTF8[b];
        snprintf(needle, sizeof needle, "responses[%zu]", i);
        CHECK_ERR(f(s, N, prompts, responses, out), RK_ERR_INVALID_UTF8, needle);
        responses[i] = RESPONSES[i % NP];
    }

    /* There is no length mismatch to make in C: one n counts every array
     * (RK_ERR_LENGTH_MISMATCH comes from the bindings). Arrays longer than n
     * are fine: only the first n elements are read, so a bad element after
     * them is never seen. */
    prompts[N - 1] = BAD_UTF8[0];
    responses[N - 1] = NULL;
    int untouched = 1;
    for (size_t i = 0; i < len + 1; i++)
        untouched &= out[i] == SENTINEL_FLOAT;
    CHECK(untouched); /* no error above wrote any output */
    CHECK_OK(f(s, N - 1, prompts, responses, out));
    for (size_t i = 0; i < (N - 1) * k; i++)
        CHECK(is_finite_result(out[i]));
    CHECK(out[(N - 1) * k] == SENTINEL_FLOAT); /* nothing written past n * k */
}

/* Batches of odd and very long text, and batches larger than max_batch, give
 * what scoring each pair alone gives. */
static void check_batch_results(const rk_scorer *s, const rk_scorer *s_small_batch) {
    enum { N = NP + N_ODD_TEXT + 2 };
    const char *prompts[N], *responses[N];
    char *long_a = repeat("the moon is not a star. ", g_medium_len);
    char *long_b = repeat("\xe2\x98\x83 snow ", g_medium_len);
    size_t n = 0;
    for (size_t i = 0; i < NP; i++, n++) {
        prompts[n] = PROMPTS[i];
        responses[n] = RESPONSES[i];
    }
    for (size_t i = 0; i < N_ODD_TEXT; i++, n++) {
        prompts[n] = ODD_TEXT[i];
        responses[n] = ODD_TEXT[N_ODD_TEXT - 1 - i];
    }
    prompts[n] = long_a;
    responses[n++] = "";
    prompts[n] = long_b;
    responses[n++] = long_b;

    float one[N], batch[N + 1], small[N + 1];
    for (size_t i = 0; i < N; i++) {
        one[i] = SENTINEL_FLOAT;
        CHECK_OK(rk_scorer_score(s, prompts[i], responses[i], &one[i]));
    }
    for (size_t i = 0; i < N + 1; i++)
        batch[i] = small[i] = SENTINEL_FLOAT;
    CHECK_OK(rk_scorer_score_batch(s, N, prompts, responses, batch));
    CHECK_OK(rk_scorer_score_batch(s_small_batch, N, prompts, responses, small));
    for (size_t i = 0; i < N; i++) {
        if (!(fabsf(batch[i] - one[i]) <= 1e-5f && fabsf(small[i] - one[i]) <= 1e-5f))
            fail_at(__FILE__, __LINE__, "pair %zu: alone %.9g, batch %.9g, max_batch 1 %.9g",
                    i, (double)one[i], (double)batch[i], (double)small[i]);
        else
            g_passed++;
    }
    CHECK(batch[N] == SENTINEL_FLOAT && small[N] == SENTINEL_FLOAT);

    /* A batch of many identical empty pairs (several max_batch chunks). */
    const size_t n_big = g_quick ? 40 : 200;
    const char **empties = malloc(n_big * sizeof *empties);
    float *big = malloc((n_big + 1) * sizeof *big);
    if (empties != NULL && big != NULL) {
        for (size_t i = 0; i < n_big; i++)
            empties[i] = "";
        for (size_t i = 0; i < n_big + 1; i++)
            big[i] = SENTINEL_FLOAT;
        float e = SENTINEL_FLOAT;
        CHECK_OK(rk_scorer_score(s, "", "", &e));
        if (CHECK_OK(rk_scorer_score_batch(s, n_big, empties, empties, big))) {
            int same = 1;
            for (size_t i = 0; i < n_big; i++)
                same &= fabsf(big[i] - e) <= 1e-5f;
            CHECK(same);
        }
        CHECK(big[n_big] == SENTINEL_FLOAT);
    }
    free(empties);
    free(big);
    free(long_a);
    free(long_b);
}

static void test_batches(const rk_scorer *s, const rk_scorer *s5) {
    check_batch_errors(s, rk_scorer_score_batch, 1, "out_rewards");
    check_batch_errors(s5, rk_scorer_score_outputs, 5, "out_scores");
    if (!g_quick) {
        check_batch_errors(s5, rk_scorer_score_batch, 1, "out_rewards");
        check_batch_errors(s, rk_scorer_score_outputs, 1, "out_scores");
    }

    rk_scorer_options o = rk_scorer_options_default();
    o.max_batch = 1;
    rk_scorer *small = open_ok(g_bundle, &o);
    if (small != NULL) {
        check_batch_results(s, small);
        rk_scorer_free(small);
    }

    /* score_outputs on 1 MiB and empty text: n * k finite values, no more. */
    char *long_text = repeat("verbose answer ", g_long_len);
    const char *prompts[2] = {long_text, ""};
    const char *responses[2] = {"", "short"};
    float all[2 * 5 + 1];
    for (size_t i = 0; i < 2 * 5 + 1; i++)
        all[i] = SENTINEL_FLOAT;
    if (CHECK_OK(rk_scorer_score_outputs(s5, 2, prompts, responses, all)))
        for (size_t i = 0; i < 2 * 5; i++)
            CHECK(is_finite_result(all[i]));
    CHECK(all[2 * 5] == SENTINEL_FLOAT);
    free(long_text);
}

/* ------------------------------------------------------------------------ */
/* rk_scorer_num_outputs, rk_scorer_output_name                              */

static void test_outputs(const rk_scorer *s, const rk_scorer *s5) {
    CHECK(rk_scorer_num_outputs(NULL) == 0);
    CHECK(rk_scorer_output_name(NULL, 0) == NULL);
    CHECK(rk_scorer_output_name(NULL, SIZE_MAX) == NULL);
    const rk_scorer *both[2] = {s, s5};
    for (size_t b = 0; b < 2; b++) {
        size_t k = rk_scorer_num_outputs(both[b]);
        CHECK(k == (b == 0 ? 1u : 5u));
        for (size_t i = 0; i < k; i++) {
            const char *name = rk_scorer_output_name(both[b], i);
            CHECK(name != NULL && name[0] != '\0' && utf8_valid(name));
            CHECK(name == rk_scorer_output_name(both[b], i)); /* owned by the scorer */
        }
        static const size_t out_of_range[] = {5, 6, 1000, SIZE_MAX / 2, SIZE_MAX - 1, SIZE_MAX};
        for (size_t i = 0; i < sizeof out_of_range / sizeof out_of_range[0]; i++)
            if (out_of_range[i] >= k)
                CHECK(rk_scorer_output_name(both[b], out_of_range[i]) == NULL);
        CHECK(rk_scorer_output_name(both[b], k) == NULL);
    }
}

/* ------------------------------------------------------------------------ */
/* Many threads on one scorer, good and bad calls mixed                      */

struct expected {
    float single[NP];  /* rk_scorer_score(PROMPTS[i], RESPONSES[i]) */
    float batch[NP];   /* rk_scorer_score_batch of all NP pairs */
    float outputs[NP * 5];
    float compare[NP]; /* compare(PROMPTS[i], RESPONSES[i], RESPONSES[i + 1]) */
    const char *name0; /* rk_scorer_output_name(s, 0) */
};

struct worker {
    const rk_scorer *s;
    const struct expected *want;
    int id, iterations;
    int good, bad;        /* calls made */
    int wrong;            /* a good call failed or gave another result */
    int wrong_error;      /* a bad call succeeded, or gave the wrong code or name */
    int out_written;      /* a failing call wrote its output */
    rk_error *kept;       /* one error, read and freed by the main thread */
    char kept_needle[32]; /* what that error's message must name */
};

/* Whether `err` has `code` and names `needle`; frees it. */
static int worker_err_ok(rk_error *err, uint32_t code, const char *needle) {
    int ok = err != NULL && rk_error_code(err) == code &&
             (needle == NULL || strstr(rk_error_message(err), needle) != NULL);
    rk_error_free(err);
    return ok;
}

static void *worker_main(void *arg) {
    struct worker *w = arg;
    const struct expected *want = w->want;
    const size_t j = (size_t)w->id % NP; /* this thread's element index */
    char needle[32];
    for (int it = 0; it < w->iterations; it++) {
        size_t i = (size_t)(w->id + it) % NP;
        float r = SENTINEL_FLOAT, rs[NP + 1], all[NP * 5 + 1];
        const char *ps[NP], *rsp[NP];
        memcpy(ps, PROMPTS, sizeof ps);
        memcpy(rsp, RESPONSES, sizeof rsp);
        for (size_t q = 0; q < NP + 1; q++)
            rs[q] = SENTINEL_FLOAT;
        for (size_t q = 0; q < NP * 5 + 1; q++)
            all[q] = SENTINEL_FLOAT;
        rk_error *err;
        /* The first call makes the error kept for the main thread; then
         * steps of 3 (coprime with 8) mix good and bad calls even in a few
         * iterations, and reach all 8 kinds in 8. */
        switch (it == 0 ? 5 : (w->id + it * 3) % 8) {
        case 0:
            w->good++;
            err = rk_scorer_score(w->s, PROMPTS[i], RESPONSES[i], &r);
            w->wrong += err != NULL || r != want->single[i];
            rk_error_free(err);
            break;
        case 1:
            w->good++;
            err = rk_scorer_score_batch(w->s, NP, PROMPTS, RESPONSES, rs);
            w->wrong += err != NULL || memcmp(rs, want->batch, sizeof want->batch) != 0 ||
                        rs[NP] != SENTINEL_FLOAT;
            rk_error_free(err);
            break;
        case 2:
            w->good++;
            err = rk_scorer_score_outputs(w->s, NP, PROMPTS, RESPONSES, all);
            w->wrong += err != NULL ||
                        memcmp(all, want->outputs, sizeof want->outputs) != 0 ||
                        all[NP * 5] != SENTINEL_FLOAT;
            rk_error_free(err);
            break;
        case 3:
            w->good++;
            err = rk_scorer_compare(w->s, PROMPTS[i], RESPONSES[i], RESPONSES[(i + 1) % NP], &r);
            w->wrong += err != NULL || r != want->compare[i];
            w->wrong += rk_scorer_num_outputs(w->s) != 5;
            w->wrong += rk_scorer_output_name(w->s, 0) != want->name0;
            w->wrong += rk_scorer_output_name(w->s, 5) != NULL;
            rk_error_free(err);
            break;
        case 4:
            w->bad++;
            w->wrong_error += !worker_err_ok(rk_scorer_score(w->s, PROMPTS[i], NULL, &r),
                                             RK_ERR_NULL_ARGUMENT, "response");
            w->out_written += r != SENTINEL_FLOAT;
            break;
        case 5:
            w->bad++;
            rsp[j] = BAD_UTF8[(size_t)it % N_BAD_UTF8];
            snprintf(needle, sizeof needle, "responses[%zu]", j);
            err = rk_scorer_score_batch(w->s, NP, ps, rsp, rs);
            if (w->kept == NULL && err != NULL) {
                w->kept = err; /* checked on the main thread */
                snprintf(w->kept_needle, sizeof w->kept_needle, "%s", needle);
            } else {
                w->wrong_error += !worker_err_ok(err, RK_ERR_INVALID_UTF8, needle);
            }
            for (size_t q = 0; q < NP + 1; q++)
                w->out_written += rs[q] != SENTINEL_FLOAT;
            break;
        case 6:
            w->bad++;
            w->wrong_error +=
                !worker_err_ok(rk_scorer_score_outputs(w->s, 0, NULL, NULL, NULL),
                               RK_ERR_EMPTY_BATCH, NULL);
            break;
        default:
            w->bad++;
            ps[j] = NULL;
            snprintf(needle, sizeof needle, "prompts[%zu]", j);
            w->wrong_error += !worker_err_ok(rk_scorer_score_outputs(w->s, NP, ps, rsp, all),
                                             RK_ERR_NULL_ARGUMENT, needle);
            for (size_t q = 0; q < NP * 5 + 1; q++)
                w->out_written += all[q] != SENTINEL_FLOAT;
            break;
        }
    }
    return NULL;
}

static void run_threads(const rk_scorer *s, const struct expected *want, const char *what) {
    enum { NTHREADS = 8 };
    struct worker w[NTHREADS];
    pthread_t th[NTHREADS];
    int started[NTHREADS];
    for (int t = 0; t < NTHREADS; t++) {
        memset(&w[t], 0, sizeof w[t]);
        w[t].s = s;
        w[t].want = want;
        w[t].id = t;
        w[t].iterations = g_quick ? 4 : 48; /* every thread makes each of the 8 calls */
        started[t] = pthread_create(&th[t], NULL, worker_main, &w[t]) == 0;
        CHECK(started[t]);
    }
    for (int t = 0; t < NTHREADS; t++) {
        if (!started[t])
            continue;
        CHECK(pthread_join(th[t], NULL) == 0);
        if (w[t].wrong || w[t].wrong_error || w[t].out_written || w[t].good == 0 ||
            w[t].bad == 0)
            fail_at(__FILE__, __LINE__,
                    "%s, thread %d: %d good and %d bad calls; %d wrong results, %d wrong "
                    "errors, %d outputs written on error",
                    what, t, w[t].good, w[t].bad, w[t].wrong, w[t].wrong_error,
                    w[t].out_written);
        else
            g_passed++;
        /* An error made on another thread reads fine here. */
        CHECK_ERR(w[t].kept, RK_ERR_INVALID_UTF8, w[t].kept_needle);
    }
}

static void test_threads(void) {
    /* One session (calls wait for it) and four (calls run at once); in the
     * quick run, two. */
    static const size_t sessions[] = {1, 4}, quick_sessions[] = {2};
    const size_t *runs = g_quick ? quick_sessions : sessions;
    const size_t n_runs = g_quick ? 1 : 2;
    for (size_t k = 0; k < n_runs; k++) {
        rk_scorer_options o = rk_scorer_options_default();
        o.threads = 1;
        o.max_sessions = runs[k];
        rk_scorer *s = open_ok(g_bundle5, &o);
        if (s == NULL)
            continue;
        struct expected want;
        for (size_t i = 0; i < NP; i++) {
            CHECK_OK(rk_scorer_score(s, PROMPTS[i], RESPONSES[i], &want.single[i]));
            CHECK_OK(rk_scorer_compare(s, PROMPTS[i], RESPONSES[i], RESPONSES[(i + 1) % NP],
                                       &want.compare[i]));
        }
        CHECK_OK(rk_scorer_score_batch(s, NP, PROMPTS, RESPONSES, want.batch));
        CHECK_OK(rk_scorer_score_outputs(s, NP, PROMPTS, RESPONSES, want.outputs));
        want.name0 = rk_scorer_output_name(s, 0);
        char what[32];
        snprintf(what, sizeof what, "max_sessions %zu", runs[k]);
        run_threads(s, &want, what);
        rk_scorer_free(s);
    }
}

/* ------------------------------------------------------------------------ */
/* Trainer                                                                   */

/* Scaled BT, so that strengths matter; tiny, so that steps are quick. */
static const char *RECIPE =
    "name = \"hostile\"\n"
    "[model]\nmax_length = 32\n"
    "[loss]\nkind = \"scaled_bt\"\n"
    "[optimizer]\nlr = 1e-3\nclip = 1.0\n"
    "[training]\nbatch_size = 2\nepochs = 1\nthreads = 1\n";

/* rk_trainer_new fails with `code` naming `needle`; *out is left as is. */
#define CHECK_NEW_FAILS(recipe, init, kind, work, code, needle)                            \
    do {                                                                                   \
        rk_trainer *out_ = SENTINEL_TRAINER;                                               \
        CHECK_ERR(rk_trainer_new((recipe), (init), (kind), (work), &out_), (code), (needle)); \
        CHECK(out_ == SENTINEL_TRAINER);                                                   \
    } while (0)
#define CHECK_NEW_FAILS2(recipe, init, kind, work, code, code2, needle)                    \
    do {                                                                                   \
        rk_trainer *out_ = SENTINEL_TRAINER;                                               \
        CHECK_ERR2(rk_trainer_new((recipe), (init), (kind), (work), &out_), (code), (code2), \
                   (needle));                                                              \
        CHECK(out_ == SENTINEL_TRAINER);                                                   \
    } while (0)
#define CHECK_NEW_FROM_FILE_FAILS(path, init, kind, work, code, needle)                    \
    do {                                                                                   \
        rk_trainer *out_ = SENTINEL_TRAINER;                                               \
        CHECK_ERR(rk_trainer_new_from_file((path), (init), (kind), (work), &out_), (code), \
                  (needle));                                                               \
        CHECK(out_ == SENTINEL_TRAINER);                                                   \
    } while (0)

static void test_trainer_new(void) {
    char work_buf[PATH_SIZE];
    const char *work = path_into(work_buf, scratch("trainer-graphs"));

    write_file(scratch("r.toml"), RECIPE);

    /* Each pointer NULL in turn. */
    CHECK_NEW_FAILS(NULL, g_tiny, RK_INIT_BACKBONE, work, RK_ERR_NULL_ARGUMENT, "recipe_toml");
    CHECK_NEW_FAILS(RECIPE, NULL, RK_INIT_BACKBONE, work, RK_ERR_NULL_ARGUMENT, "init_dir");
    CHECK_NEW_FAILS(RECIPE, g_tiny, RK_INIT_BACKBONE, NULL, RK_ERR_NULL_ARGUMENT, "work_dir");
    CHECK_ERR(rk_trainer_new(RECIPE, g_tiny, RK_INIT_BACKBONE, work, NULL), RK_ERR_NULL_ARGUMENT,
              "out");
    CHECK_ERR(rk_trainer_new(NULL, NULL, RK_INIT_BACKBONE, NULL, NULL), RK_ERR_NULL_ARGUMENT,
              NULL);
    CHECK_NEW_FROM_FILE_FAILS(NULL, g_tiny, RK_INIT_BACKBONE, work, RK_ERR_NULL_ARGUMENT,
                              "recipe_path");
    CHECK_NEW_FROM_FILE_FAILS(scratch("r.toml"), NULL, RK_INIT_BACKBONE, work,
                              RK_ERR_NULL_ARGUMENT, "init_dir");
    CHECK_NEW_FROM_FILE_FAILS(scratch("r.toml"), g_tiny, RK_INIT_BACKBONE, NULL,
                              RK_ERR_NULL_ARGUMENT, "work_dir");
    CHECK_ERR(rk_trainer_new_from_file(scratch("r.toml"), g_tiny, RK_INIT_BACKBONE, work, NULL),
              RK_ERR_NULL_ARGUMENT, "out");

    /* Invalid UTF-8 in every string, the recipe text included (even inside
     * a TOML string or comment). */
    char buf[4400];
    for (size_t i = 0; i < N_BAD_UTF8; i++) {
        CHECK_NEW_FAILS(BAD_UTF8[i], g_tiny, RK_INIT_BACKBONE, work, RK_ERR_INVALID_UTF8,
                        "recipe_toml");
        snprintf(buf, sizeof buf, "# %s\n%s", BAD_UTF8[i], RECIPE);
        CHECK_NEW_FAILS(buf, g_tiny, RK_INIT_BACKBONE, work, RK_ERR_INVALID_UTF8, "recipe_toml");
        snprintf(buf, sizeof buf, "%s%s", g_tiny, BAD_UTF8[i]);
        CHECK_NEW_FAILS(RECIPE, buf, RK_INIT_BACKBONE, work, RK_ERR_INVALID_UTF8, "init_dir");
        CHECK_NEW_FAILS(RECIPE, buf, RK_INIT_BUNDLE, work, RK_ERR_INVALID_UTF8, "init_dir");
        snprintf(buf, sizeof buf, "%s%s", work, BAD_UTF8[i]);
        CHECK_NEW_FAILS(RECIPE, g_tiny, RK_INIT_BACKBONE, buf, RK_ERR_INVALID_UTF8, "work_dir");
        snprintf(buf, sizeof buf, "%s%s.toml", g_scratch, BAD_UTF8[i]);
        CHECK_NEW_FROM_FILE_FAILS(buf, g_tiny, RK_INIT_BACKBONE, work, RK_ERR_INVALID_UTF8,
                                  "recipe_path");
    }
    snprintf(buf, sizeof buf, "name = \"caf\xc3\xa9 \xff\"\n%s", RECIPE + strlen("name = \"hostile\"\n"));
    CHECK_NEW_FAILS(buf, g_tiny, RK_INIT_BACKBONE, work, RK_ERR_INVALID_UTF8, "recipe_toml");

    /* init_kind outside the two constants. */
    static const int32_t bad_kinds[] = {2, -1, 9, INT32_MIN, INT32_MAX};
    for (size_t i = 0; i < sizeof bad_kinds / sizeof bad_kinds[0]; i++)
        CHECK_NEW_FAILS(RECIPE, g_tiny, bad_kinds[i], work, RK_ERR_INVALID_ARGUMENT, "init_kind");

    /* Bad recipes: INVALID_ARGUMENT, naming the key where there is one. */
    static const struct {
        const char *toml;
        const char *needle;
    } bad_recipes[] = {
        {"zork = 1\n[loss]\nkind = \"bt\"\n[optimizer]\nlr = 1e-3\n", "zork"},
        {"[loss]\nkind = \"bt\"\n[optimizer]\nlr = 1e-3\nbogus = 1\n", "bogus"},
        {"[loss]\nkind = \"bt\"\nmargin = 2\n[optimizer]\nlr = 1e-3\n", "margin"},
        {"[nope]\nx = 1\n[loss]\nkind = \"bt\"\n[optimizer]\nlr = 1e-3\n", "nope"},
        {"[loss]\nkind = \"bt\"\n[optimizer]\nlr = 1e-3\n[training]\nbatchsize = 2\n",
         "batchsize"},
        {"", "loss"}, /* missing sections */
        {" \n\t\n  ", "loss"},
        {"[loss]\nkind = \"bt\"\n", "optimizer"},
        {"[[[", NULL}, /* not TOML */
        {"[loss]\nkind = \"bt\"\n[optimizer]\nlr = \n", NULL},
        {"[loss]\nkind = \"nope\"\n[optimizer]\nlr = 1e-3\n", "nope"},
        {"[loss]\nkind = \"bt\"\n[optimizer]\nlr = nan\n", "lr"},
        {"[loss]\nkind = \"bt\"\n[optimizer]\nlr = -1.0\n", "lr"},
        {"[loss]\nkind = \"bt\"\n[optimizer]\nlr = inf\n", "lr"},
        {"[loss]\nkind = \"bt\"\n[optimizer]\nlr = \"fast\"\n", NULL},
        {"[loss]\nkind = \"bt\"\n[optimizer]\nlr = 1e-3\n[training]\nbatch_size = 0\n",
         "batch_size"},
        {"[loss]\nkind = \"bt\"\n[optimizer]\nlr = 1e-3\n[training]\nbatch_size = -1\n", NULL},
        {"[loss]\nkind = \"bt\"\n[optimizer]\nlr = 1e-3\n[model]\nmax_length = 0\n",
         "max_length"},
        {"[loss]\nkind = \"bt\"\n[optimizer]\nlr = 1e-3\nclip = nan\n", "clip"},
        {"[loss]\nkind = \"bt\"\n[optimizer]\nlr = 1e-3\nbeta1 = 1.5\n", "beta"},
        {"[loss]\nkind = \"bt\"\n[optimizer]\nlr = 1e-3\n[model]\noutputs = \"nope\"\n",
         "outputs"},
        /* online training takes pairs */
        {"[loss]\nkind = \"regression\"\n[optimizer]\nlr = 1e-3\n", NULL},
    };
    for (size_t i = 0; i < sizeof bad_recipes / sizeof bad_recipes[0]; i++)
        CHECK_NEW_FAILS(bad_recipes[i].toml, g_tiny, RK_INIT_BACKBONE, work,
                        RK_ERR_INVALID_ARGUMENT, bad_recipes[i].needle);
    char *junk = repeat("x", g_long_len); /* a very long recipe that is not TOML */
    CHECK_NEW_FAILS(junk, g_tiny, RK_INIT_BACKBONE, work, RK_ERR_INVALID_ARGUMENT, "recipe_toml");

    /* Paths that do not hold what init_kind says. The header leaves the code
     * open for a backbone (reading config.json fails: IO, or the backbone is
     * invalid); a directory that is not a bundle is INVALID_BUNDLE, as for
     * rk_scorer_open. */
    const char *missing = scratch("no-such-dir");
    CHECK_NEW_FAILS2(RECIPE, missing, RK_INIT_BACKBONE, work, RK_ERR_IO, RK_ERR_INVALID_BACKBONE,
                     "no-such-dir");
    CHECK_NEW_FAILS(RECIPE, missing, RK_INIT_BUNDLE, work, RK_ERR_INVALID_BUNDLE, "no-such-dir");
    CHECK_NEW_FAILS2(RECIPE, g_bundle, RK_INIT_BACKBONE, work, RK_ERR_IO,
                     RK_ERR_INVALID_BACKBONE, NULL);
    CHECK_NEW_FAILS(RECIPE, g_tiny, RK_INIT_BUNDLE, work, RK_ERR_INVALID_BUNDLE, NULL);
    CHECK_NEW_FAILS2(RECIPE, junk, RK_INIT_BACKBONE, work, RK_ERR_IO, RK_ERR_INVALID_BACKBONE,
                     NULL);
    CHECK_NEW_FAILS(RECIPE, junk, RK_INIT_BUNDLE, work, RK_ERR_INVALID_BUNDLE, NULL);
    /* A work_dir that is a regular file cannot receive the graphs. */
    CHECK_NEW_FAILS(RECIPE, g_tiny, RK_INIT_BACKBONE, g_pairs, RK_ERR_IO, NULL);
    free(junk);

    /* Recipe files. */
    write_file(scratch("unknown-key.toml"),
               "[loss]\nkind = \"bt\"\n[optimizer]\nlr = 1e-3\nwarp = 9\n");
    CHECK_NEW_FROM_FILE_FAILS(scratch("unknown-key.toml"), g_tiny, RK_INIT_BACKBONE, work,
                              RK_ERR_INVALID_ARGUMENT, "warp");
    CHECK_NEW_FROM_FILE_FAILS(scratch("no-such.toml"), g_tiny, RK_INIT_BACKBONE, work, RK_ERR_IO,
                              "no-such.toml");
    CHECK_NEW_FROM_FILE_FAILS(g_tiny, g_tiny, RK_INIT_BACKBONE, work, RK_ERR_IO, NULL);
    CHECK_NEW_FROM_FILE_FAILS("", g_tiny, RK_INIT_BACKBONE, work, RK_ERR_IO, NULL);
    /* A recipe file that is not UTF-8 is a bad recipe, like one that is not
     * TOML (and like a data file that is not UTF-8, in rk_trainer_run): it
     * was read; what it holds is wrong. */
    write_file(scratch("latin1.toml"), "name = \"caf\xe9\"\n[loss]\nkind = \"bt\"\n"
                                       "[optimizer]\nlr = 1e-3\n");
    CHECK_NEW_FROM_FILE_FAILS(scratch("latin1.toml"), g_tiny, RK_INIT_BACKBONE, work,
                              RK_ERR_INVALID_ARGUMENT, "latin1.toml");
}

/* rk_trainer_step fails with `code` naming `needle`; *out_loss stays. */
#define CHECK_STEP_FAILS(t, n, p, c, r, st, code, needle)                                  \
    do {                                                                                   \
        float loss_ = SENTINEL_FLOAT;                                                      \
        CHECK_ERR(rk_trainer_step((t), (n), (p), (c), (r), (st), &loss_), (code), (needle)); \
        CHECK(loss_ == SENTINEL_FLOAT);                                                    \
    } while (0)

/* One good step; its loss must be finite. */
static void check_step_ok(rk_trainer *t, size_t n, const char *const *p, const char *const *c,
                          const char *const *r, const float *st, const char *what) {
    float loss = SENTINEL_FLOAT;
    rk_error *err = rk_trainer_step(t, n, p, c, r, st, &loss);
    if (err != NULL) {
        fail_at(__FILE__, __LINE__, "%s: step failed: %u %.*s", what,
                (unsigned)rk_error_code(err), MSG_SHOWN, rk_error_message(err));
        rk_error_free(err);
    } else if (!is_finite_result(loss)) {
        fail_at(__FILE__, __LINE__, "%s: loss %g", what, (double)loss);
    } else {
        g_passed++;
    }
}

static void test_trainer_step(rk_trainer *t) {
    enum { N = 3 };
    const char *p[N] = {"explain water please", "explain fire please", "what is a cat?"};
    const char *c[N] = {"water is good and helpful.", "fire is hot, a correct answer.",
                        "a cat is an animal."};
    const char *r[N] = {"no. wrong.", "i will not help.", "no."};
    char needle[32];

    /* n = 0 is EMPTY_BATCH, whatever the arrays are. */
    CHECK_STEP_FAILS(t, 0, p, c, r, NULL, RK_ERR_EMPTY_BATCH, NULL);
    CHECK_STEP_FAILS(t, 0, NULL, NULL, NULL, NULL, RK_ERR_EMPTY_BATCH, NULL);

    /* Each pointer NULL in turn (strengths and out_loss may be NULL). */
    CHECK_STEP_FAILS(NULL, N, p, c, r, NULL, RK_ERR_NULL_ARGUMENT, "trainer");
    CHECK_STEP_FAILS(t, N, NULL, c, r, NULL, RK_ERR_NULL_ARGUMENT, "prompts");
    CHECK_STEP_FAILS(t, N, p, NULL, r, NULL, RK_ERR_NULL_ARGUMENT, "chosen");
    CHECK_STEP_FAILS(t, N, p, c, NULL, NULL, RK_ERR_NULL_ARGUMENT, "rejected");
    CHECK_STEP_FAILS(NULL, N, NULL, NULL, NULL, NULL, RK_ERR_NULL_ARGUMENT, NULL);

    /* NULL elements and invalid UTF-8 at index > 0, in each array. */
    const char **arrays[3] = {p, c, r};
    static const char *const names[3] = {"prompts", "chosen", "rejected"};
    for (size_t a = 0; a < 3; a++) {
        for (size_t i = 1; i < N; i++) {
            const char *keep = arrays[a][i];
            snprintf(needle, sizeof needle, "%s[%zu]", names[a], i);
            arrays[a][i] = NULL;
            CHECK_STEP_FAILS(t, N, p, c, r, NULL, RK_ERR_NULL_ARGUMENT, needle);
            arrays[a][i] = BAD_UTF8[(a * N + i) % N_BAD_UTF8];
            CHECK_STEP_FAILS(t, N, p, c, r, NULL, RK_ERR_INVALID_UTF8, needle);
            arrays[a][i] = keep;
        }
    }

    /* Strengths: each must be finite and not negative (the header does not
     * say; this is the implementation's rule, which the loss needs), naming
     * the element; -0 and 0 (a tie) are fine. */
    static const struct {
        float s[N];
        size_t bad;
    } bad_strengths[] = {
        {{NAN, 1.0f, 1.0f}, 0},       {{1.0f, -1.0f, 1.0f}, 1},
        {{1.0f, 2.0f, INFINITY}, 2},  {{1.0f, -INFINITY, 1.0f}, 1},
        {{1.0f, 1.0f, -1e-30f}, 2},   {{1.0f, -NAN, 1.0f}, 1},
    };
    for (size_t i = 0; i < sizeof bad_strengths / sizeof bad_strengths[0]; i++) {
        snprintf(needle, sizeof needle, "strengths[%zu]", bad_strengths[i].bad);
        CHECK_STEP_FAILS(t, N, p, c, r, bad_strengths[i].s, RK_ERR_INVALID_ARGUMENT, needle);
    }
    const float ties[N] = {0.0f, -0.0f, 0.0f};
    const float ok_strengths[N] = {3.0f, 1.0f, 2.0f};
    check_step_ok(t, N, p, c, r, ties, "all ties");
    check_step_ok(t, N, p, c, r, ok_strengths, "strengths");
    check_step_ok(t, N, p, c, r, NULL, "NULL strengths");
    CHECK_OK(rk_trainer_step(t, N, p, c, r, NULL, NULL)); /* out_loss may be NULL */
    check_step_ok(t, 1, p, c, r, NULL, "n = 1 of 3");

    /* Strengths so large the loss overflows: an error, the parameters kept,
     * and the trainer still works. */
    const float huge[N] = {3e38f, 3e38f, 3e38f};
    CHECK_STEP_FAILS(t, N, p, c, r, huge, RK_ERR_INVALID_ARGUMENT, NULL);
    check_step_ok(t, N, p, c, r, NULL, "after an overflowing step");

    /* Empty, odd and very long text. */
    const char *empty[N] = {"", "", ""};
    check_step_ok(t, N, empty, empty, empty, NULL, "empty strings");
    const char *odd_p[N] = {ODD_TEXT[2], ODD_TEXT[4], ODD_TEXT[8]};
    const char *odd_c[N] = {ODD_TEXT[7], ODD_TEXT[10], ODD_TEXT[11]};
    check_step_ok(t, N, odd_p, odd_c, empty, NULL, "odd text");
    char *long_a = repeat("water is good and helpful. ", g_long_len);
    char *long_b = repeat("\xf0\x9f\x94\xa5", g_medium_len);
    const char *lp[N] = {"", long_b, ""};
    const char *lc[N] = {long_a, "short", long_b};
    const char *lr[N] = {"", long_b, long_b};
    check_step_ok(t, N, lp, lc, lr, ok_strengths, "very long strings");
    free(long_a);
    free(long_b);
}

/* The progress callback's record. */
struct progress_log {
    int calls;
    int stop_at;   /* return `stop_with` on this call (1-based); 0 = never */
    int stop_with;
    void *self;    /* user_data must come back unchanged */
    int bad;       /* NULL progress, wrong user_data, or a non-finite loss */
};

static int on_progress(void *user_data, const rk_progress *p) {
    struct progress_log *log = user_data;
    log->calls++;
    if (p == NULL || log->self != log || !isfinite(p->loss) || p->total_steps == 0)
        log->bad++;
    return log->calls == log->stop_at ? log->stop_with : 0;
}

static void test_trainer_run(rk_trainer *t) {
    char out_buf[PATH_SIZE];
    const char *out = path_into(out_buf, scratch("run-out"));

    /* Each pointer NULL in turn (eval_path, progress, user_data may be). */
    CHECK_ERR(rk_trainer_run(NULL, g_pairs, NULL, out, NULL, NULL), RK_ERR_NULL_ARGUMENT,
              "trainer");
    CHECK_ERR(rk_trainer_run(t, NULL, NULL, out, NULL, NULL), RK_ERR_NULL_ARGUMENT, "data_path");
    CHECK_ERR(rk_trainer_run(t, g_pairs, NULL, NULL, NULL, NULL), RK_ERR_NULL_ARGUMENT, "out_dir");
    CHECK_ERR(rk_trainer_run(NULL, NULL, NULL, NULL, NULL, NULL), RK_ERR_NULL_ARGUMENT, NULL);

    char buf[4400];
    for (size_t i = 0; i < N_BAD_UTF8; i++) {
        snprintf(buf, sizeof buf, "%s%s", g_pairs, BAD_UTF8[i]);
        CHECK_ERR(rk_trainer_run(t, buf, NULL, out, NULL, NULL), RK_ERR_INVALID_UTF8, "data_path");
        CHECK_ERR(rk_trainer_run(t, g_pairs, buf, out, NULL, NULL), RK_ERR_INVALID_UTF8,
                  "eval_path");
        snprintf(buf, sizeof buf, "%s%s", out, BAD_UTF8[i]);
        CHECK_ERR(rk_trainer_run(t, g_pairs, NULL, buf, NULL, NULL), RK_ERR_INVALID_UTF8,
                  "out_dir");
    }

    /* Files that cannot be read are IO; files that hold no pairs are bad
     * arguments. */
    CHECK_ERR(rk_trainer_run(t, scratch("no-such.jsonl"), NULL, out, NULL, NULL), RK_ERR_IO,
              "no-such.jsonl");
    CHECK_ERR(rk_trainer_run(t, g_pairs, scratch("no-such-eval.jsonl"), out, NULL, NULL),
              RK_ERR_IO, "no-such-eval.jsonl");
    CHECK_ERR(rk_trainer_run(t, g_tiny, NULL, out, NULL, NULL), RK_ERR_IO, NULL); /* a directory */
    write_file(scratch("empty.jsonl"), "");
    CHECK_ERR(rk_trainer_run(t, scratch("empty.jsonl"), NULL, out, NULL, NULL),
              RK_ERR_INVALID_ARGUMENT, "empty.jsonl");
    write_file(scratch("garbage.jsonl"), "{not json\n\xff\xfe\n");
    CHECK_ERR(rk_trainer_run(t, scratch("garbage.jsonl"), NULL, out, NULL, NULL),
              RK_ERR_INVALID_ARGUMENT, "garbage.jsonl");
    write_file(scratch("latin1.jsonl"),
               "{\"prompt\": \"caf\xe9\", \"chosen\": \"a\", \"rejected\": \"b\"}\n");
    CHECK_ERR(rk_trainer_run(t, scratch("latin1.jsonl"), NULL, out, NULL, NULL),
              RK_ERR_INVALID_ARGUMENT, "latin1.jsonl");
    /* An out_dir that is a regular file cannot be written into. */
    CHECK_ERR(rk_trainer_run(t, g_pairs, NULL, g_pairs, NULL, NULL), RK_ERR_IO, NULL);

    /* The callback stops the run: NULL is returned, a checkpoint is written,
     * the bundle (written only when a run completes) is not. */
    const int stops[2] = {1, -1};
    for (int k = 0; k < 2; k++) {
        char dir_buf[PATH_SIZE], ck_buf[PATH_SIZE];
        const char *dir = path_into(dir_buf, scratch(k == 0 ? "stopped-1" : "stopped-minus-1"));
        struct progress_log log = {0, 1, stops[k], NULL, 0};
        log.self = &log;
        CHECK_OK(rk_trainer_run(t, g_pairs, NULL, dir, on_progress, &log));
        CHECK(log.calls == 1 && log.bad == 0);
        CHECK(exists(join(path_into(ck_buf, join(dir, "checkpoint")), "state.json")));
        CHECK(exists(join(dir, "metrics.jsonl")));
        CHECK(!exists(join(dir, "model.onnx")));
    }

    /* After all these errors the trainer still trains and saves. */
    const char *p[1] = {"explain the moon"}, *c[1] = {"the moon is a moon."}, *r[1] = {"no."};
    check_step_ok(t, 1, p, c, r, NULL, "after failed runs");
}

static void test_trainer_save(rk_trainer *t) {
    CHECK_ERR(rk_trainer_save_bundle(NULL, scratch("saved")), RK_ERR_NULL_ARGUMENT, "trainer");
    CHECK_ERR(rk_trainer_save_bundle(t, NULL), RK_ERR_NULL_ARGUMENT, "out_dir");
    CHECK_ERR(rk_trainer_save_bundle(NULL, NULL), RK_ERR_NULL_ARGUMENT, NULL);
    char buf[4400];
    for (size_t i = 0; i < N_BAD_UTF8; i++) {
        snprintf(buf, sizeof buf, "%s%s", scratch("saved"), BAD_UTF8[i]);
        CHECK_ERR(rk_trainer_save_bundle(t, buf), RK_ERR_INVALID_UTF8, "out_dir");
    }
    CHECK_ERR(rk_trainer_save_bundle(t, g_pairs), RK_ERR_IO, NULL); /* a regular file */
    CHECK_ERR(rk_trainer_save_bundle(t, join(g_pairs, "sub")), RK_ERR_IO, NULL);

    /* Created if needed, parents included; the result opens and scores. */
    char nested_buf[PATH_SIZE];
    const char *nested = path_into(nested_buf, scratch("saved/a/b \xe2\x9c\x93/c"));
    if (CHECK_OK(rk_trainer_save_bundle(t, nested)))
        check_opens_and_scores(nested, NULL, "saved bundle");
    CHECK_OK(rk_trainer_save_bundle(t, nested)); /* again: files replaced */
}

/* An empty path names no file or directory (POSIX: ENOENT). A call given
 * one must fail, and must write nothing into the current directory. Each
 * case runs in a new empty directory (ONNX Runtime is loaded by now, so
 * leaving the repository does not hide .rewardkit/ort from the library). */
enum empty_path_case {
    EMPTY_WORK_DIR,
    EMPTY_INIT_BACKBONE,
    EMPTY_INIT_BUNDLE,
    EMPTY_SAVE_OUT_DIR,
    EMPTY_RUN_OUT_DIR,
    EMPTY_RUN_DATA_PATH,
    EMPTY_RUN_EVAL_PATH,
    EMPTY_RECIPE_PATH,
    EMPTY_BUNDLE_DIR,
    N_EMPTY_PATH_CASES
};

static const char *const EMPTY_PATH_CALLS[N_EMPTY_PATH_CASES] = {
    "rk_trainer_new(work_dir \"\")",
    "rk_trainer_new(init_dir \"\", RK_INIT_BACKBONE)",
    "rk_trainer_new(init_dir \"\", RK_INIT_BUNDLE)",
    "rk_trainer_save_bundle(out_dir \"\")",
    "rk_trainer_run(out_dir \"\")",
    "rk_trainer_run(data_path \"\")",
    "rk_trainer_run(eval_path \"\")",
    "rk_trainer_new_from_file(recipe_path \"\")",
    "rk_scorer_open(bundle_dir \"\")",
};

/* Make the call of case `c`. A trainer or scorer it makes is freed, and
 * counted in *made. */
static rk_error *empty_path_call(enum empty_path_case c, rk_trainer *t, const char *graphs,
                                 int *made) {
    rk_trainer *nt = SENTINEL_TRAINER;
    rk_scorer *ns = SENTINEL_SCORER;
    rk_error *err = NULL;
    /* A callback that stops the run after its first step, to keep it short. */
    struct progress_log log = {0, 1, 1, NULL, 0};
    log.self = &log;
    switch (c) {
    case EMPTY_WORK_DIR:
        err = rk_trainer_new(RECIPE, g_tiny, RK_INIT_BACKBONE, "", &nt);
        break;
    case EMPTY_INIT_BACKBONE:
        err = rk_trainer_new(RECIPE, "", RK_INIT_BACKBONE, graphs, &nt);
        break;
    case EMPTY_INIT_BUNDLE:
        err = rk_trainer_new(RECIPE, "", RK_INIT_BUNDLE, graphs, &nt);
        break;
    case EMPTY_SAVE_OUT_DIR:
        err = rk_trainer_save_bundle(t, "");
        break;
    case EMPTY_RUN_OUT_DIR:
        err = rk_trainer_run(t, g_pairs, NULL, "", on_progress, &log);
        break;
    case EMPTY_RUN_DATA_PATH:
        err = rk_trainer_run(t, "", NULL, join(g_scratch, "run-out"), on_progress, &log);
        break;
    case EMPTY_RUN_EVAL_PATH:
        err = rk_trainer_run(t, g_pairs, "", join(g_scratch, "run-out"), on_progress, &log);
        break;
    case EMPTY_RECIPE_PATH:
        err = rk_trainer_new_from_file("", g_tiny, RK_INIT_BACKBONE, graphs, &nt);
        break;
    case EMPTY_BUNDLE_DIR:
        err = rk_scorer_open("", NULL, &ns);
        break;
    default:
        break;
    }
    *made = nt != SENTINEL_TRAINER || ns != SENTINEL_SCORER;
    if (nt != SENTINEL_TRAINER)
        rk_trainer_free(nt);
    if (ns != SENTINEL_SCORER)
        rk_scorer_free(ns);
    return err;
}

static void test_empty_paths(rk_trainer *t) {
    char saved_cwd[PATH_SIZE], graphs[PATH_SIZE], dir[PATH_SIZE];
    if (getcwd(saved_cwd, sizeof saved_cwd) == NULL) {
        fail_at(__FILE__, __LINE__, "getcwd: %s", strerror(errno));
        return;
    }
    path_into(graphs, scratch("trainer-graphs"));
    for (int c = 0; c < N_EMPTY_PATH_CASES; c++) {
        snprintf(dir, sizeof dir, "%s/empty-cwd-%d", g_scratch, c);
        if (mkdir(dir, 0755) != 0 || chdir(dir) != 0) {
            fail_at(__FILE__, __LINE__, "cannot make and enter %s: %s", dir, strerror(errno));
            continue;
        }
        int made = 0;
        rk_error *err = empty_path_call((enum empty_path_case)c, t, graphs, &made);
        int written = count_entries(".");
        if (chdir(saved_cwd) != 0) {
            fail_at(__FILE__, __LINE__, "cannot go back to %s", saved_cwd);
            rk_error_free(err);
            return;
        }
        if (err == NULL)
            fail_at(__FILE__, __LINE__, "%s succeeded%s", EMPTY_PATH_CALLS[c],
                    made ? " and made a handle" : "");
        else if (rk_error_code(err) == RK_ERR_PANIC || rk_error_code(err) == RK_ERR_INTERNAL)
            fail_at(__FILE__, __LINE__, "%s: error %u: %s", EMPTY_PATH_CALLS[c],
                    (unsigned)rk_error_code(err), rk_error_message(err));
        else
            g_passed++;
        if (written != 0)
            fail_at(__FILE__, __LINE__, "%s wrote %d entries into the current directory (%s)",
                    EMPTY_PATH_CALLS[c], written, err ? rk_error_message(err) : "no error");
        else
            g_passed++;
        rk_error_free(err);
    }
}

/* Several threads on one trainer: calls are serialised; good ones train, bad
 * ones get their own errors. */
struct trainer_worker {
    rk_trainer *t;
    int id;
    int wrong;
};

static void *trainer_worker_main(void *arg) {
    struct trainer_worker *w = arg;
    char prompt[64], needle[32];
    snprintf(prompt, sizeof prompt, "question number %d", w->id);
    const char *p[2] = {prompt, "another question"};
    const char *c[2] = {"a good and helpful answer.", "yes, here it is."};
    const char *r[2] = {"no.", "bad."};
    float loss = SENTINEL_FLOAT;
    rk_error *err = rk_trainer_step(w->t, 2, p, c, r, NULL, &loss);
    w->wrong += err != NULL || !is_finite_result(loss);
    rk_error_free(err);
    const char *bad_c[2] = {c[0], NULL};
    loss = SENTINEL_FLOAT;
    w->wrong += !worker_err_ok(rk_trainer_step(w->t, 2, p, bad_c, r, NULL, &loss),
                               RK_ERR_NULL_ARGUMENT, "chosen[1]");
    w->wrong += loss != SENTINEL_FLOAT;
    const char *bad_r[2] = {r[0], BAD_UTF8[(size_t)w->id % N_BAD_UTF8]};
    snprintf(needle, sizeof needle, "rejected[1]");
    w->wrong += !worker_err_ok(rk_trainer_step(w->t, 2, p, c, bad_r, NULL, &loss),
                               RK_ERR_INVALID_UTF8, needle);
    w->wrong += !worker_err_ok(rk_trainer_save_bundle(w->t, NULL), RK_ERR_NULL_ARGUMENT,
                               "out_dir");
    return NULL;
}

static void test_trainer_threads(rk_trainer *t) {
    enum { NTHREADS = 4 };
    struct trainer_worker w[NTHREADS];
    pthread_t th[NTHREADS];
    int started[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) {
        w[i] = (struct trainer_worker){t, i, 0};
        started[i] = pthread_create(&th[i], NULL, trainer_worker_main, &w[i]) == 0;
        CHECK(started[i]);
    }
    for (int i = 0; i < NTHREADS; i++) {
        if (!started[i])
            continue;
        CHECK(pthread_join(th[i], NULL) == 0);
        if (w[i].wrong)
            fail_at(__FILE__, __LINE__, "trainer thread %d: %d wrong results", i, w[i].wrong);
        else
            g_passed++;
    }
}

static void test_trainer(void) {
    test_trainer_new();
    rk_trainer *t = NULL;
    if (!CHECK_OK(rk_trainer_new(RECIPE, g_tiny, RK_INIT_BACKBONE, scratch("trainer-graphs"), &t)))
        return;
    test_trainer_step(t);
    test_trainer_run(t);
    test_trainer_save(t);
    test_empty_paths(t);
    test_trainer_threads(t);
    rk_trainer_free(t);
}

/* ------------------------------------------------------------------------ */

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s WORKDIR\n", argv[0]);
        return 2;
    }
    const char *work = argv[1];
    snprintf(g_tiny, sizeof g_tiny, "%s/tiny", work);
    snprintf(g_bundle, sizeof g_bundle, "%s/bundle", work);
    snprintf(g_bundle5, sizeof g_bundle5, "%s/bundle5", work);
    snprintf(g_pairs, sizeof g_pairs, "%s/pairs.jsonl", work);
    snprintf(g_scratch, sizeof g_scratch, "%s/hostile-XXXXXX", work);
    if (mkdtemp(g_scratch) == NULL) {
        fprintf(stderr, "cannot create %s: %s\n", g_scratch, strerror(errno));
        return 2;
    }
    const char *quick = getenv("RK_TEST_QUICK");
    g_quick = quick != NULL && strcmp(quick, "1") == 0;
    g_long_len = g_quick ? (size_t)16 << 10 : (size_t)1 << 20;
    g_medium_len = g_quick ? (size_t)4 << 10 : (size_t)64 << 10;

    test_error_functions();
    test_open();
    rk_scorer *s = open_ok(g_bundle, NULL);
    rk_scorer *s5 = open_ok(g_bundle5, NULL);
    if (s != NULL && s5 != NULL) {
        test_score(s);
        test_compare(s);
        test_batches(s, s5);
        test_outputs(s, s5);
    }
    rk_scorer_free(s5);
    rk_scorer_free(s);
    test_threads();
    test_trainer();

    printf("%d passed, %d failed\n", g_passed, g_failed);
    return g_failed == 0 ? 0 : 1;
}
