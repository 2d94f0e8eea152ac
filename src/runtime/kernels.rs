//! rewardkit's own CPU kernels, registered with every ONNX Runtime session
//! as the custom-op domain [`RK_DOMAIN`](crate::onnx::builder::RK_DOMAIN).
//!
//! The training graphs are standard ONNX and run on any execution provider.
//! On the CPU, three of their hot spots are chains of elementwise passes
//! that one loop does in a single pass, and the trainer emits these kernels
//! instead when the graphs run on the CPU (`training.fused_kernels`, on by
//! default; on CUDA a CPU kernel would copy every tensor across the bus):
//!
//! - `AdamW` ([`crate::optim::FUSED_ADAMW`]). In standard ops the update is
//!   eleven passes over every parameter; MiniLM has 22.7M trained values
//!   (half of them the word table), so it streams about 1.5 GB per step.
//!   The kernel reads the parameter, its gradient and both moments once and
//!   writes the three new tensors once. It evaluates exactly the operations
//!   of the standard-op update ([`crate::optim::build_optimizer_graph`]), in
//!   the same order, in `f32`, with no fused multiply-add: its results are
//!   bit for bit those of the standard-op graph (a test checks this).
//! - `GeluGrad` ([`crate::autodiff::FUSED_GELU_GRAD`]): the exact GELU's
//!   gradient, nine passes in standard ops. Its erf is Abramowitz and
//!   Stegun's 7.1.26 (absolute error below 1.5e-7), sharing one exponential
//!   with the density term.
//! - `LayerNormGrad` ([`crate::autodiff::FUSED_LAYER_NORM_GRAD`]): the input
//!   gradient of LayerNormalization over the last axis and `dy·x̂` (for γ's
//!   gradient), two passes over each row while it sits in L1 cache instead
//!   of about ten over the whole tensor.
//!
//! Work is split into blocks and spread over ONNX Runtime's own intra-op
//! thread pool, so the kernels use the session's threads and no others; the
//! loops are compiled for AVX-512F and AVX2 and picked at run time.

use ort::operator::{ComputeContext, Kernel, KernelContext, Operator, OperatorDomain};
use ort::operator::{OperatorInput, OperatorOutput};
use ort::value::TensorElementType;

use crate::error::{Error, Result};
use crate::onnx::builder::RK_DOMAIN;

/// The fused AdamW update ([`crate::optim::FUSED_ADAMW`]). Inputs: `param`, `grad`, `exp_avg`,
/// `exp_avg_sq` (all the same shape), then five scalars: `ob1 = (1 − β1)·c`,
/// `ob2 = (1 − β2)·c²` (c: the clipping and accumulation factor),
/// `eps_hat = ε·√(1 − β2^t)`, `step_hat = step_size·√(1 − β2^t)` and `keep`
/// (`1 − lr·wd`, or 1 without decay). Attributes `beta1`, `beta2`. Outputs:
/// the new parameter and moments:
///
/// ```text
/// m' = m·β1 + g·ob1
/// v' = v·β2 + (g·g)·ob2
/// p' = p·keep − (m' / (√v' + eps_hat))·step_hat
/// ```
const ADAMW_OP: &str = crate::optim::FUSED_ADAMW;

/// Elements per parallel task: 64 KiB per stream, seven streams.
const BLOCK: usize = 16 * 1024;

/// Run `task` for blocks `0..blocks` on the kernel's intra-op pool (inline
/// when there is only one).
fn for_blocks(
    ctx: &ComputeContext,
    blocks: usize,
    task: impl Fn(usize) + Sync + Send,
) -> ort::Result<()> {
    if blocks <= 1 {
        task(0);
        Ok(())
    } else {
        ctx.par_for(blocks, 0, task)
    }
}

/// `fn $name => $body(args)` defines `$name`, which runs `$body` (an
/// `#[inline(always)]` function of those arguments) compiled for AVX-512F or
/// AVX2 when the CPU has them, so that LLVM vectorizes its loops at that
/// width, and as built for the target otherwise.
macro_rules! dispatch {
    ($(#[$m:meta])* fn $name:ident => $body:ident ($($arg:ident : $ty:ty),* $(,)?)) => {
        $(#[$m])*
        #[allow(clippy::too_many_arguments)]
        fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn wide512($($arg: $ty),*) {
                    $body($($arg),*)
                }
                #[target_feature(enable = "avx2")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn wide256($($arg: $ty),*) {
                    $body($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU has AVX-512F.
                    return unsafe { wide512($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: the CPU has AVX2.
                    return unsafe { wide256($($arg),*) };
                }
            }
            $body($($arg),*)
        }
    };
}

/// The domain with every rewardkit kernel, for a session builder.
pub(crate) fn domain() -> Result<OperatorDomain> {
    fn rt(e: ort::Error) -> Error {
        Error::Runtime(format!("registering rewardkit's CPU kernels: {e}"))
    }
    OperatorDomain::new(RK_DOMAIN)
        .map_err(rt)?
        .add(AdamwOp)
        .map_err(rt)?
        .add(GeluGradOp)
        .map_err(rt)?
        .add(LayerNormGradOp)
        .map_err(rt)
}

struct AdamwOp;

impl Operator for AdamwOp {
    type Kernel<'attr> = AdamwKernel;

    fn name(&self) -> &str {
        ADAMW_OP
    }

    fn inputs(&self) -> impl IntoIterator<Item = OperatorInput> {
        (0..9).map(|_| OperatorInput::required(TensorElementType::Float32))
    }

    fn outputs(&self) -> impl IntoIterator<Item = OperatorOutput> {
        (0..3).map(|_| OperatorOutput::required(TensorElementType::Float32))
    }

    fn create_kernel<'attr>(&self, info: &KernelContext<'attr>) -> ort::Result<AdamwKernel> {
        let attr = |name: &str| {
            info.get::<f32>(name).ok_or_else(|| {
                ort::Error::new(format!(
                    "rewardkit AdamW node without its `{name}` attribute"
                ))
            })
        };
        Ok(AdamwKernel {
            beta1: attr("beta1")?,
            beta2: attr("beta2")?,
        })
    }
}

struct AdamwKernel {
    beta1: f32,
    beta2: f32,
}

/// The per-step coefficients of one update.
#[derive(Clone, Copy)]
struct Coefs {
    b1: f32,
    b2: f32,
    ob1: f32,
    ob2: f32,
    eps_hat: f32,
    step_hat: f32,
    keep: f32,
}

/// Raw pointers to one update's seven tensors, shared by the pool's threads;
/// each task touches only its own block.
struct Streams {
    p: *const f32,
    g: *const f32,
    m: *const f32,
    v: *const f32,
    p_out: *mut f32,
    m_out: *mut f32,
    v_out: *mut f32,
    len: usize,
}

// SAFETY: the pointers stay valid for the duration of the parallel loop
// (the kernel's inputs and outputs outlive it), and tasks write disjoint
// blocks of the outputs, which do not overlap the inputs (checked).
unsafe impl Send for Streams {}
unsafe impl Sync for Streams {}

impl Streams {
    /// Update block `b` (elements `[b·BLOCK, (b+1)·BLOCK)`, clipped to `len`).
    fn block(&self, c: &Coefs, b: usize) {
        let start = b * BLOCK;
        let n = BLOCK.min(self.len.saturating_sub(start));
        if n == 0 {
            return;
        }
        // SAFETY: [start, start + n) lies inside every stream (len values
        // each); this task is the only one writing this block.
        unsafe {
            adamw(
                c,
                std::slice::from_raw_parts(self.p.add(start), n),
                std::slice::from_raw_parts(self.g.add(start), n),
                std::slice::from_raw_parts(self.m.add(start), n),
                std::slice::from_raw_parts(self.v.add(start), n),
                std::slice::from_raw_parts_mut(self.p_out.add(start), n),
                std::slice::from_raw_parts_mut(self.m_out.add(start), n),
                std::slice::from_raw_parts_mut(self.v_out.add(start), n),
            );
        }
    }
}

fn overlaps(a: *const f32, b: *const f32, len: usize) -> bool {
    let (a, b) = (a as usize, b as usize);
    let bytes = len * std::mem::size_of::<f32>();
    len > 0 && a < b + bytes && b < a + bytes
}

impl Kernel for AdamwKernel {
    fn compute(&mut self, ctx: &ComputeContext) -> ort::Result<()> {
        let mut inputs = Vec::with_capacity(9);
        for i in 0..9 {
            inputs.push(
                ctx.input(i)?.ok_or_else(|| {
                    ort::Error::new(format!("rewardkit AdamW: input {i} missing"))
                })?,
            );
        }
        let mut tensors = Vec::with_capacity(9);
        for v in &inputs {
            tensors.push(v.try_extract_tensor::<f32>()?);
        }
        let shape = tensors[0].0.to_vec();
        let len = tensors[0].1.len();
        for (i, (_, t)) in tensors.iter().enumerate().take(4).skip(1) {
            if t.len() != len {
                return Err(ort::Error::new(format!(
                    "rewardkit AdamW: input {i} has {} values, the parameter {len}",
                    t.len()
                )));
            }
        }
        let scalar = |i: usize| -> ort::Result<f32> {
            match tensors[i].1 {
                [x] => Ok(*x),
                other => Err(ort::Error::new(format!(
                    "rewardkit AdamW: input {i} must be a scalar, it has {} values",
                    other.len()
                ))),
            }
        };
        let c = Coefs {
            b1: self.beta1,
            b2: self.beta2,
            ob1: scalar(4)?,
            ob2: scalar(5)?,
            eps_hat: scalar(6)?,
            step_hat: scalar(7)?,
            keep: scalar(8)?,
        };
        let (p, g, m, v) = (
            tensors[0].1.as_ptr(),
            tensors[1].1.as_ptr(),
            tensors[2].1.as_ptr(),
            tensors[3].1.as_ptr(),
        );
        let mut outs = Vec::with_capacity(3);
        for i in 0..3 {
            let mut o = ctx
                .output(i, shape.clone())?
                .ok_or_else(|| ort::Error::new(format!("rewardkit AdamW: output {i} missing")))?;
            let (_, data) = o.try_extract_tensor_mut::<f32>()?;
            if data.len() != len {
                return Err(ort::Error::new(format!(
                    "rewardkit AdamW: output {i} has {} values, the parameter {len}",
                    data.len()
                )));
            }
            let ptr = data.as_mut_ptr();
            outs.push((o, ptr));
        }
        let (p_out, m_out, v_out) = (outs[0].1, outs[1].1, outs[2].1);
        for (i, &o) in [p_out, m_out, v_out].iter().enumerate() {
            for (j, &x) in [p, g, m, v, p_out, m_out, v_out].iter().enumerate() {
                if j != 4 + i && overlaps(o, x, len) {
                    return Err(ort::Error::new(format!(
                        "rewardkit AdamW: output {i} shares memory with {} {}",
                        if j < 4 { "input" } else { "output" },
                        if j < 4 { j } else { j - 4 }
                    )));
                }
            }
        }
        let s = Streams {
            p,
            g,
            m,
            v,
            p_out,
            m_out,
            v_out,
            len,
        };
        let blocks = len.div_ceil(BLOCK);
        // `outs` (the output values) outlives the loop.
        for_blocks(ctx, blocks, move |b| s.block(&c, b))
    }
}

dispatch! {
    /// The update of one block, compiled for the widest vector unit the CPU has.
    fn adamw => adamw_body(
        c: &Coefs,
        p: &[f32],
        g: &[f32],
        m: &[f32],
        v: &[f32],
        p_out: &mut [f32],
        m_out: &mut [f32],
        v_out: &mut [f32],
    )
}

/// One pass of the standard-op update's arithmetic, operation for operation
/// (Rust never contracts `a·b + c` into a fused multiply-add, so each step
/// rounds as ONNX Runtime's separate `Mul`, `Add`, `Sqrt`, `Div` and `Sub`
/// kernels do).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn adamw_body(
    c: &Coefs,
    p: &[f32],
    g: &[f32],
    m: &[f32],
    v: &[f32],
    p_out: &mut [f32],
    m_out: &mut [f32],
    v_out: &mut [f32],
) {
    let n = p.len();
    let (g, m, v) = (&g[..n], &m[..n], &v[..n]);
    let (p_out, m_out, v_out) = (&mut p_out[..n], &mut m_out[..n], &mut v_out[..n]);
    for i in 0..n {
        let gi = g[i];
        let mi = m[i] * c.b1 + gi * c.ob1;
        let vi = v[i] * c.b2 + (gi * gi) * c.ob2;
        m_out[i] = mi;
        v_out[i] = vi;
        p_out[i] = p[i] * c.keep - (mi / (vi.sqrt() + c.eps_hat)) * c.step_hat;
    }
}

/// The exact GELU's gradient ([`crate::autodiff::FUSED_GELU_GRAD`]):
/// inputs `dy` and `x` (the same shape), output `dx = dy·(Φ(x) + x·φ(x))`.
struct GeluGradOp;

impl Operator for GeluGradOp {
    type Kernel<'attr> = GeluGradKernel;

    fn name(&self) -> &str {
        crate::autodiff::FUSED_GELU_GRAD
    }

    fn inputs(&self) -> impl IntoIterator<Item = OperatorInput> {
        (0..2).map(|_| OperatorInput::required(TensorElementType::Float32))
    }

    fn outputs(&self) -> impl IntoIterator<Item = OperatorOutput> {
        [OperatorOutput::required(TensorElementType::Float32)]
    }

    fn create_kernel<'attr>(&self, _: &KernelContext<'attr>) -> ort::Result<GeluGradKernel> {
        Ok(GeluGradKernel)
    }
}

struct GeluGradKernel;

/// Raw pointers to the GELU gradient's three tensors (see [`Streams`]).
struct GeluStreams {
    dy: *const f32,
    x: *const f32,
    dx: *mut f32,
    len: usize,
}

// SAFETY: as for `Streams`.
unsafe impl Send for GeluStreams {}
unsafe impl Sync for GeluStreams {}

impl GeluStreams {
    fn block(&self, b: usize) {
        let start = b * BLOCK;
        let n = BLOCK.min(self.len.saturating_sub(start));
        if n == 0 {
            return;
        }
        // SAFETY: as in `Streams::block`.
        unsafe {
            gelu_grad(
                std::slice::from_raw_parts(self.dy.add(start), n),
                std::slice::from_raw_parts(self.x.add(start), n),
                std::slice::from_raw_parts_mut(self.dx.add(start), n),
            );
        }
    }
}

impl Kernel for GeluGradKernel {
    fn compute(&mut self, ctx: &ComputeContext) -> ort::Result<()> {
        let missing = |i| ort::Error::new(format!("rewardkit GeluGrad: input {i} missing"));
        let (dy_v, x_v) = (
            ctx.input(0)?.ok_or_else(|| missing(0))?,
            ctx.input(1)?.ok_or_else(|| missing(1))?,
        );
        let (dy_shape, dy) = dy_v.try_extract_tensor::<f32>()?;
        let (x_shape, x) = x_v.try_extract_tensor::<f32>()?;
        if dy_shape != x_shape {
            return Err(ort::Error::new(format!(
                "rewardkit GeluGrad: dy has shape {dy_shape:?}, x {x_shape:?}"
            )));
        }
        let len = x.len();
        let mut out = ctx
            .output(0, x_shape.to_vec())?
            .ok_or_else(|| ort::Error::new("rewardkit GeluGrad: output missing"))?;
        let (_, dx) = out.try_extract_tensor_mut::<f32>()?;
        if dx.len() != len {
            return Err(ort::Error::new(format!(
                "rewardkit GeluGrad: output has {} values, x {len}",
                dx.len()
            )));
        }
        for (i, p) in [dy.as_ptr(), x.as_ptr()].into_iter().enumerate() {
            if overlaps(dx.as_ptr(), p, len) {
                return Err(ort::Error::new(format!(
                    "rewardkit GeluGrad: the output shares memory with input {i}"
                )));
            }
        }
        let s = GeluStreams {
            dy: dy.as_ptr(),
            x: x.as_ptr(),
            dx: dx.as_mut_ptr(),
            len,
        };
        for_blocks(ctx, len.div_ceil(BLOCK), move |b| s.block(b))
    }
}

dispatch! {
    /// `dx = dy·(Φ(x) + x·φ(x))` over one block, for the widest vector unit.
    fn gelu_grad => gelu_grad_body(dy: &[f32], x: &[f32], dx: &mut [f32])
}

#[inline(always)]
fn gelu_grad_body(dy: &[f32], x: &[f32], dx: &mut [f32]) {
    let n = dx.len();
    let (dy, x) = (&dy[..n], &x[..n]);
    for i in 0..n {
        dx[i] = dy[i] * gelu_slope(x[i]);
    }
}

/// `e^(−y)` for `y ≥ 0`, 0 past 87 (where it underflows f32's normal
/// range); relative error about 1e-7. Branch-free, so that a loop over it
/// vectorizes: `e^(−y) = 2^k·e^r` with `k` the nearest integer to
/// `−y/ln 2`, `r = −y − k·ln 2` in `[−ln2/2, ln2/2]` (ln 2 split in two
/// parts so that `k·ln 2` is exact), `e^r` by its Taylor series to `r⁷`
/// (remainder below 1e-8), and `2^k` built from its exponent bits.
#[inline(always)]
fn exp_neg(y: f32) -> f32 {
    // 1.5·2^23: adding it rounds to an integer, held in the low mantissa bits.
    const SHIFTER: f32 = 12_582_912.0;
    const LN2_HI: f32 = 0.693_359_4; // 0.693359375, 9 significant bits
    const LN2_LO: f32 = -2.121_944_4e-4;
    let a = -(y.min(87.0));
    let kb = a * std::f32::consts::LOG2_E + SHIFTER;
    let k = kb - SHIFTER;
    let ki = kb.to_bits().wrapping_sub(SHIFTER.to_bits()) as i32;
    let r = (a - k * LN2_HI) - k * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (1.0 / 2.0
                + r * (1.0 / 6.0
                    + r * (1.0 / 24.0
                        + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
    let scale = f32::from_bits(((ki + 127) as u32) << 23);
    if y > 87.0 {
        0.0
    } else {
        p * scale
    }
}

/// The exact GELU's slope `Φ(x) + x·φ(x)`. With `s = x/√2`,
/// `Φ(x) = ½·erfc(−s)` and `x·φ(x) = s·e^(−s²)/√π`. `erfc(|s|)` is
/// Abramowitz and Stegun's 7.1.26, `t·(a₁ + a₂t + … + a₅t⁴)·e^(−s²)` with
/// `t = 1/(1 + p·|s|)`, absolute error below 1.5e-7, and shares its
/// exponential with the density term.
#[inline(always)]
fn gelu_slope(x: f32) -> f32 {
    const P: f32 = 0.327_591_1;
    const A1: f32 = 0.254_829_6;
    const A2: f32 = -0.284_496_74;
    const A3: f32 = 1.421_413_8;
    const A4: f32 = -1.453_152;
    const A5: f32 = 1.061_405_4;
    const INV_SQRT_PI: f32 = 0.564_189_6;
    let s = x * std::f32::consts::FRAC_1_SQRT_2;
    let z = s.abs();
    let t = 1.0 / (1.0 + P * z);
    let s2 = s * s;
    let e = exp_neg(s2);
    let tail = t * (A1 + t * (A2 + t * (A3 + t * (A4 + t * A5)))) * e; // erfc(|s|)
    let half_tail = 0.5 * tail;
    let cdf = if x >= 0.0 { 1.0 - half_tail } else { half_tail };
    // Where e underflows, the density term is 0 (also for s = ±∞).
    let density = if s2 > 87.0 { 0.0 } else { s * e * INV_SQRT_PI };
    cdf + density
}

/// LayerNormalization's gradient over the last axis
/// ([`crate::autodiff::FUSED_LAYER_NORM_GRAD`]). Per row of `D` values,
/// with `x̂ = (x − μ)·σ⁻¹` and `g = dy·γ`:
/// `dx = ((g − mean(g)) − x̂·mean(g·x̂))·σ⁻¹` and `dy·x̂`.
struct LayerNormGradOp;

impl Operator for LayerNormGradOp {
    type Kernel<'attr> = LayerNormGradKernel;

    fn name(&self) -> &str {
        crate::autodiff::FUSED_LAYER_NORM_GRAD
    }

    fn inputs(&self) -> impl IntoIterator<Item = OperatorInput> {
        (0..5).map(|_| OperatorInput::required(TensorElementType::Float32))
    }

    fn outputs(&self) -> impl IntoIterator<Item = OperatorOutput> {
        (0..2).map(|_| OperatorOutput::required(TensorElementType::Float32))
    }

    fn create_kernel<'attr>(&self, _: &KernelContext<'attr>) -> ort::Result<LayerNormGradKernel> {
        Ok(LayerNormGradKernel)
    }
}

struct LayerNormGradKernel;

/// Raw pointers to the LayerNorm gradient's tensors (see [`Streams`]).
struct LnStreams {
    dy: *const f32,
    x: *const f32,
    gamma: *const f32,
    mean: *const f32,
    inv_std: *const f32,
    dx: *mut f32,
    dy_xhat: *mut f32,
    rows: usize,
    width: usize,
    /// Rows per parallel task.
    per_task: usize,
}

// SAFETY: as for `Streams`.
unsafe impl Send for LnStreams {}
unsafe impl Sync for LnStreams {}

impl LnStreams {
    fn block(&self, b: usize) {
        let first = b * self.per_task;
        let last = (first + self.per_task).min(self.rows);
        let (d, n) = (self.width, last.saturating_sub(first));
        // SAFETY: rows [first, last) lie inside every stream (rows·width
        // values, rows for the statistics); this task alone writes them.
        unsafe {
            layer_norm_grad_rows(
                std::slice::from_raw_parts(self.dy.add(first * d), n * d),
                std::slice::from_raw_parts(self.x.add(first * d), n * d),
                std::slice::from_raw_parts(self.gamma, d),
                std::slice::from_raw_parts(self.mean.add(first), n),
                std::slice::from_raw_parts(self.inv_std.add(first), n),
                std::slice::from_raw_parts_mut(self.dx.add(first * d), n * d),
                std::slice::from_raw_parts_mut(self.dy_xhat.add(first * d), n * d),
            );
        }
    }
}

impl Kernel for LayerNormGradKernel {
    fn compute(&mut self, ctx: &ComputeContext) -> ort::Result<()> {
        let err = |m: String| ort::Error::new(format!("rewardkit LayerNormGrad: {m}"));
        let mut inputs = Vec::with_capacity(5);
        for i in 0..5 {
            inputs.push(
                ctx.input(i)?
                    .ok_or_else(|| err(format!("input {i} missing")))?,
            );
        }
        let mut t = Vec::with_capacity(5);
        for v in &inputs {
            t.push(v.try_extract_tensor::<f32>()?);
        }
        let shape = t[1].0.to_vec();
        let (dy, x, gamma, mean, inv_std) = (t[0].1, t[1].1, t[2].1, t[3].1, t[4].1);
        let width = gamma.len();
        if width == 0 || t[0].0 != t[1].0 || shape.last().copied() != Some(width as i64) {
            return Err(err(format!(
                "dy {:?} and x {shape:?} must match and end in gamma's {width} values",
                t[0].0
            )));
        }
        let rows = x.len() / width;
        if mean.len() != rows || inv_std.len() != rows {
            return Err(err(format!(
                "{rows} rows but {} means and {} inverse deviations",
                mean.len(),
                inv_std.len()
            )));
        }
        let mut o0 = ctx
            .output(0, shape.clone())?
            .ok_or_else(|| err("output 0 missing".into()))?;
        let mut o1 = ctx
            .output(1, shape)?
            .ok_or_else(|| err("output 1 missing".into()))?;
        let (_, dx) = o0.try_extract_tensor_mut::<f32>()?;
        let (_, dy_xhat) = o1.try_extract_tensor_mut::<f32>()?;
        if dx.len() != x.len() || dy_xhat.len() != x.len() {
            return Err(err("outputs of the wrong size".into()));
        }
        for (o, out) in [dx.as_ptr(), dy_xhat.as_ptr()].into_iter().enumerate() {
            for (i, p) in [dy.as_ptr(), x.as_ptr()].into_iter().enumerate() {
                if overlaps(out, p, x.len()) {
                    return Err(err(format!("output {o} shares memory with input {i}")));
                }
            }
        }
        let s = LnStreams {
            dy: dy.as_ptr(),
            x: x.as_ptr(),
            gamma: gamma.as_ptr(),
            mean: mean.as_ptr(),
            inv_std: inv_std.as_ptr(),
            dx: dx.as_mut_ptr(),
            dy_xhat: dy_xhat.as_mut_ptr(),
            rows,
            width,
            per_task: (BLOCK / width).max(1),
        };
        let blocks = rows.div_ceil(s.per_task);
        for_blocks(ctx, blocks, move |b| s.block(b))
    }
}

dispatch! {
    /// Consecutive rows of the LayerNorm gradient (`mean` and `inv_std` hold
    /// one value per row), for the widest vector unit.
    fn layer_norm_grad_rows => ln_rows_body(
        dy: &[f32],
        x: &[f32],
        gamma: &[f32],
        mean: &[f32],
        inv_std: &[f32],
        dx: &mut [f32],
        dy_xhat: &mut [f32],
    )
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn ln_rows_body(
    dy: &[f32],
    x: &[f32],
    gamma: &[f32],
    mean: &[f32],
    inv_std: &[f32],
    dx: &mut [f32],
    dy_xhat: &mut [f32],
) {
    let d = gamma.len();
    let rows = dx.chunks_exact_mut(d).zip(dy_xhat.chunks_exact_mut(d));
    for (r, (dx, dy_xhat)) in rows.enumerate() {
        let span = r * d..(r + 1) * d;
        ln_row_body(
            &dy[span.clone()],
            &x[span],
            gamma,
            mean[r],
            inv_std[r],
            dx,
            dy_xhat,
        );
    }
}

/// Lanes of the row sums: partial sums in 16 independent accumulators
/// (summed at the end) let the loop vectorize.
const LANES: usize = 16;

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn ln_row_body(
    dy: &[f32],
    x: &[f32],
    gamma: &[f32],
    mean: f32,
    inv_std: f32,
    dx: &mut [f32],
    dy_xhat: &mut [f32],
) {
    let d = dx.len();
    let (dy, x, gamma, dy_xhat) = (&dy[..d], &x[..d], &gamma[..d], &mut dy_xhat[..d]);
    // First pass: x̂ into dx (as scratch), dy·x̂, and the two row sums.
    let (mut s1, mut s2) = ([0f32; LANES], [0f32; LANES]);
    let whole = d - d % LANES;
    for c in (0..whole).step_by(LANES) {
        for l in 0..LANES {
            let i = c + l;
            let xhat = (x[i] - mean) * inv_std;
            let g = dy[i] * gamma[i];
            dx[i] = xhat;
            dy_xhat[i] = dy[i] * xhat;
            s1[l] += g;
            s2[l] += g * xhat;
        }
    }
    for i in whole..d {
        let xhat = (x[i] - mean) * inv_std;
        let g = dy[i] * gamma[i];
        dx[i] = xhat;
        dy_xhat[i] = dy[i] * xhat;
        s1[0] += g;
        s2[0] += g * xhat;
    }
    let inv_count = 1.0 / d as f32;
    let m1 = s1.iter().sum::<f32>() * inv_count;
    let m2 = s2.iter().sum::<f32>() * inv_count;
    // Second pass: dx = ((g − m1) − x̂·m2)·σ⁻¹.
    for i in 0..d {
        let g = dy[i] * gamma[i];
        dx[i] = ((g - m1) - dx[i] * m2) * inv_std;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// erf in f64 by Simpson's rule on 2/√π·∫₀^z e^(−t²) dt (4000
    /// intervals: error far below 1e-10 for |z| ≤ 6).
    fn erf64(z: f64) -> f64 {
        let n = 4000;
        let h = z / n as f64;
        let f = |t: f64| (-t * t).exp();
        let mut sum = f(0.0) + f(z);
        for i in 1..n {
            sum += f(i as f64 * h) * if i % 2 == 1 { 4.0 } else { 2.0 };
        }
        sum * h / 3.0 * 2.0 / std::f64::consts::PI.sqrt()
    }

    #[test]
    fn exp_neg_is_close_to_exp() {
        let mut worst = 0.0f64;
        for i in 0..=87_000 {
            let y = i as f32 / 1000.0;
            let want = (-(y as f64)).exp();
            let got = exp_neg(y) as f64;
            worst = worst.max((got - want).abs() / want);
        }
        assert!(worst < 3e-7, "worst relative error {worst:e}");
        assert_eq!(exp_neg(87.5), 0.0);
        assert_eq!(exp_neg(f32::INFINITY), 0.0);
    }

    #[test]
    fn gelu_slope_matches_the_closed_form() {
        let mut worst = 0.0f64;
        for i in -1600..=1600 {
            let x = i as f32 / 200.0;
            let xd = x as f64;
            let want = 0.5 * (1.0 + erf64(xd / std::f64::consts::SQRT_2))
                + xd * (-xd * xd / 2.0).exp() / (2.0 * std::f64::consts::PI).sqrt();
            let got = gelu_slope(x) as f64;
            worst = worst.max((got - want).abs());
        }
        // The slope lies in [−0.17, 1.13]: an absolute bound.
        assert!(worst < 3e-7, "worst absolute error {worst:e}");
        assert_eq!(gelu_slope(f32::INFINITY), 1.0);
        assert_eq!(gelu_slope(f32::NEG_INFINITY), 0.0);
        assert!(gelu_slope(f32::NAN).is_nan());
        assert_eq!(gelu_slope(40.0), 1.0);
        assert_eq!(gelu_slope(-40.0), 0.0);
    }

    #[test]
    fn every_vector_width_computes_the_same_gelu_gradient() {
        let n = 4099;
        let x: Vec<f32> = (0..n).map(|i| (i as f32 - 2049.0) / 300.0).collect();
        let dy: Vec<f32> = (0..n)
            .map(|i| ((i * 37) % 101) as f32 / 50.0 - 1.0)
            .collect();
        let (mut a, mut b) = (vec![0.0; n], vec![0.0; n]);
        gelu_grad_body(&dy, &x, &mut a);
        gelu_grad(&dy, &x, &mut b);
        for i in 0..n {
            assert!(
                (a[i] - b[i]).abs() <= 1e-7 * (1.0 + a[i].abs()),
                "{i}: {} vs {}",
                a[i],
                b[i]
            );
            assert_eq!(a[i], dy[i] * gelu_slope(x[i]));
        }
    }

    #[test]
    fn overlap_check_sees_shared_bytes_only() {
        let buf = [0f32; 16];
        let a = buf.as_ptr();
        // SAFETY: within the same array.
        let (b, c) = unsafe { (a.add(4), a.add(8)) };
        assert!(overlaps(a, b, 8));
        assert!(overlaps(b, a, 8));
        assert!(!overlaps(a, c, 8));
        assert!(!overlaps(c, a, 8));
        assert!(!overlaps(a, a, 0));
    }

    #[test]
    fn every_vector_width_computes_the_same_update() {
        let n = 1000;
        let f = |k: usize, s: f32| -> Vec<f32> {
            (0..n)
                .map(|i| ((i * 7919 + k * 104729) % 1000) as f32 / 1000.0 * s - s / 2.0)
                .collect()
        };
        let (p, g, m) = (f(1, 2.0), f(2, 0.1), f(3, 0.01));
        let v: Vec<f32> = f(4, 1e-4).iter().map(|x| x.abs()).collect();
        let c = Coefs {
            b1: 0.9,
            b2: 0.98,
            ob1: 0.1 * 0.7,
            ob2: 0.02 * 0.49,
            eps_hat: 1e-8 * 0.3,
            step_hat: 1e-5 * 3.3,
            keep: 1.0 - 1e-6,
        };
        let run = |which: u8| {
            let (mut po, mut mo, mut vo) = (vec![0.0; n], vec![0.0; n], vec![0.0; n]);
            match which {
                0 => adamw_body(&c, &p, &g, &m, &v, &mut po, &mut mo, &mut vo),
                _ => adamw(&c, &p, &g, &m, &v, &mut po, &mut mo, &mut vo),
            }
            (po, mo, vo)
        };
        let scalar = run(0);
        let wide = run(1);
        assert_eq!(scalar, wide);
        // And one element by hand.
        let i = 17;
        let mi = m[i] * 0.9 + g[i] * c.ob1;
        assert_eq!(scalar.1[i], mi);
        let vi = v[i] * 0.98 + (g[i] * g[i]) * c.ob2;
        assert_eq!(scalar.2[i], vi);
        assert_eq!(
            scalar.0[i],
            p[i] * c.keep - (mi / (vi.sqrt() + c.eps_hat)) * c.step_hat
        );
    }
}
