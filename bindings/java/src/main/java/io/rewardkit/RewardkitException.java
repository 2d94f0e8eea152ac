package io.rewardkit;

/**
 * An error reported by rewardkit, carrying its stable numeric code
 * ({@code RK_ERR_*}) and the library's message.
 *
 * <p>Most come from the C library. The binding raises a few itself, with the
 * same codes, for what the C API cannot see: {@link ErrorCode#LENGTH_MISMATCH}
 * for prompt and response lists of different sizes, and
 * {@link ErrorCode#INVALID_ARGUMENT} for a string holding a NUL character
 * (C would silently cut it there).
 */
public class RewardkitException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    private final int code;

    /** An error with the numeric {@code code} and {@code message}. */
    public RewardkitException(int code, String message) {
        super(message);
        this.code = code;
    }

    /** An error with {@code code}'s number and {@code message}. */
    public RewardkitException(ErrorCode code, String message) {
        this(code.code(), message);
    }

    /** The numeric code, one of the C header's {@code RK_ERR_*} values. */
    public int code() {
        return code;
    }

    /** The code as an {@link ErrorCode}; {@link ErrorCode#UNKNOWN} for a code this binding does not know. */
    public ErrorCode errorCode() {
        return ErrorCode.of(code);
    }

    @Override
    public String getMessage() {
        return "rewardkit error " + code + " (" + errorCode() + "): " + super.getMessage();
    }
}
