package io.rewardkit;

import io.rewardkit.internal.RewardkitLibrary;

/** Where a scorer runs its model. */
public enum Device {
    /** The CPU (the default). */
    CPU(RewardkitLibrary.RK_DEVICE_CPU),
    /** An NVIDIA GPU through ONNX Runtime's CUDA execution provider. */
    CUDA(RewardkitLibrary.RK_DEVICE_CUDA);

    private final int code;

    Device(int code) {
        this.code = code;
    }

    /** The C value ({@code RK_DEVICE_*}). */
    public int code() {
        return code;
    }

    static Device of(int code) {
        for (Device d : values()) {
            if (d.code == code) {
                return d;
            }
        }
        throw new IllegalStateException("rk_scorer_options_default() returned an unknown device " + code);
    }
}
