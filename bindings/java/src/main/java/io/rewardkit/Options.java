package io.rewardkit;

import io.rewardkit.internal.RewardkitLibrary.RkScorerOptions;
import io.rewardkit.internal.RewardkitLibrary.SizeT;

/**
 * Options for {@link Scorer#open(java.nio.file.Path, Options)}, mirroring the C
 * {@code rk_scorer_options}. Immutable; make one with {@link #builder()}, which
 * starts from the library's defaults ({@code rk_scorer_options_default()}: all
 * cores, batches of 32, the bundle's max length, CPU, one session).
 *
 * <pre>{@code
 * Options opts = Options.builder().maxSessions(4).threads(1).build();
 * }</pre>
 */
public final class Options {
    private final long threads;
    private final long maxBatch;
    private final long maxLength;
    private final Device device;
    private final int deviceId;
    private final long maxSessions;

    private Options(Builder b) {
        this.threads = b.threads;
        this.maxBatch = b.maxBatch;
        this.maxLength = b.maxLength;
        this.device = b.device;
        this.deviceId = b.deviceId;
        this.maxSessions = b.maxSessions;
    }

    /** The library's default options. Loads the native library. */
    public static Options defaults() {
        return builder().build();
    }

    /** A builder holding the library's defaults. Loads the native library. */
    public static Builder builder() {
        return new Builder(NativeLoader.library().rk_scorer_options_default());
    }

    /** Intra-op threads per session; 0 = one per core. */
    public long threads() {
        return threads;
    }

    /** Most pairs run through the model at once. */
    public long maxBatch() {
        return maxBatch;
    }

    /** Longest encoded pair in tokens; 0 = the bundle's max_length. */
    public long maxLength() {
        return maxLength;
    }

    /** Where the model runs. */
    public Device device() {
        return device;
    }

    /** GPU ordinal when {@link #device()} is {@link Device#CUDA}. */
    public int deviceId() {
        return deviceId;
    }

    /** Sessions that may run at once when several threads share the scorer. */
    public long maxSessions() {
        return maxSessions;
    }

    /** The C struct, starting from {@code rk_scorer_options_default()} so that fields this binding does not know keep their defaults. */
    RkScorerOptions toNative() {
        RkScorerOptions c = NativeLoader.library().rk_scorer_options_default();
        c.threads = new SizeT(threads);
        c.max_batch = new SizeT(maxBatch);
        c.max_length = new SizeT(maxLength);
        c.device = device.code();
        c.device_id = deviceId;
        c.max_sessions = new SizeT(maxSessions);
        return c;
    }

    @Override
    public String toString() {
        return "Options{threads=" + threads + ", maxBatch=" + maxBatch + ", maxLength=" + maxLength
                + ", device=" + device + ", deviceId=" + deviceId + ", maxSessions=" + maxSessions + "}";
    }

    /**
     * Builds {@link Options}. Setters reject negative numbers with
     * {@link IllegalArgumentException}; other limits (such as a zero
     * {@code maxBatch}) are checked by the library when the scorer opens.
     */
    public static final class Builder {
        private long threads;
        private long maxBatch;
        private long maxLength;
        private Device device;
        private int deviceId;
        private long maxSessions;

        private Builder(RkScorerOptions d) {
            threads = d.threads.longValue();
            maxBatch = d.max_batch.longValue();
            maxLength = d.max_length.longValue();
            device = Device.of(d.device);
            deviceId = d.device_id;
            maxSessions = d.max_sessions.longValue();
        }

        /** Intra-op threads per session; 0 = one per core. */
        public Builder threads(long n) {
            threads = nonNegative("threads", n);
            return this;
        }

        /** Most pairs run through the model at once. */
        public Builder maxBatch(long n) {
            maxBatch = nonNegative("maxBatch", n);
            return this;
        }

        /** Longest encoded pair in tokens; 0 = the bundle's max_length. May only lower it. */
        public Builder maxLength(long n) {
            maxLength = nonNegative("maxLength", n);
            return this;
        }

        /** Where the model runs. */
        public Builder device(Device d) {
            device = java.util.Objects.requireNonNull(d, "device");
            return this;
        }

        /** GPU ordinal when the device is {@link Device#CUDA}. */
        public Builder deviceId(int id) {
            deviceId = (int) nonNegative("deviceId", id);
            return this;
        }

        /**
         * Sessions that may run at once when several threads share the scorer
         * (default 1: calls are serialised). Each extra session holds another
         * copy of the weights.
         */
        public Builder maxSessions(long n) {
            maxSessions = nonNegative("maxSessions", n);
            return this;
        }

        /** The options. */
        public Options build() {
            return new Options(this);
        }

        private static long nonNegative(String what, long n) {
            if (n < 0) {
                throw new IllegalArgumentException(what + " must be >= 0, got " + n);
            }
            return n;
        }
    }
}
