use std::ffi::{c_char, c_int, c_void};
use std::path::Path;
use std::sync::Mutex;

use super::error::rk_error;
use super::util::{c_path, c_str, guard, out_ptr};
use crate::error::Error;
use crate::train::{load_examples, Control, Init, Pair, Recipe, Trainer};

/// `init_kind` of `rk_trainer_new`: start from a pretrained backbone directory
/// (config.json, model.safetensors, tokenizer.json) with a fresh head.
pub const RK_INIT_BACKBONE: i32 = 0;
/// `init_kind` of `rk_trainer_new`: continue from an existing bundle.
pub const RK_INIT_BUNDLE: i32 = 1;

/// Progress of a training run, passed to an `rk_progress_fn` after each step.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct rk_progress {
    /// Optimizer steps done so far.
    pub step: u64,
    /// Steps the run will take.
    pub total_steps: u64,
    /// This step's loss.
    pub loss: f32,
    /// This step's batch accuracy (r_chosen > r_rejected), or NaN for regression.
    pub accuracy: f32,
    /// Global gradient norm before clipping.
    pub grad_norm: f32,
    /// Learning rate of this step.
    pub learning_rate: f32,
    /// Training throughput so far.
    pub examples_per_second: f32,
    /// Estimated seconds left.
    pub eta_seconds: f32,
}

/// Called after each training step with the caller's `user_data`. Return 0
/// to continue, anything else to stop the run (a checkpoint is written and
/// `rk_trainer_run` returns NULL). Called on the thread that called
/// `rk_trainer_run`; `progress` is valid only during the call.
pub type rk_progress_fn =
    Option<unsafe extern "C" fn(user_data: *mut c_void, progress: *const rk_progress) -> c_int>;

/// A training job. Not meant for concurrent use: calls on one trainer from
/// several threads are serialised (each waits for the previous to finish).
pub struct rk_trainer {
    inner: Mutex<Trainer>,
}

fn trainer_new(
    recipe: Recipe,
    init_dir: &str,
    init_kind: i32,
    work_dir: &str,
) -> Result<rk_trainer, Error> {
    let init = match init_kind {
        RK_INIT_BACKBONE => Init::Backbone(init_dir.into()),
        RK_INIT_BUNDLE => Init::Bundle(init_dir.into()),
        other => {
            return Err(Error::InvalidArgument(format!(
                "unknown init_kind {other} (expected RK_INIT_BACKBONE or RK_INIT_BUNDLE)"
            )))
        }
    };
    let t = Trainer::new_online(recipe, &init, Path::new(work_dir))?;
    Ok(rk_trainer {
        inner: Mutex::new(t),
    })
}

/// The body of both constructors: read the strings, build the recipe with
/// `recipe_of` (from the first string), and hand out the trainer.
unsafe fn open_trainer(
    recipe_src: *const c_char,
    recipe_what: &str,
    recipe_of: impl FnOnce(&str) -> Result<Recipe, Error>,
    init_dir: *const c_char,
    init_kind: i32,
    work_dir: *const c_char,
    out: *mut *mut rk_trainer,
) -> *mut rk_error {
    guard(|| {
        // SAFETY: NUL-terminated strings or NULL, per the contract.
        let (src, init, work) = unsafe {
            (
                c_str(recipe_src, recipe_what)?,
                c_path(init_dir, "init_dir")?,
                c_path(work_dir, "work_dir")?,
            )
        };
        out_ptr(out, "out")?;
        let t = trainer_new(recipe_of(src)?, init, init_kind, work)?;
        // SAFETY: checked non-NULL.
        unsafe { *out = Box::into_raw(Box::new(t)) };
        Ok(())
    })
}

/// Make a trainer from a recipe given as TOML text (see training/recipes/),
/// starting from `init_dir` (a backbone or a bundle, per `init_kind`).
/// `work_dir` receives the generated training graphs. The trainer can then
/// train on a data file (`rk_trainer_run`) or on batches the caller supplies
/// (`rk_trainer_step`). Release it with `rk_trainer_free`. Every path
/// argument of the trainer functions must be non-empty (an empty path is
/// `RK_ERR_INVALID_ARGUMENT`, never the current directory).
#[no_mangle]
pub unsafe extern "C" fn rk_trainer_new(
    recipe_toml: *const c_char,
    init_dir: *const c_char,
    init_kind: i32,
    work_dir: *const c_char,
    out: *mut *mut rk_trainer,
) -> *mut rk_error {
    let parse = |text: &str| Recipe::parse(text, "recipe_toml", &[]);
    // SAFETY: the caller's pointers, passed on unchanged.
    unsafe {
        open_trainer(
            recipe_toml,
            "recipe_toml",
            parse,
            init_dir,
            init_kind,
            work_dir,
            out,
        )
    }
}

/// Like `rk_trainer_new`, reading the recipe from the TOML file `recipe_path`.
#[no_mangle]
pub unsafe extern "C" fn rk_trainer_new_from_file(
    recipe_path: *const c_char,
    init_dir: *const c_char,
    init_kind: i32,
    work_dir: *const c_char,
    out: *mut *mut rk_trainer,
) -> *mut rk_error {
    let read = |path: &str| Recipe::from_file(Path::new(path), &[]);
    // SAFETY: the caller's pointers, passed on unchanged.
    unsafe {
        open_trainer(
            recipe_path,
            "recipe_path",
            read,
            init_dir,
            init_kind,
            work_dir,
            out,
        )
    }
}

/// Release a trainer. `rk_trainer_free(NULL)` does nothing.
#[no_mangle]
pub unsafe extern "C" fn rk_trainer_free(trainer: *mut rk_trainer) {
    if !trainer.is_null() {
        super::util::guard_value((), || {
            // SAFETY: created by rk_trainer_new* and freed once.
            drop(unsafe { Box::from_raw(trainer) })
        });
    }
}

fn with_trainer<R>(
    t: *const rk_trainer,
    f: impl FnOnce(&mut Trainer) -> Result<R, Error>,
) -> Result<R, Error> {
    // SAFETY: NULL or a live trainer from rk_trainer_new*.
    let t = unsafe { t.as_ref() }.ok_or_else(|| Error::NullArgument("trainer".into()))?;
    let mut guard = t
        .inner
        .lock()
        .map_err(|_| Error::Internal("a previous call on this trainer panicked".into()))?;
    f(&mut guard)
}

/// Train on the data file `data_path` (same formats as `rewardkit train`)
/// for the recipe's epochs or max_steps, evaluating on `eval_path` when it is
/// not NULL. `out_dir` receives metrics.jsonl, checkpoints and, when the run
/// completes, the bundle. `progress` may be NULL.
#[no_mangle]
pub unsafe extern "C" fn rk_trainer_run(
    trainer: *mut rk_trainer,
    data_path: *const c_char,
    eval_path: *const c_char,
    out_dir: *const c_char,
    progress: rk_progress_fn,
    user_data: *mut c_void,
) -> *mut rk_error {
    guard(|| {
        with_trainer(trainer, |t| {
            // SAFETY: NUL-terminated strings or NULL, per the contract.
            let (data, out) =
                unsafe { (c_path(data_path, "data_path")?, c_path(out_dir, "out_dir")?) };
            let eval = if eval_path.is_null() {
                None
            } else {
                // SAFETY: as above.
                Some(unsafe { c_path(eval_path, "eval_path")? })
            };
            let outputs = t.output_names().to_vec();
            let recipe = t.recipe().clone();
            let (examples, _) = load_examples(Path::new(data), &recipe, &outputs)?;
            let eval_examples = match eval {
                Some(p) => Some(load_examples(Path::new(p), &recipe, &outputs)?.0),
                None => None,
            };
            t.set_data(examples, eval_examples)?;
            t.run(Path::new(out), |r| {
                let Some(cb) = progress else {
                    return Control::Continue;
                };
                let p = rk_progress {
                    step: r.step,
                    total_steps: r.total_steps,
                    loss: r.loss as f32,
                    accuracy: r.accuracy.map_or(f32::NAN, |a| a as f32),
                    grad_norm: r.grad_norm as f32,
                    learning_rate: r.lr as f32,
                    examples_per_second: r.examples_per_sec as f32,
                    eta_seconds: r.eta_secs as f32,
                };
                // SAFETY: the caller's callback, given its own user_data.
                if unsafe { cb(user_data, &p) } == 0 {
                    Control::Continue
                } else {
                    Control::Stop
                }
            })?;
            Ok(())
        })
    })
}

/// One optimizer step on `n` caller-supplied pairs: `prompts[i]` with
/// `chosen[i]` preferred over `rejected[i]`. `strengths` may be NULL, or
/// point to `n` preference strengths (used by Scaled BT and margin BT), each
/// finite and ≥ 0 (otherwise `RK_ERR_INVALID_ARGUMENT` naming `strengths[i]`).
/// A step whose loss is not finite is refused with `RK_ERR_INVALID_ARGUMENT`
/// and leaves the parameters as they were.
/// `*out_loss` (may be NULL) receives the step's loss.
#[no_mangle]
pub unsafe extern "C" fn rk_trainer_step(
    trainer: *mut rk_trainer,
    n: usize,
    prompts: *const *const c_char,
    chosen: *const *const c_char,
    rejected: *const *const c_char,
    strengths: *const f32,
    out_loss: *mut f32,
) -> *mut rk_error {
    guard(|| {
        with_trainer(trainer, |t| {
            if n == 0 {
                return Err(Error::EmptyBatch("n is 0"));
            }
            for (p, what) in [
                (prompts, "prompts"),
                (chosen, "chosen"),
                (rejected, "rejected"),
            ] {
                if p.is_null() {
                    return Err(Error::NullArgument(what.into()));
                }
            }
            // SAFETY: the caller promises arrays of n elements.
            let (ps, cs, rs) = unsafe {
                (
                    std::slice::from_raw_parts(prompts, n),
                    std::slice::from_raw_parts(chosen, n),
                    std::slice::from_raw_parts(rejected, n),
                )
            };
            let strengths = if strengths.is_null() {
                None
            } else {
                // SAFETY: as above.
                Some(unsafe { std::slice::from_raw_parts(strengths, n) })
            };
            let mut pairs = Vec::with_capacity(n);
            for i in 0..n {
                // SAFETY: each element is NULL or a NUL-terminated string.
                let (p, c, r) = unsafe {
                    (
                        c_str(ps[i], &format!("prompts[{i}]"))?,
                        c_str(cs[i], &format!("chosen[{i}]"))?,
                        c_str(rs[i], &format!("rejected[{i}]"))?,
                    )
                };
                let strength = match strengths.map(|s| s[i]) {
                    Some(s) if !s.is_finite() || s < 0.0 => {
                        return Err(Error::InvalidArgument(format!(
                            "strengths[{i}] = {s} must be finite and not negative"
                        )))
                    }
                    s => s,
                };
                pairs.push(Pair {
                    prompt: p.into(),
                    chosen: c.into(),
                    rejected: r.into(),
                    strength,
                    subset: None,
                });
            }
            let report = t.train_on_pairs(&pairs)?;
            if !out_loss.is_null() {
                // SAFETY: checked non-NULL.
                unsafe { *out_loss = report.loss as f32 };
            }
            Ok(())
        })
    })
}

/// Write the current model as a bundle into `out_dir` (created if needed;
/// its bundle files are replaced).
#[no_mangle]
pub unsafe extern "C" fn rk_trainer_save_bundle(
    trainer: *mut rk_trainer,
    out_dir: *const c_char,
) -> *mut rk_error {
    guard(|| {
        with_trainer(trainer, |t| {
            // SAFETY: NUL-terminated string or NULL.
            let out = unsafe { c_path(out_dir, "out_dir")? };
            t.write_bundle(Path::new(out), None)?;
            Ok(())
        })
    })
}
