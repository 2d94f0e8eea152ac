//! Masked mean-squared error over attribute outputs (SteerLM regression):
//! `Σ mask·(ŷ − y)² / Σ mask`, over every row and output.

use crate::error::Result;
use crate::onnx::builder::{Attr, Dim};
use crate::onnx::proto::data_type::FLOAT;
use crate::onnx::GraphBuilder;

/// Graph input: targets `[rows, n_outputs]`.
pub const TARGETS: &str = "targets";
/// Graph input: 1 where a target is present, 0 where it is missing `[rows, n_outputs]`.
pub const TARGET_MASK: &str = "target_mask";

#[derive(Debug, Clone)]
pub struct RegressionLossGraph {
    pub loss: String,
}

/// Append the masked MSE to a graph whose `scores` value is `[rows, n_outputs]`.
pub fn append_regression_loss(
    g: &mut GraphBuilder,
    scores: &str,
    n_outputs: usize,
) -> Result<RegressionLossGraph> {
    let prev = g.set_scope("loss");
    let dims = [Dim::Named("rows".into()), Dim::Fixed(n_outputs as i64)];
    let y = g.input(TARGETS, FLOAT, &dims);
    let mask = g.input(TARGET_MASK, FLOAT, &dims);
    let diff = g.op("Sub", &[scores, &y], vec![]);
    let sq = g.op("Mul", &[&diff, &diff], vec![]);
    let masked = g.op("Mul", &[&sq, &mask], vec![]);
    let num = g.op("ReduceSum", &[&masked], vec![("keepdims", Attr::Int(0))]);
    let den = g.op("ReduceSum", &[&mask], vec![("keepdims", Attr::Int(0))]);
    let one = g.const_f32("one", 1.0);
    let den = g.op("Max", &[&den, &one], vec![]);
    let loss = g.op("Div", &[&num, &den], vec![]);
    g.set_scope(&prev);
    Ok(RegressionLossGraph { loss })
}
