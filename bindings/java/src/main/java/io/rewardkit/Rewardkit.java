package io.rewardkit;

import io.rewardkit.internal.RewardkitLibrary;

/** Library-wide facts: the version of the loaded native library. */
public final class Rewardkit {
    private Rewardkit() {}

    /**
     * The version of the loaded {@code librewardkit}, such as {@code "0.1.0"}.
     *
     * @throws UnsatisfiedLinkError if the library cannot be loaded (the message lists where it looked)
     */
    public static String version() {
        return NativeLoader.library().rk_version();
    }

    /** The version of the C header this binding was generated from, such as {@code "0.1.0"}. */
    public static String headerVersion() {
        return RewardkitLibrary.RK_VERSION_MAJOR + "." + RewardkitLibrary.RK_VERSION_MINOR + "."
                + RewardkitLibrary.RK_VERSION_PATCH;
    }
}
