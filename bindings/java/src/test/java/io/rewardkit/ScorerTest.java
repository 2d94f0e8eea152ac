package io.rewardkit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

class ScorerTest {
    private static final List<String> PROMPTS = List.of(
            "What is the capital of France?",
            "What is the capital of France?",
            "Name a prime number.",
            "Traduis « bonjour » en japonais. 🙂");
    private static final List<String> RESPONSES = List.of(
            "Paris.",
            "Probably Lyon.",
            "Seven is prime.",
            "こんにちは");

    private static Scorer scorer;

    @BeforeAll
    static void open() {
        scorer = Scorer.open(TestBundles.bundle());
    }

    @AfterAll
    static void close() {
        if (scorer != null) {
            scorer.close();
        }
    }

    @Test
    void singleMatchesBatch() {
        float[] batch = scorer.scoreBatch(PROMPTS, RESPONSES);
        assertEquals(PROMPTS.size(), batch.length);
        for (int i = 0; i < batch.length; i++) {
            assertEquals(scorer.score(PROMPTS.get(i), RESPONSES.get(i)), batch[i], 1e-5, "pair " + i);
        }
        assertNotEquals(batch[0], batch[1], "different responses scored the same");
    }

    @Test
    void scoringIsDeterministic() {
        assertEquals(scorer.score(PROMPTS.get(0), RESPONSES.get(0)), scorer.score(PROMPTS.get(0), RESPONSES.get(0)));
    }

    @Test
    void compareIsTheSigmoidOfTheRewardDifference() {
        String p = PROMPTS.get(0);
        float ra = scorer.score(p, RESPONSES.get(0));
        float rb = scorer.score(p, RESPONSES.get(1));
        double expected = 1.0 / (1.0 + Math.exp(-((double) ra - rb)));
        assertEquals(expected, scorer.compare(p, RESPONSES.get(0), RESPONSES.get(1)), 1e-6);
        assertEquals(1.0 - expected, scorer.compare(p, RESPONSES.get(1), RESPONSES.get(0)), 1e-6);
    }

    @Test
    void scalarBundleHasOneOutput() {
        assertEquals(List.of("reward"), scorer.outputNames());
        assertEquals(1, scorer.numOutputs());
        float[][] out = scorer.scoreOutputs(PROMPTS, RESPONSES);
        float[] rewards = scorer.scoreBatch(PROMPTS, RESPONSES);
        assertEquals(PROMPTS.size(), out.length);
        for (int i = 0; i < out.length; i++) {
            assertEquals(1, out[i].length);
            assertEquals(rewards[i], out[i][0], 1e-5);
        }
    }

    @Test
    void fiveOutputs() {
        try (Scorer five = Scorer.open(TestBundles.bundle5())) {
            assertEquals(List.of("helpfulness", "correctness", "coherence", "complexity", "verbosity"), five.outputNames());
            float[][] out = five.scoreOutputs(PROMPTS, RESPONSES);
            assertEquals(PROMPTS.size(), out.length);
            for (int i = 0; i < out.length; i++) {
                assertEquals(5, out[i].length, "row " + i);
                assertEquals(five.score(PROMPTS.get(i), RESPONSES.get(i)), out[i][0], 1e-5, "row " + i);
            }
            // Rows are pairs and columns outputs, not the transpose.
            float[][] single = five.scoreOutputs(PROMPTS.subList(2, 3), RESPONSES.subList(2, 3));
            assertArrayEquals(out[2], single[0], 1e-5f);
        }
    }

    @Test
    void optionsStartFromTheLibraryDefaults() {
        Options d = Options.defaults();
        assertEquals(Device.CPU, d.device());
        assertEquals(32, d.maxBatch());
        assertEquals(1, d.maxSessions());
        Options o = Options.builder().maxBatch(2).threads(1).maxLength(16).build();
        assertEquals(2, o.maxBatch());
        assertEquals(d.maxSessions(), o.maxSessions());
        assertThrows(IllegalArgumentException.class, () -> Options.builder().maxSessions(-1));
        // A batch larger than max_batch is split by the library; results do not change.
        try (Scorer small = Scorer.open(TestBundles.bundle(), Options.builder().maxBatch(2).threads(1).build())) {
            assertArrayEquals(scorer.scoreBatch(PROMPTS, RESPONSES), small.scoreBatch(PROMPTS, RESPONSES), 1e-5f);
        }
    }

    @Test
    void invalidOptionValueIsReportedByTheLibrary() {
        RewardkitException e = assertThrows(RewardkitException.class,
                () -> Scorer.open(TestBundles.bundle(), Options.builder().maxBatch(0).build()).close());
        assertEquals(ErrorCode.INVALID_ARGUMENT, e.errorCode());
    }

    // ---- errors ---------------------------------------------------------

    @Test
    void nonexistentBundle() {
        Path missing = Path.of("/nonexistent/rewardkit-bundle");
        RewardkitException e = assertThrows(RewardkitException.class, () -> Scorer.open(missing));
        // The library reports a missing directory as an invalid bundle ("not a directory").
        assertEquals(ErrorCode.INVALID_BUNDLE, e.errorCode());
        assertEquals(201, e.code());
        assertTrue(e.getMessage().contains("rewardkit-bundle"), e.getMessage());
    }

    @Test
    void brokenBundle() {
        RewardkitException e = assertThrows(RewardkitException.class, () -> Scorer.open(TestBundles.broken()));
        assertEquals(ErrorCode.INVALID_BUNDLE, e.errorCode());
        assertTrue(e.getMessage().contains("model.onnx"), e.getMessage());
    }

    @Test
    void nullArgumentsThrowNullPointerException() {
        List<String> withNull = Arrays.asList("a", null);
        List<String> two = List.of("a", "b");
        List<Executable> calls = List.of(
                () -> Scorer.open(null),
                () -> scorer.score(null, "r"),
                () -> scorer.score("p", null),
                () -> scorer.scoreBatch(null, two),
                () -> scorer.scoreBatch(two, null),
                () -> scorer.scoreBatch(withNull, two),
                () -> scorer.scoreBatch(two, withNull),
                () -> scorer.scoreOutputs(null, two),
                () -> scorer.scoreOutputs(two, withNull),
                () -> scorer.compare(null, "a", "b"),
                () -> scorer.compare("p", null, "b"),
                () -> scorer.compare("p", "a", null));
        for (Executable call : calls) {
            assertThrows(NullPointerException.class, call);
        }
        NullPointerException e = assertThrows(NullPointerException.class, () -> scorer.scoreBatch(two, withNull));
        assertEquals("responses[1]", e.getMessage());
    }

    @Test
    void mismatchedLengths() {
        for (Executable call : List.<Executable>of(
                () -> scorer.scoreBatch(List.of("a", "b"), List.of("a")),
                () -> scorer.scoreOutputs(List.of("a"), List.of("a", "b")),
                () -> scorer.scoreBatch(List.of(), List.of("a")))) {
            RewardkitException e = assertThrows(RewardkitException.class, call);
            assertEquals(ErrorCode.LENGTH_MISMATCH, e.errorCode());
        }
    }

    @Test
    void emptyBatch() {
        for (Executable call : List.<Executable>of(
                () -> scorer.scoreBatch(List.of(), List.of()),
                () -> scorer.scoreOutputs(List.of(), List.of()))) {
            RewardkitException e = assertThrows(RewardkitException.class, call);
            assertEquals(ErrorCode.EMPTY_BATCH, e.errorCode());
            assertEquals(102, e.code());
        }
    }

    @Test
    void nulCharacterIsRejectedNotTruncated() {
        RewardkitException e = assertThrows(RewardkitException.class, () -> scorer.score("p\0hidden", "r"));
        assertEquals(ErrorCode.INVALID_ARGUMENT, e.errorCode());
    }

    @Test
    void unpairedSurrogateDoesNotCrash() {
        // Java strings may hold text that is not valid UTF-16; the encoder replaces it.
        float r = scorer.score("p", "broken \uD800 text");
        assertFalse(Float.isNaN(r));
    }

    @Test
    void closedScorer() {
        Scorer s = Scorer.open(TestBundles.bundle());
        assertFalse(s.isClosed());
        s.close();
        s.close(); // idempotent
        assertTrue(s.isClosed());
        List<String> one = List.of("a");
        for (Executable call : List.<Executable>of(
                () -> s.score("p", "r"),
                () -> s.scoreBatch(one, one),
                () -> s.scoreOutputs(one, one),
                () -> s.compare("p", "a", "b"))) {
            assertThrows(IllegalStateException.class, call);
        }
        assertEquals(List.of("reward"), s.outputNames());
    }

    // ---- threads --------------------------------------------------------

    @Test
    void manyThreadsMatchSequentialScoring() throws Exception {
        int threads = 16;
        int calls = 20;
        String[] responses = new String[threads * calls];
        for (int i = 0; i < responses.length; i++) {
            responses[i] = "answer number " + i + (i % 3 == 0 ? " with some extra words" : "");
        }
        String prompt = "Give me an answer.";
        Options opts = Options.builder().maxSessions(2).threads(1).build();
        try (Scorer shared = Scorer.open(TestBundles.bundle(), opts)) {
            float[] expected = new float[responses.length];
            for (int i = 0; i < responses.length; i++) {
                expected[i] = shared.score(prompt, responses[i]);
            }
            float[] got = new float[responses.length];
            ExecutorService pool = Executors.newFixedThreadPool(threads);
            try {
                CountDownLatch start = new CountDownLatch(1);
                List<Future<?>> done = new ArrayList<>();
                for (int t = 0; t < threads; t++) {
                    int first = t * calls;
                    done.add(pool.submit(() -> {
                        start.await();
                        for (int i = first; i < first + calls; i++) {
                            got[i] = shared.score(prompt, responses[i]);
                        }
                        return null;
                    }));
                }
                start.countDown();
                for (Future<?> f : done) {
                    f.get(120, TimeUnit.SECONDS);
                }
            } finally {
                pool.shutdownNow();
            }
            assertArrayEquals(expected, got);
        }
    }

    @Test
    void closeWaitsForCallsInFlight() throws Exception {
        Scorer s = Scorer.open(TestBundles.bundle(), Options.builder().maxSessions(2).threads(1).build());
        int threads = 4;
        AtomicInteger scored = new AtomicInteger();
        AtomicInteger refused = new AtomicInteger();
        ExecutorService pool = Executors.newFixedThreadPool(threads);
        try {
            CountDownLatch running = new CountDownLatch(threads);
            List<Future<?>> done = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                done.add(pool.submit(() -> {
                    running.countDown();
                    for (int i = 0; i < 10_000; i++) {
                        try {
                            s.score("p", "r" + i);
                            scored.incrementAndGet();
                        } catch (IllegalStateException closed) {
                            refused.incrementAndGet();
                            return null;
                        }
                    }
                    return null;
                }));
            }
            running.await();
            Thread.sleep(20);
            s.close();
            for (Future<?> f : done) {
                f.get(120, TimeUnit.SECONDS);
            }
        } finally {
            pool.shutdownNow();
        }
        assertTrue(s.isClosed());
        assertTrue(scored.get() > 0);
        assertEquals(threads, refused.get(), "every thread should have seen the close");
    }
}
