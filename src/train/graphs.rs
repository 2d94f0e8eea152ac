//! Building the training, evaluation and optimizer graphs of a reward model.

use crate::autodiff::{differentiate_with, Options};
use crate::error::{Error, Result};
use crate::loss::{append_pairwise_loss, append_regression_loss, PairwiseLoss};
use crate::model::{Backbone, Pooling, RewardHead, Weights};
use crate::onnx::builder::{model, Dim};
use crate::onnx::io::tensor_to_f32;
use crate::onnx::proto::data_type::FLOAT;
use crate::onnx::{GraphBuilder, ModelProto};
use crate::optim::{
    build_accumulate_graph, build_optimizer_graph, OptimizerGraph, OptimizerKind, ParamSpec,
};
use crate::runtime::ParamInit;

/// What the loss is computed from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Objective {
    /// Pairs: chosen rows first, rejected rows after them.
    Pairwise(PairwiseLoss),
    /// Ratings: masked MSE over every output.
    Regression,
}

/// Which parameters train.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Freeze {
    /// Train only the reward head.
    pub head_only: bool,
    /// Keep the embedding tables fixed.
    pub embeddings: bool,
}

/// Output names of the training and evaluation graphs.
pub const LOSS: &str = "loss";
pub const CHOSEN: &str = "chosen_reward";
pub const REJECTED: &str = "rejected_reward";
pub const SCORES_OUT: &str = "scores_out";

/// Everything a training run needs to start.
pub struct TrainGraphs {
    pub train: ModelProto,
    pub eval: ModelProto,
    pub optimizer: OptimizerGraph,
    /// The accumulation graph, when gradients are accumulated over micro-batches.
    pub accumulator: Option<ModelProto>,
    pub params: Vec<ParamInit>,
    /// The inference graph the bundle is written from (weights replaced at the end).
    pub inference: ModelProto,
}

/// Weight decay applies to matrices and embeddings, not to biases or norms
/// (the convention of Hugging Face's Trainer and TRL).
fn decays(name: &str, dims: &[i64]) -> bool {
    dims.len() >= 2 && !name.contains("LayerNorm")
}

/// Build the graphs for training a reward model. `max_length` bounds the
/// sequences the graphs take (decoders size their rotary tables by it).
/// `optimizer_piece` cuts large parameters' updates into pieces
/// ([`crate::optim::pieces`]). With `fused_kernels`, the graphs use
/// rewardkit's one-pass CPU kernels where it has one (the GELU's gradient,
/// the AdamW update);
/// they then run only in CPU sessions that register those kernels.
#[allow(clippy::too_many_arguments)]
pub fn build_training_graphs(
    backbone: &Backbone,
    weights: &mut Weights,
    head: &RewardHead,
    pooling: Pooling,
    max_length: Option<usize>,
    reward_index: usize,
    objective: Objective,
    freeze: Freeze,
    optimizer: OptimizerKind,
    clip: Option<f32>,
    accumulate: bool,
    optimizer_piece: Option<usize>,
    fused_kernels: bool,
) -> Result<TrainGraphs> {
    let (inference, names) = backbone.build(weights, head, pooling, max_length)?;
    let graph = inference
        .graph
        .clone()
        .ok_or_else(|| Error::Internal("model without graph".into()))?;
    let trainable: Vec<String> = names
        .into_iter()
        .filter(|n| {
            let is_head = n.starts_with("reward_head.");
            let is_emb = backbone.is_embedding(n);
            is_head || !(freeze.head_only || freeze.embeddings && is_emb)
        })
        .collect();
    if !trainable
        .iter()
        .any(|n| n == crate::model::head::HEAD_WEIGHT)
    {
        return Err(Error::Internal(
            "the reward head is not among the trained parameters".into(),
        ));
    }
    let mut g = GraphBuilder::from_graph(graph);
    g.clear_outputs();
    let mut params = Vec::with_capacity(trainable.len());
    let mut specs = Vec::with_capacity(trainable.len());
    for name in &trainable {
        let t = g
            .take_initializer(name)
            .ok_or_else(|| Error::Internal(format!("no initializer {name}")))?;
        let values = tensor_to_f32(&t)?;
        let dims: Vec<Dim> = t.dims.iter().map(|&d| Dim::Fixed(d)).collect();
        g.declare_input(name, FLOAT, &dims);
        specs.push(ParamSpec {
            name: name.clone(),
            dims: t.dims.clone(),
            decay: decays(name, &t.dims),
        });
        params.push(ParamInit {
            name: name.clone(),
            dims: t.dims.clone(),
            values,
        });
    }
    // The forward graph's `scores` output was an Identity of this value.
    let scores = "scores";
    let loss = match objective {
        Objective::Pairwise(kind) => {
            let l = append_pairwise_loss(&mut g, scores, reward_index, kind)?;
            g.output(&l.chosen, CHOSEN, FLOAT, &[Dim::Named("pairs".into())]);
            g.output(&l.rejected, REJECTED, FLOAT, &[Dim::Named("pairs".into())]);
            l.loss
        }
        Objective::Regression => {
            let l = append_regression_loss(&mut g, scores, head.n_outputs())?;
            g.output(
                scores,
                SCORES_OUT,
                FLOAT,
                &[
                    Dim::Named("rows".into()),
                    Dim::Fixed(head.n_outputs() as i64),
                ],
            );
            l.loss
        }
    };
    g.output(&loss, LOSS, FLOAT, &[]);
    let eval = model(
        g.snapshot_full(),
        "reward model evaluation graph built by rewardkit",
    );
    let grads = differentiate_with(
        &mut g,
        &loss,
        &trainable,
        Options {
            cpu_kernels: fused_kernels,
        },
    )?;
    for (spec, (_, grad)) in specs.iter().zip(&grads.grads) {
        let dims: Vec<Dim> = spec.dims.iter().map(|&d| Dim::Fixed(d)).collect();
        g.output(grad, &format!("grad/{}", spec.name), FLOAT, &dims);
    }
    let train = model(
        g.build("rewardkit_training_step"),
        "reward model training step built by rewardkit",
    );
    let optimizer = build_optimizer_graph(
        &specs,
        optimizer,
        clip,
        accumulate,
        optimizer_piece,
        fused_kernels,
    )?;
    let accumulator = if accumulate {
        Some(build_accumulate_graph(&specs)?)
    } else {
        None
    };
    Ok(TrainGraphs {
        train,
        eval,
        optimizer,
        params,
        inference,
        accumulator,
    })
}
