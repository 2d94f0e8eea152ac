/*
 * Score (prompt, response) pairs with a rewardkit bundle from C.
 *
 *   cc -std=c11 -Iinclude examples/c/score_pairs.c -Ltarget/release -lrewardkit \
 *      -Wl,-rpath,$PWD/target/release -o score_pairs
 *   ./score_pairs path/to/bundle
 */
#include <stdio.h>
#include <string.h>

#include "rewardkit.h"

/* Print a failed call's code and message, then release the error. */
static int report(const char *what, rk_error *err) {
    fprintf(stderr, "%s failed: error %u: %s\n", what, (unsigned)rk_error_code(err),
            rk_error_message(err));
    rk_error_free(err);
    return 1;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s BUNDLE_DIR\n", argv[0]);
        return 2;
    }

    rk_scorer *scorer = NULL;
    rk_error *err = rk_scorer_open(argv[1], NULL, &scorer); /* NULL: default options */
    if (err != NULL)
        return report("rk_scorer_open", err);

    /* Questions the demo's training data never asks, each with a thorough,
     * a curt, an unsure and a dismissive answer. */
    const char *prompts[] = {
        "How do I keep bread fresh for longer?",
        "How do I keep bread fresh for longer?",
        "How do I keep bread fresh for longer?",
        "How do I keep bread fresh for longer?",
        "Why do cats purr?",
        "Why do cats purr?",
        "Why do cats purr?",
        "Why do cats purr?",
    };
    const char *responses[] = {
        "Good question! Store it in a bread box or a paper bag at room temperature, and freeze "
        "slices you will not eat within two days. The fridge dries bread out faster. I hope this "
        "helps!",
        "Keep it in a bread box, or freeze it.",
        "I'm not sure, bread is tricky. Maybe look it up somewhere else.",
        "Not my problem. Ask someone else.",
        "Happy to help. Cats purr by rapidly twitching the muscles of their voice box, usually "
        "when they are content, but also to soothe themselves when stressed. Let me know if you "
        "want more detail.",
        "Cats purr by twitching the muscles of their voice box.",
        "Hmm, cats are a tricky one. It depends on a lot of things.",
        "Why would you even ask that? Figure it out yourself.",
    };
    enum { N = sizeof prompts / sizeof prompts[0] };
    float rewards[N];
    int status = 0;

    err = rk_scorer_score_batch(scorer, N, prompts, responses, rewards);
    if (err != NULL) {
        status = report("rk_scorer_score_batch", err);
        goto done;
    }
    printf("rewardkit %s, output \"%s\"\n\n", rk_version(), rk_scorer_output_name(scorer, 0));
    printf("%8s  %-38s  %s\n", "reward", "prompt", "response");
    for (int i = 0; i < N; i++)
        printf("%8.3f  %-38.38s  %.60s%s\n", rewards[i], prompts[i], responses[i],
               strlen(responses[i]) > 60 ? "..." : "");

    float p = 0.0f;
    err = rk_scorer_compare(scorer, prompts[0], responses[0], responses[1], &p);
    if (err != NULL) {
        status = report("rk_scorer_compare", err);
        goto done;
    }
    printf("\nP(response 1 is better than response 2) = %.4f\n", p);

done:
    rk_scorer_free(scorer);
    return status;
}
