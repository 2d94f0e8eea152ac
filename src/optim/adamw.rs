//! AdamW (decoupled weight decay, bias correction) and plain SGD.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::onnx::builder::{model, Attr, Dim, RK_DOMAIN};
use crate::onnx::proto::data_type::FLOAT;
use crate::onnx::{GraphBuilder, ModelProto};

/// Scalar input: the learning rate of this step.
pub const LR: &str = "lr";
/// Scalar input: `lr / (1 − β1^t)` (AdamW's bias-corrected step size).
pub const STEP_SIZE: &str = "step_size";
/// Scalar input: `1 / √(1 − β2^t)`.
pub const INV_SQRT_BC2: &str = "inv_sqrt_bc2";
/// Scalar input (graphs built with `scaled`): the factor applied to the
/// incoming gradients, `1/k` for `k` accumulated micro-batches.
pub const GRAD_SCALE: &str = "grad_scale";
/// Scalar output: the global gradient norm before clipping.
pub const GRAD_NORM: &str = "grad_norm";

/// The update rule.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "lowercase")]
pub enum OptimizerKind {
    /// AdamW as in PyTorch: `p ← p·(1 − lr·wd)`, then the Adam step.
    Adamw {
        beta1: f32,
        beta2: f32,
        eps: f32,
        weight_decay: f32,
    },
    /// `p ← p − lr·g`.
    Sgd,
}

impl OptimizerKind {
    /// Optimizer state tensors per parameter.
    pub fn state_names(&self) -> &'static [&'static str] {
        match self {
            OptimizerKind::Adamw { .. } => &["exp_avg", "exp_avg_sq"],
            OptimizerKind::Sgd => &[],
        }
    }
}

/// One trained parameter.
#[derive(Debug, Clone)]
pub struct ParamSpec {
    pub name: String,
    pub dims: Vec<i64>,
    /// Whether weight decay applies (matrices and embeddings, not biases or norms).
    pub decay: bool,
}

/// Value names of the optimizer graph.
#[derive(Debug, Clone)]
pub struct OptimizerGraph {
    pub model: ModelProto,
    /// Per parameter: (param input, grad input, state inputs, new param output, new state outputs).
    pub slots: Vec<Slot>,
}

/// The update of one parameter, or of one piece of it (see [`pieces`]).
#[derive(Debug, Clone)]
pub struct Slot {
    pub param: String,
    pub grad: String,
    pub state: Vec<String>,
    pub new_param: String,
    pub new_state: Vec<String>,
    /// The slot's tensor dims (a piece is flat).
    pub dims: Vec<i64>,
    /// Whether weight decay applies.
    pub decay: bool,
}

/// Elements per piece for CPU updates: a piece's whole chain of elementwise
/// ops then stays in the core's cache instead of streaming the tensor from
/// memory once per op. On 2 cores, AdamW over MiniLM's 11.7M-element word
/// table took 68 ms whole and 45 ms in pieces of 183K elements (64 pieces;
/// 49 ms with 32, 48 with 128), measured with onnxruntime-python.
pub const CPU_PIECE: usize = 196_608;

/// How a parameter of `n` elements is cut for its update: `(offset, len)`
/// of each piece, `piece` elements at most (one piece when `piece` is
/// `None`). Pieces of 4096 elements or more start on 64-byte boundaries.
pub fn pieces(n: usize, piece: Option<usize>) -> Vec<(usize, usize)> {
    let Some(max) = piece.filter(|&m| m > 0 && n > m) else {
        return vec![(0, n)];
    };
    let count = n.div_ceil(max);
    let mut len = n.div_ceil(count);
    if len >= 4096 {
        len = len.div_ceil(16) * 16;
    }
    (0..n)
        .step_by(len)
        .map(|offset| (offset, len.min(n - offset)))
        .collect()
}

/// The graph value name of piece `j` of `name` when it is cut in `count`.
pub fn piece_name(name: &str, j: usize, count: usize) -> String {
    if count == 1 {
        name.to_string()
    } else {
        format!("{name}#{j}")
    }
}

/// The per-parameter update, with the scalars every parameter shares.
enum Rule {
    /// `p − rate·g`, `rate = lr·coef`.
    Sgd {
        rate: String,
    },
    Adamw(AdamwScalars),
}

/// Scalar values of an AdamW graph shared by every parameter.
struct AdamwScalars {
    beta1: f32,
    beta2: f32,
    b1: String,
    b2: String,
    /// `(1 − β1)·coef`
    ob1: String,
    /// `(1 − β2)·coef²`
    ob2: String,
    /// `ε·√(1 − β2^t)`
    eps_hat: String,
    /// `step_size·√(1 − β2^t)`
    step_hat: String,
    /// `1 − lr·wd`, when weight decay is on.
    keep: Option<String>,
}

/// The op type of rewardkit's one-pass AdamW kernel (domain
/// [`RK_DOMAIN`]; `crate::runtime` documents its inputs and implements it).
pub const FUSED_ADAMW: &str = "AdamW";

/// Build the update graph for `params`. `clip` is the max global gradient
/// norm. With `scaled`, the incoming gradients are multiplied by the scalar
/// input [`GRAD_SCALE`] first (norm and clipping apply to the scaled ones).
/// With `piece`, parameters larger than that are updated in flat pieces
/// (inputs and outputs named by [`piece_name`], cut by [`pieces`]); the
/// caller binds views of each parameter's buffers to them. With `fused`,
/// each AdamW update is one node of rewardkit's CPU kernel [`FUSED_ADAMW`]
/// (same arithmetic, one pass; the graph then loads only in sessions that
/// register rewardkit's kernels, which CPU training sessions do) instead of
/// eleven standard ops.
pub fn build_optimizer_graph(
    params: &[ParamSpec],
    kind: OptimizerKind,
    clip: Option<f32>,
    scaled: bool,
    piece: Option<usize>,
    fused: bool,
) -> Result<OptimizerGraph> {
    if params.is_empty() {
        return Err(Error::InvalidArgument(
            "nothing to train: no parameters".into(),
        ));
    }
    let mut g = GraphBuilder::new();
    let lr = g.input(LR, FLOAT, &[]);
    let scale = scaled.then(|| g.input(GRAD_SCALE, FLOAT, &[]));
    let (step_size, inv_sqrt_bc2) = match kind {
        OptimizerKind::Adamw { .. } => (
            Some(g.input(STEP_SIZE, FLOAT, &[])),
            Some(g.input(INV_SQRT_BC2, FLOAT, &[])),
        ),
        OptimizerKind::Sgd => (None, None),
    };
    let mut slots = Vec::with_capacity(params.len());
    for p in params {
        let n = p.dims.iter().product::<i64>().max(0) as usize;
        let cut = pieces(n, piece);
        for (j, &(_, len)) in cut.iter().enumerate() {
            let name = piece_name(&p.name, j, cut.len());
            let shape = if cut.len() == 1 {
                p.dims.clone()
            } else {
                vec![len as i64]
            };
            let dims: Vec<Dim> = shape.iter().map(|&d| Dim::Fixed(d)).collect();
            let param = g.input(&format!("param/{name}"), FLOAT, &dims);
            let grad = g.input(&format!("grad/{name}"), FLOAT, &dims);
            let state: Vec<String> = kind
                .state_names()
                .iter()
                .map(|s| g.input(&format!("{s}/{name}"), FLOAT, &dims))
                .collect();
            slots.push(Slot {
                param,
                grad,
                new_param: format!("new_param/{name}"),
                new_state: kind
                    .state_names()
                    .iter()
                    .map(|s| format!("new_{s}/{name}"))
                    .collect(),
                state,
                dims: shape,
                decay: p.decay,
            });
        }
    }
    // Global norm over all gradients, and the clipping factor.
    let sq: Vec<String> = slots
        .iter()
        .map(|s| {
            g.op(
                "ReduceSumSquare",
                &[&s.grad],
                vec![("keepdims", Attr::Int(0))],
            )
        })
        .collect();
    let refs: Vec<&str> = sq.iter().map(String::as_str).collect();
    let total = if refs.len() == 1 {
        refs[0].to_string()
    } else {
        g.op("Sum", &refs, vec![])
    };
    let raw_norm = g.op("Sqrt", &[&total], vec![]);
    let norm = match &scale {
        Some(sc) => g.op("Mul", &[&raw_norm, sc], vec![]),
        None => raw_norm,
    };
    g.output(&norm, GRAD_NORM, FLOAT, &[]);
    let coef = match clip {
        Some(max_norm) => {
            if max_norm.is_nan() || max_norm <= 0.0 {
                return Err(Error::InvalidArgument(format!(
                    "gradient clip {max_norm} must be positive"
                )));
            }
            let tiny = g.const_f32("eps", 1e-6);
            let max = g.const_f32("max_norm", max_norm);
            let one = g.const_f32("one", 1.0);
            let denom = g.op("Add", &[&norm, &tiny], vec![]);
            let c = g.op("Div", &[&max, &denom], vec![]);
            let c = g.op("Min", &[&c, &one], vec![]);
            Some(match &scale {
                Some(sc) => g.op("Mul", &[&c, sc], vec![]),
                None => c,
            })
        }
        None => scale.clone(),
    };
    // Per-step scalars, computed once. The clipping factor is folded into
    // the moments' coefficients instead of scaling every gradient first, and
    // AdamW's bias corrections into the epsilon and the step:
    //   lr·m̂/(√v̂ + ε) = m·s/(√v + ε·√(1−β2^t)),  s = step_size·√(1−β2^t),
    // which saves two passes over every parameter per step.
    let scalar = |g: &mut GraphBuilder, op: &str, a: &str, b: &str| g.op(op, &[a, b], vec![]);
    let rule = match kind {
        OptimizerKind::Adamw {
            beta1,
            beta2,
            eps,
            weight_decay,
        } => {
            let (step_size, inv_sqrt_bc2) = (
                step_size.as_deref().unwrap_or(""),
                inv_sqrt_bc2.as_deref().unwrap_or(""),
            );
            let b1 = g.const_f32("beta1", beta1);
            let b2 = g.const_f32("beta2", beta2);
            let ob1 = g.const_f32("one_minus_beta1", 1.0 - beta1);
            let ob2 = g.const_f32("one_minus_beta2", 1.0 - beta2);
            let (ob1, ob2) = match &coef {
                Some(c) => {
                    let c2 = scalar(&mut g, "Mul", c, c);
                    (
                        scalar(&mut g, "Mul", &ob1, c),
                        scalar(&mut g, "Mul", &ob2, &c2),
                    )
                }
                None => (ob1, ob2),
            };
            let e = g.const_f32("eps", eps);
            let eps_hat = scalar(&mut g, "Div", &e, inv_sqrt_bc2);
            let step_hat = scalar(&mut g, "Div", step_size, inv_sqrt_bc2);
            let keep = if weight_decay != 0.0 {
                let wd = g.const_f32("weight_decay", weight_decay);
                let lr_wd = scalar(&mut g, "Mul", &lr, &wd);
                let one = g.const_f32("one", 1.0);
                Some(scalar(&mut g, "Sub", &one, &lr_wd))
            } else {
                None
            };
            Rule::Adamw(AdamwScalars {
                beta1,
                beta2,
                b1,
                b2,
                ob1,
                ob2,
                eps_hat,
                step_hat,
                keep,
            })
        }
        OptimizerKind::Sgd => Rule::Sgd {
            rate: match &coef {
                Some(c) => scalar(&mut g, "Mul", &lr, c),
                None => lr.clone(),
            },
        },
    };
    // The fused kernel's `keep` input for parameters without weight decay.
    let keep_all = (fused && matches!(rule, Rule::Adamw(_))).then(|| g.const_f32("keep_all", 1.0));
    for slot in &slots {
        g.set_scope(slot.param.trim_start_matches("param/"));
        let dims: Vec<Dim> = slot.dims.iter().map(|&d| Dim::Fixed(d)).collect();
        let a = match &rule {
            Rule::Adamw(a) => a,
            Rule::Sgd { rate } => {
                // p − (lr·coef)·g
                let step = g.op("Mul", &[&slot.grad, rate], vec![]);
                g.op_output(
                    "Sub",
                    &[&slot.param, &step],
                    vec![],
                    &slot.new_param,
                    FLOAT,
                    &dims,
                );
                continue;
            }
        };
        let grad = slot.grad.as_str();
        if fused {
            let keep = match (&a.keep, slot.decay) {
                (Some(keep), true) => keep.as_str(),
                _ => keep_all.as_deref().unwrap_or_default(),
            };
            let outputs: Vec<&str> = std::iter::once(slot.new_param.as_str())
                .chain(slot.new_state.iter().map(String::as_str))
                .collect();
            g.node_outputs(
                FUSED_ADAMW,
                &[
                    &slot.param,
                    grad,
                    &slot.state[0],
                    &slot.state[1],
                    &a.ob1,
                    &a.ob2,
                    &a.eps_hat,
                    &a.step_hat,
                    keep,
                ],
                &outputs,
                vec![
                    ("beta1", Attr::Float(a.beta1)),
                    ("beta2", Attr::Float(a.beta2)),
                ],
                FLOAT,
                &dims,
            );
            g.set_last_domain(RK_DOMAIN);
            continue;
        }
        // m ← β1·m + (1−β1)·coef·g
        let m_old = g.op("Mul", &[&slot.state[0], &a.b1], vec![]);
        let m_new = g.op("Mul", &[grad, &a.ob1], vec![]);
        let m = g.op_output(
            "Add",
            &[&m_old, &m_new],
            vec![],
            &slot.new_state[0],
            FLOAT,
            &dims,
        );
        // v ← β2·v + (1−β2)·coef²·g²
        let g2 = g.op("Mul", &[grad, grad], vec![]);
        let v_old = g.op("Mul", &[&slot.state[1], &a.b2], vec![]);
        let v_new = g.op("Mul", &[&g2, &a.ob2], vec![]);
        let v = g.op_output(
            "Add",
            &[&v_old, &v_new],
            vec![],
            &slot.new_state[1],
            FLOAT,
            &dims,
        );
        // p ← p·(1 − lr·wd) − s·m/(√v + ε̂)
        let sv = g.op("Sqrt", &[&v], vec![]);
        let denom = g.op("Add", &[&sv, &a.eps_hat], vec![]);
        let ratio = g.op("Div", &[&m, &denom], vec![]);
        let step = g.op("Mul", &[&ratio, &a.step_hat], vec![]);
        let decayed = match (&a.keep, slot.decay) {
            (Some(keep), true) => g.op("Mul", &[&slot.param, keep], vec![]),
            _ => slot.param.clone(),
        };
        g.op_output(
            "Sub",
            &[&decayed, &step],
            vec![],
            &slot.new_param,
            FLOAT,
            &dims,
        );
    }
    g.set_scope("");
    Ok(OptimizerGraph {
        model: model(
            g.build("rewardkit_optimizer"),
            "optimizer step built by rewardkit",
        ),
        slots,
    })
}
