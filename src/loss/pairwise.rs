//! Pairwise (Bradley–Terry family) losses.
//!
//! The forward batch holds the `n` chosen responses first and the `n`
//! rejected ones after them, so one run scores both sides of every pair. With
//! `d = r_c − r_r` for the reward output:
//!
//! | loss | per pair |
//! | --- | --- |
//! | BT | `softplus(−d)` = `−log σ(d)` |
//! | margin BT | `softplus(−(d − m))` with the pair's margin `m` |
//! | Scaled BT | `w · softplus(−d)`, `w = |strength|` |
//!
//! The batch loss is the plain mean over pairs (Scaled BT is not normalised
//! by Σw, and a pair with w = 0 adds nothing but still counts in the mean),
//! plus `η · mean((r_c + r_r)²)` when reward centering is on.

use crate::error::Result;
use crate::onnx::builder::{Attr, Dim};
use crate::onnx::proto::data_type::FLOAT;
use crate::onnx::GraphBuilder;

/// Graph input: per-pair weights `[n]` (Scaled BT).
pub const PAIR_WEIGHT: &str = "pair_weight";
/// Graph input: per-pair margins `[n]` (margin BT).
pub const PAIR_MARGIN: &str = "pair_margin";

/// Which pairwise loss to build.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PairwiseLoss {
    /// Weight each pair by a per-pair input (Scaled BT).
    pub weighted: bool,
    /// Subtract a per-pair margin input (margin BT).
    pub margin: bool,
    /// Reward-centering coefficient η (0 = off).
    pub centering: f32,
}

/// Names of the values the loss graph adds.
#[derive(Debug, Clone)]
pub struct PairwiseLossGraph {
    /// The scalar loss.
    pub loss: String,
    /// `[n]` chosen rewards.
    pub chosen: String,
    /// `[n]` rejected rewards.
    pub rejected: String,
}

/// Append the loss to a graph whose `scores` value is `[2n, n_outputs]`.
pub fn append_pairwise_loss(
    g: &mut GraphBuilder,
    scores: &str,
    reward_index: usize,
    kind: PairwiseLoss,
) -> Result<PairwiseLossGraph> {
    let prev = g.set_scope("loss");
    let idx = g.const_i64("reward_index", &[], &[reward_index as i64]);
    let r = g.op("Gather", &[scores, &idx], vec![("axis", Attr::Int(1))]);
    let two_rows = g.const_i64("two_rows", &[2], &[2, -1]);
    let r2 = g.op("Reshape", &[&r, &two_rows], vec![]);
    let (c, rj) = (g.unique("chosen_row"), g.unique("rejected_row"));
    g.node("Split", &[&r2], &[&c, &rj], vec![("axis", Attr::Int(0))]);
    let flat = g.const_i64("flat", &[1], &[-1]);
    let chosen = g.op("Reshape", &[&c, &flat], vec![]);
    let rejected = g.op("Reshape", &[&rj, &flat], vec![]);
    let mut d = g.op("Sub", &[&chosen, &rejected], vec![]);
    if kind.margin {
        let m = g.input(PAIR_MARGIN, FLOAT, &[Dim::Named("pairs".into())]);
        d = g.op("Sub", &[&d, &m], vec![]);
    }
    // softplus(−d) = relu(−d) + log(1 + exp(−|d|)), stable for any d.
    let neg = g.op("Neg", &[&d], vec![]);
    let relu = g.op("Relu", &[&neg], vec![]);
    let abs = g.op("Abs", &[&d], vec![]);
    let nabs = g.op("Neg", &[&abs], vec![]);
    let e = g.op("Exp", &[&nabs], vec![]);
    let one = g.const_f32("one", 1.0);
    let e1 = g.op("Add", &[&e, &one], vec![]);
    let l = g.op("Log", &[&e1], vec![]);
    let mut per_pair = g.op("Add", &[&relu, &l], vec![]);
    if kind.weighted {
        let w = g.input(PAIR_WEIGHT, FLOAT, &[Dim::Named("pairs".into())]);
        per_pair = g.op("Mul", &[&per_pair, &w], vec![]);
    }
    let mut loss = g.op("ReduceMean", &[&per_pair], vec![("keepdims", Attr::Int(0))]);
    if kind.centering != 0.0 {
        let s = g.op("Add", &[&chosen, &rejected], vec![]);
        let s2 = g.op("Mul", &[&s, &s], vec![]);
        let m = g.op("ReduceMean", &[&s2], vec![("keepdims", Attr::Int(0))]);
        let eta = g.const_f32("eta", kind.centering);
        let term = g.op("Mul", &[&m, &eta], vec![]);
        loss = g.op("Add", &[&loss, &term], vec![]);
    }
    g.set_scope(&prev);
    Ok(PairwiseLossGraph {
        loss,
        chosen,
        rejected,
    })
}
