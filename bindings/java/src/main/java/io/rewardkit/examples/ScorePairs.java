package io.rewardkit.examples;

import io.rewardkit.Rewardkit;
import io.rewardkit.Scorer;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;

/**
 * Scores a few (prompt, response) pairs with the bundle given as the first
 * argument and prints them as a table, every output of the model included.
 *
 * <pre>
 * java -Drewardkit.library.path=target/release -cp ... io.rewardkit.examples.ScorePairs BUNDLE
 * </pre>
 */
public final class ScorePairs {
    private ScorePairs() {}

    public static void main(String[] args) {
        if (args.length != 1) {
            System.err.println("usage: ScorePairs BUNDLE_DIR");
            System.exit(2);
        }
        List<String> prompts = List.of(
                "What is the capital of France?",
                "What is the capital of France?",
                "Write a haiku about rain.",
                "Explain recursion in one sentence.");
        List<String> responses = List.of(
                "Paris.",
                "I think it might be Lyon, or maybe Marseille.",
                "Soft rain on the roof / the gutters hum their old song / puddles hold the sky",
                "A function is recursive when it calls itself on a smaller input until a base case stops it.");

        try (Scorer scorer = Scorer.open(Path.of(args[0]))) {
            float[] rewards = scorer.scoreBatch(prompts, responses);
            float[][] outputs = scorer.scoreOutputs(prompts, responses);
            List<String> names = scorer.outputNames();

            System.out.printf(Locale.ROOT, "rewardkit %s, %d output(s)%n", Rewardkit.version(), names.size());
            StringBuilder head = new StringBuilder(String.format(Locale.ROOT, "%-36s %-40s %8s", "prompt", "response", "reward"));
            for (String name : names) {
                head.append(String.format(Locale.ROOT, " %12s", clip(name, 12)));
            }
            System.out.println(head);
            for (int i = 0; i < prompts.size(); i++) {
                StringBuilder row = new StringBuilder(String.format(Locale.ROOT, "%-36s %-40s %8.4f",
                        clip(prompts.get(i), 36), clip(responses.get(i), 40), rewards[i]));
                for (float v : outputs[i]) {
                    row.append(String.format(Locale.ROOT, " %12.4f", v));
                }
                System.out.println(row);
            }
            float p = scorer.compare(prompts.get(0), responses.get(0), responses.get(1));
            System.out.printf(Locale.ROOT, "P(\"%s\" better than \"%s\") = %.4f%n",
                    clip(responses.get(0), 20), clip(responses.get(1), 20), p);
        }
    }

    private static String clip(String s, int width) {
        return s.length() <= width ? s : s.substring(0, width - 1) + "…";
    }
}
