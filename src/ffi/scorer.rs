use std::ffi::{c_char, CString};

use super::error::rk_error;
use super::util::{c_str, guard, guard_value, out_ptr};
use crate::engine::{Device, Scorer, ScorerOptions};
use crate::error::Error;

/// Run on the CPU (the default).
pub const RK_DEVICE_CPU: i32 = 0;
/// Run on an NVIDIA GPU through ONNX Runtime's CUDA execution provider.
pub const RK_DEVICE_CUDA: i32 = 1;

/// Options for `rk_scorer_open`. Always start from `rk_scorer_options_default()`
/// and change the fields you need. The layout is fixed within a major version
/// (`RK_VERSION_MAJOR`): a new field is appended, and only in a new major
/// version, since the struct is passed by value and by pointer.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct rk_scorer_options {
    /// Intra-op threads per session; 0 = one per core.
    pub threads: usize,
    /// Most pairs run through the model at once (default 32).
    pub max_batch: usize,
    /// Longest encoded pair in tokens; 0 = the bundle's max_length. May only lower it.
    pub max_length: usize,
    /// `RK_DEVICE_CPU` or `RK_DEVICE_CUDA`.
    pub device: i32,
    /// GPU ordinal when `device` is `RK_DEVICE_CUDA`.
    pub device_id: i32,
    /// Sessions that may run at once when several threads share the scorer
    /// (default 1: calls are serialised). Each extra session holds another
    /// copy of the weights.
    pub max_sessions: usize,
}

/// A loaded reward model. Thread-safe: one `rk_scorer` may be used from many
/// threads at once; calls beyond `max_sessions` wait for a free session.
pub struct rk_scorer {
    inner: Scorer,
    output_names: Vec<CString>,
}

/// Default scorer options: all cores, batches of 32, the bundle's max length,
/// CPU, one session.
#[no_mangle]
pub extern "C" fn rk_scorer_options_default() -> rk_scorer_options {
    let d = ScorerOptions::default();
    rk_scorer_options {
        threads: d.threads,
        max_batch: d.max_batch,
        max_length: 0,
        device: RK_DEVICE_CPU,
        device_id: 0,
        max_sessions: d.max_sessions,
    }
}

fn to_options(o: &rk_scorer_options) -> Result<ScorerOptions, Error> {
    let device = match o.device {
        RK_DEVICE_CPU => Device::Cpu,
        RK_DEVICE_CUDA => Device::Cuda(o.device_id),
        other => {
            return Err(Error::InvalidArgument(format!(
                "unknown device {other} (expected RK_DEVICE_CPU or RK_DEVICE_CUDA)"
            )))
        }
    };
    let mut opts = ScorerOptions::default()
        .with_threads(o.threads)
        .with_max_batch(o.max_batch)
        .with_device(device)
        .with_max_sessions(o.max_sessions);
    if o.max_length > 0 {
        opts = opts.with_max_length(o.max_length);
    }
    Ok(opts)
}

/// Open the bundle directory `bundle_dir` and load its model.
///
/// `opts` may be NULL for the defaults. On success `*out` receives a new
/// scorer, to be released with `rk_scorer_free`; on error `*out` is left as is.
/// A path that is not a bundle directory (missing, or missing a file) is
/// `RK_ERR_INVALID_BUNDLE`; an unreadable file is `RK_ERR_IO`.
#[no_mangle]
pub unsafe extern "C" fn rk_scorer_open(
    bundle_dir: *const c_char,
    opts: *const rk_scorer_options,
    out: *mut *mut rk_scorer,
) -> *mut rk_error {
    guard(|| {
        // SAFETY: NUL-terminated string or NULL, per the contract.
        let dir = unsafe { c_str(bundle_dir, "bundle_dir") }?;
        out_ptr(out, "out")?;
        // SAFETY: NULL or a pointer to a live options struct.
        let options = match unsafe { opts.as_ref() } {
            Some(o) => to_options(o)?,
            None => ScorerOptions::default(),
        };
        let inner = Scorer::open(dir, options)?;
        let output_names = inner
            .output_names()
            .iter()
            .map(|n| {
                CString::new(n.as_str())
                    .map_err(|_| Error::Internal(format!("output name {n:?} holds a NUL byte")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        // SAFETY: out checked non-NULL above.
        unsafe {
            *out = Box::into_raw(Box::new(rk_scorer {
                inner,
                output_names,
            }))
        };
        Ok(())
    })
}

/// Release a scorer. `rk_scorer_free(NULL)` does nothing. No call on the
/// scorer may be running or start afterwards.
#[no_mangle]
pub unsafe extern "C" fn rk_scorer_free(scorer: *mut rk_scorer) {
    if !scorer.is_null() {
        guard_value((), || {
            // SAFETY: created by rk_scorer_open and freed once.
            drop(unsafe { Box::from_raw(scorer) })
        });
    }
}

fn scorer_ref<'a>(scorer: *const rk_scorer) -> Result<&'a rk_scorer, Error> {
    // SAFETY: NULL or a live scorer from rk_scorer_open.
    unsafe { scorer.as_ref() }.ok_or_else(|| Error::NullArgument("scorer".into()))
}

/// Score one (prompt, response) pair; `*out_reward` receives the reward.
#[no_mangle]
pub unsafe extern "C" fn rk_scorer_score(
    scorer: *const rk_scorer,
    prompt: *const c_char,
    response: *const c_char,
    out_reward: *mut f32,
) -> *mut rk_error {
    guard(|| {
        let s = scorer_ref(scorer)?;
        // SAFETY: NUL-terminated strings or NULL, per the contract.
        let (p, r) = unsafe { (c_str(prompt, "prompt")?, c_str(response, "response")?) };
        out_ptr(out_reward, "out_reward")?;
        let v = s.inner.score(p, r)?;
        // SAFETY: checked non-NULL.
        unsafe { *out_reward = v };
        Ok(())
    })
}

/// Score `n` pairs: `prompts[i]` with `responses[i]`. `out_rewards` must have
/// room for `n` floats; it receives the rewards in input order. `n` = 0 is an
/// error (`RK_ERR_EMPTY_BATCH`).
#[no_mangle]
pub unsafe extern "C" fn rk_scorer_score_batch(
    scorer: *const rk_scorer,
    n: usize,
    prompts: *const *const c_char,
    responses: *const *const c_char,
    out_rewards: *mut f32,
) -> *mut rk_error {
    guard(|| {
        let s = scorer_ref(scorer)?;
        // n = 0 is an empty batch whatever the arrays are (bindings pass
        // NULL for empty arrays).
        if n == 0 {
            return Err(Error::EmptyBatch("n is 0"));
        }
        if prompts.is_null() {
            return Err(Error::NullArgument("prompts".into()));
        }
        if responses.is_null() {
            return Err(Error::NullArgument("responses".into()));
        }
        out_ptr(out_rewards, "out_rewards")?;
        // SAFETY: the caller promises arrays of n pointers.
        let (ps, rs) = unsafe {
            (
                std::slice::from_raw_parts(prompts, n),
                std::slice::from_raw_parts(responses, n),
            )
        };
        // SAFETY: each element is NULL or a NUL-terminated string.
        let (pv, rv) = unsafe { pair_strings(ps, rs)? };
        let rewards = s.inner.score_batch(&pv, &rv)?;
        // SAFETY: the caller promises room for n floats.
        unsafe { std::slice::from_raw_parts_mut(out_rewards, n) }.copy_from_slice(&rewards);
        Ok(())
    })
}

/// Read parallel arrays of C strings, naming the bad element on error.
///
/// # Safety
/// Each element must be NULL or a NUL-terminated string.
unsafe fn pair_strings<'a>(
    ps: &[*const c_char],
    rs: &[*const c_char],
) -> Result<(Vec<&'a str>, Vec<&'a str>), Error> {
    let mut pv = Vec::with_capacity(ps.len());
    let mut rv = Vec::with_capacity(rs.len());
    for (i, (&p, &r)) in ps.iter().zip(rs).enumerate() {
        // SAFETY: per this function's contract.
        unsafe {
            pv.push(c_str(p, &format!("prompts[{i}]"))?);
            rv.push(c_str(r, &format!("responses[{i}]"))?);
        }
    }
    Ok((pv, rv))
}

/// Every output for `n` pairs (`prompts[i]` with `responses[i]`), row-major:
/// `out_scores[i * k + j]` is output `j` of pair `i`, where
/// k = `rk_scorer_num_outputs(scorer)`. `out_scores` must have room for
/// `n * k` floats. Normalisation from the bundle is applied; the reward
/// combination is not (use `rk_scorer_score_batch` for the reward).
#[no_mangle]
pub unsafe extern "C" fn rk_scorer_score_outputs(
    scorer: *const rk_scorer,
    n: usize,
    prompts: *const *const c_char,
    responses: *const *const c_char,
    out_scores: *mut f32,
) -> *mut rk_error {
    guard(|| {
        let s = scorer_ref(scorer)?;
        // n = 0 is an empty batch whatever the arrays are (bindings pass
        // NULL for empty arrays).
        if n == 0 {
            return Err(Error::EmptyBatch("n is 0"));
        }
        if prompts.is_null() {
            return Err(Error::NullArgument("prompts".into()));
        }
        if responses.is_null() {
            return Err(Error::NullArgument("responses".into()));
        }
        out_ptr(out_scores, "out_scores")?;
        // SAFETY: the caller promises arrays of n pointers.
        let (ps, rs) = unsafe {
            (
                std::slice::from_raw_parts(prompts, n),
                std::slice::from_raw_parts(responses, n),
            )
        };
        // SAFETY: each element is NULL or a NUL-terminated string.
        let (pv, rv) = unsafe { pair_strings(ps, rs)? };
        let all = s.inner.score_batch_outputs(&pv, &rv)?;
        let k = s.output_names.len();
        // SAFETY: the caller promises room for n * k floats.
        let out = unsafe { std::slice::from_raw_parts_mut(out_scores, n * k) };
        for (dst, src) in out.iter_mut().zip(all.iter()) {
            *dst = *src;
        }
        Ok(())
    })
}

/// The probability that `response_a` is better than `response_b` for
/// `prompt`: σ(r_a − r_b), written to `*out_prob_a`.
#[no_mangle]
pub unsafe extern "C" fn rk_scorer_compare(
    scorer: *const rk_scorer,
    prompt: *const c_char,
    response_a: *const c_char,
    response_b: *const c_char,
    out_prob_a: *mut f32,
) -> *mut rk_error {
    guard(|| {
        let s = scorer_ref(scorer)?;
        // SAFETY: NUL-terminated strings or NULL, per the contract.
        let (p, a, b) = unsafe {
            (
                c_str(prompt, "prompt")?,
                c_str(response_a, "response_a")?,
                c_str(response_b, "response_b")?,
            )
        };
        out_ptr(out_prob_a, "out_prob_a")?;
        let v = s.inner.compare(p, a, b)?;
        // SAFETY: checked non-NULL.
        unsafe { *out_prob_a = v };
        Ok(())
    })
}

/// Number of outputs of the model (1 for a scalar reward, 5 for HelpSteer2
/// attributes). Returns 0 if `scorer` is NULL.
#[no_mangle]
pub unsafe extern "C" fn rk_scorer_num_outputs(scorer: *const rk_scorer) -> usize {
    guard_value(0, || {
        scorer_ref(scorer)
            .map(|s| s.output_names.len())
            .unwrap_or(0)
    })
}

/// Name of output `i` as a NUL-terminated string owned by the scorer (valid
/// until `rk_scorer_free`), or NULL if `scorer` is NULL or `i` is out of range.
#[no_mangle]
pub unsafe extern "C" fn rk_scorer_output_name(
    scorer: *const rk_scorer,
    i: usize,
) -> *const c_char {
    guard_value(std::ptr::null(), || {
        scorer_ref(scorer)
            .ok()
            .and_then(|s| s.output_names.get(i))
            .map_or(std::ptr::null(), |c| c.as_ptr())
    })
}
