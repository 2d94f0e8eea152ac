//! Flushing subnormal floats to zero while a model runs.
//!
//! A softmax over padded keys computes `exp` of values near the mask bias
//! (-10000), whose results underflow. On x86 an underflowing `vscalefps` (the
//! last step of MLAS's vectorised `exp`) takes a slow microcode path unless
//! the flush-to-zero and denormals-are-zero flags are set: a 32 × 512 batch of
//! real pairs, most of them padded, ran about 30% slower than the same shape
//! without padding. ONNX Runtime sets the flags on its own pool threads when
//! the session asks (`session.set_denormal_as_zero`), but the calling thread
//! also computes, so [`FlushDenormals`] sets them there for the run's length.
//!
//! Subnormal floats are below 1.2e-38; flushing them changes no score or
//! gradient at any precision that matters.

/// While alive, the calling thread flushes subnormal results to zero and
/// reads subnormal inputs as zero. Dropping it restores the thread's flags.
pub(crate) struct FlushDenormals {
    #[cfg(target_arch = "x86_64")]
    saved: u32,
}

#[cfg(target_arch = "x86_64")]
impl FlushDenormals {
    /// MXCSR bits: flush-to-zero (15) and denormals-are-zero (6).
    const FLAGS: u32 = (1 << 15) | (1 << 6);

    pub(crate) fn new() -> Self {
        let saved = read_mxcsr();
        write_mxcsr(saved | Self::FLAGS);
        FlushDenormals { saved }
    }
}

#[cfg(target_arch = "x86_64")]
impl Drop for FlushDenormals {
    fn drop(&mut self) {
        write_mxcsr(self.saved);
    }
}

#[cfg(target_arch = "x86_64")]
fn read_mxcsr() -> u32 {
    let mut csr: u32 = 0;
    // SAFETY: stmxcsr stores the 32-bit control register into `csr`.
    unsafe {
        std::arch::asm!("stmxcsr [{}]", in(reg) &mut csr, options(nostack, preserves_flags));
    }
    csr
}

#[cfg(target_arch = "x86_64")]
fn write_mxcsr(csr: u32) {
    // SAFETY: ldmxcsr loads a value read from the same register with only the
    // FTZ/DAZ bits changed; both are valid on every x86-64 CPU with SSE2.
    unsafe {
        std::arch::asm!("ldmxcsr [{}]", in(reg) &csr, options(nostack, readonly, preserves_flags));
    }
}

#[cfg(not(target_arch = "x86_64"))]
impl FlushDenormals {
    pub(crate) fn new() -> Self {
        FlushDenormals {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn flags_are_set_then_restored() {
        let before = read_mxcsr();
        {
            let _g = FlushDenormals::new();
            assert_eq!(read_mxcsr() & FlushDenormals::FLAGS, FlushDenormals::FLAGS);
            // A subnormal result is flushed while the guard lives.
            let tiny = std::hint::black_box(1e-30_f32);
            assert_eq!(std::hint::black_box(tiny * 1e-10), 0.0);
        }
        assert_eq!(read_mxcsr(), before);
        let tiny = std::hint::black_box(1e-30_f32);
        assert!(std::hint::black_box(tiny * 1e-10) > 0.0);
    }
}
