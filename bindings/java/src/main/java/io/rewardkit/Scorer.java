package io.rewardkit;

import com.sun.jna.Pointer;
import com.sun.jna.ptr.PointerByReference;
import io.rewardkit.internal.RewardkitLibrary;
import io.rewardkit.internal.RewardkitLibrary.SizeT;
import java.lang.ref.Cleaner;
import java.lang.ref.Reference;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.locks.Lock;
import java.util.concurrent.locks.ReentrantReadWriteLock;

/**
 * A loaded reward model (a C {@code rk_scorer}).
 *
 * <pre>{@code
 * try (Scorer scorer = Scorer.open(Path.of("my-bundle"))) {
 *     float r = scorer.score("What is 2+2?", "4");
 * }
 * }</pre>
 *
 * <p><b>Threads.</b> A scorer may be used from many threads at once. Calls
 * beyond {@link Options.Builder#maxSessions(long) maxSessions} wait for a free
 * session inside the library. {@link #close()} waits for calls in flight to
 * finish; calls that start after it throw {@link IllegalStateException}.
 *
 * <p><b>Errors.</b> Failures reported by the library throw
 * {@link RewardkitException} with the C code. A {@code null} argument, or a
 * {@code null} element of a list, throws {@link NullPointerException} before
 * anything reaches C. Lists of different sizes throw {@link RewardkitException}
 * with {@link ErrorCode#LENGTH_MISMATCH}; empty lists, with
 * {@link ErrorCode#EMPTY_BATCH}; a string containing {@code '\0'}, with
 * {@link ErrorCode#INVALID_ARGUMENT}. Strings are passed as UTF-8.
 *
 * <p>A scorer that is never closed is freed once it is garbage collected, but
 * close it: the model holds native memory the collector cannot see.
 */
public final class Scorer implements AutoCloseable {
    private static final Cleaner CLEANER = Cleaner.create();

    private final RewardkitLibrary lib;
    private final Handle handle;
    private final Cleaner.Cleanable cleanable;
    private final ReentrantReadWriteLock lock = new ReentrantReadWriteLock();
    private final List<String> outputNames;

    /** Owns the native pointer; run once, by close() or by the Cleaner. */
    private static final class Handle implements Runnable {
        private final RewardkitLibrary lib;
        private Pointer ptr;

        Handle(RewardkitLibrary lib, Pointer ptr) {
            this.lib = lib;
            this.ptr = ptr;
        }

        @Override
        public void run() {
            Pointer p = ptr;
            ptr = null;
            lib.rk_scorer_free(p);
        }
    }

    private Scorer(RewardkitLibrary lib, Pointer ptr) {
        this.lib = lib;
        this.handle = new Handle(lib, ptr);
        this.cleanable = CLEANER.register(this, handle);
        int k = (int) lib.rk_scorer_num_outputs(ptr).longValue();
        List<String> names = new ArrayList<>(k);
        for (int i = 0; i < k; i++) {
            names.add(lib.rk_scorer_output_name(ptr, new SizeT(i)));
        }
        this.outputNames = Collections.unmodifiableList(names);
    }

    /**
     * Opens the bundle directory {@code bundle} with the default options.
     *
     * @throws RewardkitException {@link ErrorCode#INVALID_BUNDLE} when the directory
     *     does not exist or lacks a bundle file, other codes for unreadable or invalid models
     * @throws UnsatisfiedLinkError if the native library cannot be loaded
     */
    public static Scorer open(Path bundle) {
        return open(bundle, null);
    }

    /**
     * Opens the bundle directory {@code bundle} with {@code options} ({@code null}
     * for the defaults).
     *
     * @throws RewardkitException when the library cannot open the bundle (see {@link #open(Path)});
     *     {@link ErrorCode#INVALID_ARGUMENT} for an option value it does not accept
     * @throws UnsatisfiedLinkError if the native library cannot be loaded
     */
    public static Scorer open(Path bundle, Options options) {
        Objects.requireNonNull(bundle, "bundle");
        RewardkitLibrary lib = NativeLoader.library();
        PointerByReference out = new PointerByReference();
        check(lib, lib.rk_scorer_open(noNul(bundle.toString(), "bundle"),
                options == null ? null : options.toNative(), out));
        return new Scorer(lib, out.getValue());
    }

    /** The names of the model's outputs, in order (one for a scalar reward). Works after close. */
    public List<String> outputNames() {
        return outputNames;
    }

    /** The number of outputs of the model: the width of a {@link #scoreOutputs} row. */
    public int numOutputs() {
        return outputNames.size();
    }

    /** The reward of {@code response} to {@code prompt}. */
    public float score(String prompt, String response) {
        noNul(Objects.requireNonNull(prompt, "prompt"), "prompt");
        noNul(Objects.requireNonNull(response, "response"), "response");
        float[] out = new float[1];
        Lock r = acquire();
        try {
            check(lib, lib.rk_scorer_score(handle.ptr, prompt, response, out));
        } finally {
            r.unlock();
            Reference.reachabilityFence(this);
        }
        return out[0];
    }

    /** The rewards of {@code responses.get(i)} to {@code prompts.get(i)}, in input order. */
    public float[] scoreBatch(List<String> prompts, List<String> responses) {
        String[][] pr = pairs(prompts, responses);
        float[] out = new float[pr[0].length];
        Lock r = acquire();
        try {
            check(lib, lib.rk_scorer_score_batch(handle.ptr, new SizeT(pr[0].length), pr[0], pr[1], out));
        } finally {
            r.unlock();
            Reference.reachabilityFence(this);
        }
        return out;
    }

    /**
     * Every output for each pair: {@code result[i][j]} is output {@code j} (named
     * {@code outputNames().get(j)}) of pair {@code i}. The bundle's normalisation is
     * applied; the combination into one reward is not (that is {@link #scoreBatch}).
     */
    public float[][] scoreOutputs(List<String> prompts, List<String> responses) {
        String[][] pr = pairs(prompts, responses);
        int n = pr[0].length;
        int k = numOutputs();
        if ((long) n * k > Integer.MAX_VALUE) {
            throw new RewardkitException(ErrorCode.INVALID_ARGUMENT,
                    n + " pairs of " + k + " outputs do not fit in one Java array");
        }
        float[] flat = new float[n * k];
        Lock r = acquire();
        try {
            check(lib, lib.rk_scorer_score_outputs(handle.ptr, new SizeT(n), pr[0], pr[1], flat));
        } finally {
            r.unlock();
            Reference.reachabilityFence(this);
        }
        float[][] rows = new float[n][k];
        for (int i = 0; i < n; i++) {
            System.arraycopy(flat, i * k, rows[i], 0, k);
        }
        return rows;
    }

    /** The probability that {@code responseA} is better than {@code responseB} for {@code prompt}: σ(r_a − r_b). */
    public float compare(String prompt, String responseA, String responseB) {
        noNul(Objects.requireNonNull(prompt, "prompt"), "prompt");
        noNul(Objects.requireNonNull(responseA, "responseA"), "responseA");
        noNul(Objects.requireNonNull(responseB, "responseB"), "responseB");
        float[] out = new float[1];
        Lock r = acquire();
        try {
            check(lib, lib.rk_scorer_compare(handle.ptr, prompt, responseA, responseB, out));
        } finally {
            r.unlock();
            Reference.reachabilityFence(this);
        }
        return out[0];
    }

    /** Whether {@link #close()} has been called. */
    public boolean isClosed() {
        Lock r = lock.readLock();
        r.lock();
        try {
            return handle.ptr == null;
        } finally {
            r.unlock();
        }
    }

    /**
     * Frees the model. Waits for calls in flight on other threads; later calls
     * throw {@link IllegalStateException}. Calling it again does nothing.
     */
    @Override
    public void close() {
        Lock w = lock.writeLock();
        w.lock();
        try {
            cleanable.clean();
        } finally {
            w.unlock();
        }
    }

    /** Takes the read lock, or throws if the scorer is closed. */
    private Lock acquire() {
        Lock r = lock.readLock();
        r.lock();
        if (handle.ptr == null) {
            r.unlock();
            throw new IllegalStateException("the scorer is closed");
        }
        return r;
    }

    /** Checks two parallel lists and copies them to arrays. */
    private static String[][] pairs(List<String> prompts, List<String> responses) {
        Objects.requireNonNull(prompts, "prompts");
        Objects.requireNonNull(responses, "responses");
        String[] p = prompts.toArray(new String[0]);
        String[] r = responses.toArray(new String[0]);
        if (p.length != r.length) {
            throw new RewardkitException(ErrorCode.LENGTH_MISMATCH,
                    p.length + " prompts but " + r.length + " responses");
        }
        checkElements(p, "prompts");
        checkElements(r, "responses");
        return new String[][] {p, r};
    }

    private static void checkElements(String[] items, String what) {
        for (int i = 0; i < items.length; i++) {
            if (items[i] == null) {
                throw new NullPointerException(what + "[" + i + "]");
            }
            noNul(items[i], what + "[" + i + "]");
        }
    }

    private static String noNul(String s, String what) {
        if (s.indexOf('\0') >= 0) {
            throw new RewardkitException(ErrorCode.INVALID_ARGUMENT,
                    what + " contains a NUL character, which C strings cannot hold");
        }
        return s;
    }

    /** Throws the error {@code err} as a {@link RewardkitException} after freeing it; does nothing for NULL. */
    static void check(RewardkitLibrary lib, Pointer err) {
        if (err == null) {
            return;
        }
        int code;
        String message;
        try {
            code = lib.rk_error_code(err);
            message = lib.rk_error_message(err);
        } finally {
            lib.rk_error_free(err);
        }
        throw new RewardkitException(code, message);
    }
}
