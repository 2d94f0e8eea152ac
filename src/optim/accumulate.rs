//! Gradient accumulation over micro-batches: `acc ← keep·acc + grad` for
//! every parameter, with `keep` = 0 on the first micro-batch of a step (so
//! the accumulator never needs clearing) and 1 afterwards.

use crate::error::Result;
use crate::onnx::builder::{model, Dim};
use crate::onnx::proto::data_type::FLOAT;
use crate::onnx::{GraphBuilder, ModelProto};

use super::ParamSpec;

/// Scalar input: 0 on a step's first micro-batch, 1 after.
pub const ACC_KEEP: &str = "acc_keep";

/// Inputs `acc/<name>`, `grad/<name>`, [`ACC_KEEP`]; outputs `new_acc/<name>`.
pub fn build_accumulate_graph(params: &[ParamSpec]) -> Result<ModelProto> {
    let mut g = GraphBuilder::new();
    let keep = g.input(ACC_KEEP, FLOAT, &[]);
    for p in params {
        let dims: Vec<Dim> = p.dims.iter().map(|&d| Dim::Fixed(d)).collect();
        let acc = g.input(&format!("acc/{}", p.name), FLOAT, &dims);
        let grad = g.input(&format!("grad/{}", p.name), FLOAT, &dims);
        g.set_scope(&p.name);
        let kept = g.op("Mul", &[&acc, &keep], vec![]);
        let sum = g.op("Add", &[&kept, &grad], vec![]);
        g.set_scope("");
        g.output(&sum, &format!("new_acc/{}", p.name), FLOAT, &dims);
    }
    Ok(model(
        g.build("rewardkit_accumulate"),
        "gradient accumulation built by rewardkit",
    ))
}
