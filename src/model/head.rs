//! The linear reward head on top of the pooled state.

use crate::error::{Error, Result};

use super::init::SeededRng;

/// Initializer name of the head's `[n_outputs, hidden]` weight.
pub const HEAD_WEIGHT: &str = "reward_head.weight";
/// Initializer name of the head's `[n_outputs]` bias.
pub const HEAD_BIAS: &str = "reward_head.bias";

/// A linear map from the pooled state to `n_outputs` scores.
#[derive(Debug, Clone, PartialEq)]
pub struct RewardHead {
    /// Row-major `[n_outputs, hidden]`.
    pub weight: Vec<f32>,
    /// `[n_outputs]`.
    pub bias: Vec<f32>,
    hidden: usize,
}

impl RewardHead {
    /// A fresh head: weights from N(0, std²) with a seeded generator, zero bias.
    pub fn init(n_outputs: usize, hidden: usize, std: f64, seed: u64) -> Result<Self> {
        if n_outputs == 0 {
            return Err(Error::InvalidArgument(
                "a reward head needs at least one output".into(),
            ));
        }
        let mut rng = SeededRng::new(seed);
        Ok(RewardHead {
            weight: rng.normal_vec(n_outputs * hidden, std),
            bias: vec![0.0; n_outputs],
            hidden,
        })
    }

    /// A head from given values; `weight` is row-major `[bias.len(), hidden]`.
    pub fn from_parts(weight: Vec<f32>, bias: Vec<f32>, hidden: usize) -> Result<Self> {
        if bias.is_empty() || weight.len() != bias.len() * hidden {
            return Err(Error::InvalidArgument(format!(
                "head weight has {} values, expected {} outputs x {hidden} hidden",
                weight.len(),
                bias.len()
            )));
        }
        Ok(RewardHead {
            weight,
            bias,
            hidden,
        })
    }

    pub fn n_outputs(&self) -> usize {
        self.bias.len()
    }

    pub fn hidden(&self) -> usize {
        self.hidden
    }
}

/// Append the reward head to a graph: `scores = pooled · Wᵀ + b` with the
/// head's weight `[n_out, hidden]` and bias as initializers (added to
/// `params`), and declare the `scores` output (and `pooled` when asked).
pub(crate) fn append_head(
    g: &mut crate::onnx::GraphBuilder,
    pooled: &str,
    head: &RewardHead,
    params: &mut Vec<String>,
    expose_pooled: bool,
) {
    use crate::onnx::builder::{tensor_f32, Attr, Dim};
    use crate::onnx::proto::data_type::FLOAT;
    g.set_scope("head");
    let (n_out, h) = (head.n_outputs(), head.hidden());
    let hw = g.initializer(tensor_f32(
        HEAD_WEIGHT,
        &[n_out as i64, h as i64],
        &head.weight,
    ));
    let hb = g.initializer(tensor_f32(HEAD_BIAS, &[n_out as i64], &head.bias));
    params.push(HEAD_WEIGHT.to_string());
    params.push(HEAD_BIAS.to_string());
    let hwt = g.op("Transpose", &[&hw], vec![("perm", Attr::Ints(vec![1, 0]))]);
    let y = g.op("MatMul", &[pooled, &hwt], vec![]);
    let scores = g.op("Add", &[&y, &hb], vec![]);
    g.set_scope("");
    g.output(
        &scores,
        super::bert::SCORES,
        FLOAT,
        &["batch".into(), Dim::Fixed(n_out as i64)],
    );
    if expose_pooled {
        g.output(
            pooled,
            super::bert::POOLED,
            FLOAT,
            &["batch".into(), Dim::Fixed(h as i64)],
        );
    }
}

/// Each row's hidden state at its last kept position. `x` is
/// `[batch, sequence, hidden]` of element type `dtype`, `keep` int64
/// `[batch, sequence]` (1 = kept), `positions` int64 `[sequence]` (0, 1, …).
///
/// The position is `max_t t·keep[t]`, and a one-hot row over the sequence
/// selects it: no ArgMax, so the selection differentiates with respect to
/// `x`, and left and right padding both work.
pub(crate) fn last_kept_token(
    g: &mut crate::onnx::GraphBuilder,
    x: &str,
    keep: &str,
    positions: &str,
    dtype: i32,
) -> String {
    use crate::onnx::builder::Attr;
    let weighted = g.op("Mul", &[positions, keep], vec![]);
    let last = g.op(
        "ReduceMax",
        &[&weighted],
        vec![("axes", Attr::Ints(vec![1])), ("keepdims", Attr::Int(1))],
    );
    let hit = g.op("Equal", &[positions, &last], vec![]);
    let hit = g.op("Cast", &[&hit], vec![("to", Attr::Int(dtype as i64))]);
    let axes2 = g.const_i64("axes2", &[1], &[2]);
    let hit = g.op("Unsqueeze", &[&hit, &axes2], vec![]);
    let picked = g.op("Mul", &[x, &hit], vec![]);
    let axes1 = g.const_i64("axes1", &[1], &[1]);
    g.op(
        "ReduceSum",
        &[&picked, &axes1],
        vec![("keepdims", Attr::Int(0))],
    )
}
