//! Gradient rules, one file per op family, registered by ONNX op type.
//!
//! A rule receives the gradients of the node's outputs (None where an output
//! carries no gradient) and returns one entry per input: the gradient, or
//! None for inputs that need none or are not differentiable.

mod activation;
mod elementwise;
mod gather;
mod matmul;
mod norm;
mod reduce;
mod shape;

use super::{Emit, NodeView};
use crate::error::Result;

/// The gradient of a rule's first output (rules run only when it has one).
fn dy(dys: &[Option<String>]) -> Result<&str> {
    dys.first().and_then(|d| d.as_deref()).ok_or_else(|| {
        crate::error::Error::Internal("rule called without an output gradient".into())
    })
}

/// A gradient rule.
pub type Rule = fn(&mut Emit<'_>, &NodeView<'_>, &[Option<String>]) -> Result<Vec<Option<String>>>;

/// Ops whose outputs never carry a gradient (shapes, indices, comparisons,
/// constants). Values they produce are treated as constants.
pub const NON_DIFFERENTIABLE: &[&str] = &[
    "Shape",
    "Size",
    "Range",
    "Constant",
    "ConstantOfShape",
    "Equal",
    "Greater",
    "Less",
    "GreaterOrEqual",
    "LessOrEqual",
    "Not",
    "And",
    "Or",
    "NonZero",
    "ArgMax",
    "ArgMin",
    "Sign",
    "Floor",
    "Ceil",
    "Round",
    "RandomNormalLike",
    "RandomUniformLike",
];

/// The rule for `op`, if there is one.
pub fn lookup(op: &str) -> Option<Rule> {
    Some(match op {
        "Add" => elementwise::add,
        "Sub" => elementwise::sub,
        "Mul" => elementwise::mul,
        "Div" => elementwise::div,
        "Neg" => elementwise::neg,
        "Pow" => elementwise::pow,
        "Sqrt" => elementwise::sqrt,
        "Exp" => elementwise::exp,
        "Log" => elementwise::log,
        "Abs" => elementwise::abs,
        "Identity" => elementwise::identity,
        "Cast" => elementwise::cast,
        "Sum" => elementwise::sum,
        "Where" => elementwise::where_,
        "Max" => elementwise::max,
        "Min" => elementwise::min,
        "Erf" => activation::erf,
        "Tanh" => activation::tanh,
        "Sigmoid" => activation::sigmoid,
        "Relu" => activation::relu,
        "Softplus" => activation::softplus,
        "Softmax" => activation::softmax,
        "LogSoftmax" => activation::log_softmax,
        "MatMul" => matmul::matmul,
        "Gemm" => matmul::gemm,
        "Transpose" => shape::transpose,
        "Reshape" => shape::reshape_like,
        "Unsqueeze" => shape::reshape_like,
        "Squeeze" => shape::reshape_like,
        "Flatten" => shape::reshape_like,
        "Expand" => shape::expand,
        "Concat" => shape::concat,
        "Split" => shape::split,
        "ReduceSum" => reduce::reduce_sum,
        "ReduceMean" => reduce::reduce_mean,
        "LayerNormalization" => norm::layer_norm,
        "Gather" => gather::gather,
        _ => return None,
    })
}

/// Every op type with a rule (for documentation and tests).
pub const DIFFERENTIABLE: &[&str] = &[
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Neg",
    "Pow",
    "Sqrt",
    "Exp",
    "Log",
    "Abs",
    "Identity",
    "Cast",
    "Sum",
    "Where",
    "Max",
    "Min",
    "Erf",
    "Tanh",
    "Sigmoid",
    "Relu",
    "Softplus",
    "Softmax",
    "LogSoftmax",
    "MatMul",
    "Gemm",
    "Transpose",
    "Reshape",
    "Unsqueeze",
    "Squeeze",
    "Flatten",
    "Expand",
    "Concat",
    "Split",
    "ReduceSum",
    "ReduceMean",
    "LayerNormalization",
    "Gather",
];
