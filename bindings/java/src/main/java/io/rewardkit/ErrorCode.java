package io.rewardkit;

import io.rewardkit.internal.RewardkitLibrary;

/**
 * The stable numeric codes of rewardkit errors, one per {@code RK_ERR_*} value
 * of {@code rewardkit.h}. {@link RewardkitException#errorCode()} returns one of
 * these; {@link #UNKNOWN} stands for a code this binding does not know (a newer
 * library), whose number is still in {@link RewardkitException#code()}.
 */
public enum ErrorCode {
    /** A required argument was NULL. */
    NULL_ARGUMENT(RewardkitLibrary.RK_ERR_NULL_ARGUMENT),
    /** A string argument was not valid UTF-8. */
    INVALID_UTF8(RewardkitLibrary.RK_ERR_INVALID_UTF8),
    /** A batch had zero elements. */
    EMPTY_BATCH(RewardkitLibrary.RK_ERR_EMPTY_BATCH),
    /** Parallel inputs (prompts and responses) had different lengths. */
    LENGTH_MISMATCH(RewardkitLibrary.RK_ERR_LENGTH_MISMATCH),
    /** An argument had a value outside what is accepted. */
    INVALID_ARGUMENT(RewardkitLibrary.RK_ERR_INVALID_ARGUMENT),
    /** Reading or writing a file failed. */
    IO(RewardkitLibrary.RK_ERR_IO),
    /** A bundle is invalid: no such directory, manifest, missing files, manifest and graph disagree. */
    INVALID_BUNDLE(RewardkitLibrary.RK_ERR_INVALID_BUNDLE),
    /** An ONNX model could not be read or is not what was expected. */
    INVALID_MODEL(RewardkitLibrary.RK_ERR_INVALID_MODEL),
    /** A tokenizer could not be loaded or failed to encode. */
    TOKENIZER(RewardkitLibrary.RK_ERR_TOKENIZER),
    /** A file has a format version this build does not support. */
    UNSUPPORTED_VERSION(RewardkitLibrary.RK_ERR_UNSUPPORTED_VERSION),
    /** A backbone (config.json and weights) is invalid or unsupported. */
    INVALID_BACKBONE(RewardkitLibrary.RK_ERR_INVALID_BACKBONE),
    /** The ONNX Runtime library could not be found or loaded. */
    RUNTIME_NOT_FOUND(RewardkitLibrary.RK_ERR_RUNTIME_NOT_FOUND),
    /** ONNX Runtime reported an error. */
    RUNTIME(RewardkitLibrary.RK_ERR_RUNTIME),
    /** The requested execution provider (such as CUDA) is not available. */
    PROVIDER_UNAVAILABLE(RewardkitLibrary.RK_ERR_PROVIDER_UNAVAILABLE),
    /** A panic was caught at the C boundary: a bug in rewardkit. */
    PANIC(RewardkitLibrary.RK_ERR_PANIC),
    /** An internal invariant was broken: a bug in rewardkit. */
    INTERNAL(RewardkitLibrary.RK_ERR_INTERNAL),
    /** A code this version of the binding does not know; see {@link RewardkitException#code()}. */
    UNKNOWN(-1);

    private final int code;

    ErrorCode(int code) {
        this.code = code;
    }

    /** The C value ({@code RK_ERR_*}); -1 for {@link #UNKNOWN}. */
    public int code() {
        return code;
    }

    /** The constant for a C code, or {@link #UNKNOWN} if there is none. */
    public static ErrorCode of(int code) {
        for (ErrorCode c : values()) {
            if (c.code == code && c != UNKNOWN) {
                return c;
            }
        }
        return UNKNOWN;
    }
}
