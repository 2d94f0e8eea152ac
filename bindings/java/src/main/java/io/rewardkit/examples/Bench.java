package io.rewardkit.examples;

import io.rewardkit.Scorer;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Locale;

/**
 * Latency of single-pair {@link Scorer#score} calls: warms up, then times
 * {@code N} calls one by one and prints one line,
 * {@code median_us=<float> p99_us=<float>}.
 *
 * <pre>
 * java ... io.rewardkit.examples.Bench BUNDLE_DIR N [WARMUP]
 * </pre>
 */
public final class Bench {
    private Bench() {}

    public static void main(String[] args) {
        if (args.length < 2 || args.length > 3) {
            System.err.println("usage: Bench BUNDLE_DIR N [WARMUP (default: min(N, 200))]");
            System.exit(2);
        }
        int n = Integer.parseInt(args[1]);
        if (n < 1) {
            System.err.println("N must be at least 1");
            System.exit(2);
        }
        int warmup = args.length == 3 ? Integer.parseInt(args[2]) : Math.min(n, 200);
        String prompt = "What is the capital of France?";
        String response = "The capital of France is Paris.";

        try (Scorer scorer = Scorer.open(Path.of(args[0]))) {
            float sink = 0;
            for (int i = 0; i < warmup; i++) {
                sink += scorer.score(prompt, response);
            }
            long[] ns = new long[n];
            for (int i = 0; i < n; i++) {
                long t0 = System.nanoTime();
                sink += scorer.score(prompt, response);
                ns[i] = System.nanoTime() - t0;
            }
            Arrays.sort(ns);
            double median = n % 2 == 1 ? ns[n / 2] : (ns[n / 2 - 1] + ns[n / 2]) / 2.0;
            double p99 = ns[Math.min(n - 1, (int) Math.ceil(0.99 * n) - 1)];
            if (Float.isNaN(sink)) {
                System.err.println("a score was NaN");
            }
            System.out.printf(Locale.ROOT, "median_us=%.1f p99_us=%.1f%n", median / 1e3, p99 / 1e3);
        }
    }
}
