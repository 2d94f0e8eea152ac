//! Reverse-mode automatic differentiation over ONNX graphs.
//!
//! Given a forward graph, a scalar loss value and the tensors to train,
//! [`differentiate`] appends a backward pass made of standard ONNX ops and
//! returns the name of each gradient. Rules live in [`rules`], one file per op
//! family. Ops whose outputs never carry gradients (shapes, comparisons,
//! integer casts) are listed in [`rules::NON_DIFFERENTIABLE`]; any other op on
//! the path from a trained tensor to the loss without a rule is a hard error
//! naming the op and the node. A few chains of ops are differentiated as a
//! whole ([`composite`]): the exact GELU, and attention's softmax followed by
//! the product with the values.

pub mod composite;
mod emit;
pub mod rules;

use std::collections::{HashMap, HashSet};

pub use emit::Emit;

use crate::error::{Error, Result};
use crate::onnx::proto::data_type;
use crate::onnx::shape::ShapeInfo;
use crate::onnx::GraphBuilder;

/// What a rule sees of the node it differentiates.
pub struct NodeView<'a> {
    pub node: &'a crate::onnx::proto::NodeProto,
    /// Which inputs need a gradient.
    pub needs: Vec<bool>,
}

impl NodeView<'_> {
    pub fn input(&self, i: usize) -> &str {
        self.node.input.get(i).map(String::as_str).unwrap_or("")
    }
    pub fn output(&self, i: usize) -> &str {
        self.node.output.get(i).map(String::as_str).unwrap_or("")
    }
    pub fn needs(&self, i: usize) -> bool {
        self.needs.get(i).copied().unwrap_or(false)
    }
    pub fn name(&self) -> &str {
        self.node.name()
    }
}

/// The gradient of each trained tensor, in the order they were asked for.
#[derive(Debug, Clone)]
pub struct Gradients {
    pub grads: Vec<(String, String)>,
}

fn is_float(elem: i32) -> bool {
    matches!(
        elem,
        data_type::FLOAT | data_type::FLOAT16 | data_type::BFLOAT16 | data_type::DOUBLE
    )
}

/// How the backward pass is emitted.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Emit rewardkit's one-pass CPU kernels (domain
    /// [`RK_DOMAIN`](crate::onnx::builder::RK_DOMAIN)) where one computes a
    /// gradient: the exact GELU's ([`FUSED_GELU_GRAD`]) and
    /// LayerNormalization's ([`FUSED_LAYER_NORM_GRAD`]). The graph then runs
    /// only in CPU sessions, which register those kernels. Off: standard
    /// ONNX ops only, for any execution provider.
    pub cpu_kernels: bool,
}

/// The op type of rewardkit's LayerNormalization-gradient kernel (last
/// axis): inputs `dy`, `x`, `gamma`, `mean`, `inv_std` (the forward node's
/// outputs 1 and 2), outputs `dx` and `dy·x̂` (whose sum over the rows is
/// γ's gradient).
pub const FUSED_LAYER_NORM_GRAD: &str = "LayerNormGrad";

/// The op type of rewardkit's GELU-gradient kernel: inputs `dy` and `x`
/// (the same shape, f32), output `dx = dy·(Φ(x) + x·φ(x))`.
pub const FUSED_GELU_GRAD: &str = "GeluGrad";

/// Append the backward pass of `loss` (a float scalar) with respect to `wrt`
/// to the graph in `g`, in standard ONNX ops. Returns the gradient value of
/// each name in `wrt` (a zero tensor for a tensor the loss does not depend
/// on).
pub fn differentiate(g: &mut GraphBuilder, loss: &str, wrt: &[String]) -> Result<Gradients> {
    differentiate_with(g, loss, wrt, Options::default())
}

/// [`differentiate`], with the choices of `options`.
pub fn differentiate_with(
    g: &mut GraphBuilder,
    loss: &str,
    wrt: &[String],
    options: Options,
) -> Result<Gradients> {
    // LayerNormalization's backward needs the mean and inverse std of the
    // forward pass: expose them as optional outputs of the forward nodes.
    let mut counter = 0;
    for node in g.nodes_mut().iter_mut() {
        if node.op_type() == "LayerNormalization" && node.output.len() < 3 {
            let base = node.output[0].clone();
            while node.output.len() < 3 {
                counter += 1;
                node.output.push(format!("{base}/stat{counter}"));
            }
        }
    }
    let graph_snapshot = g.snapshot();
    let shapes = ShapeInfo::infer(&graph_snapshot);
    let composites = composite::find(&graph_snapshot, &shapes);
    let nodes = graph_snapshot.node;

    // Forward: which values depend on a trained tensor.
    let mut requires: HashSet<String> = wrt.iter().cloned().collect();
    for node in &nodes {
        if rules::NON_DIFFERENTIABLE.contains(&node.op_type()) {
            continue;
        }
        if node.input.iter().any(|i| requires.contains(i)) {
            for o in &node.output {
                let float = shapes.get(o).is_none_or(|s| is_float(s.elem_type));
                if !o.is_empty() && float {
                    requires.insert(o.clone());
                }
            }
        }
    }
    if !requires.contains(loss) {
        return Err(Error::InvalidArgument(format!(
            "the loss {loss:?} does not depend on any trained tensor"
        )));
    }
    let loss_shape = shapes.require(loss)?;
    if loss_shape.rank() != 0 && !loss_shape.dims.iter().all(|d| d.known() == Some(1)) {
        return Err(Error::InvalidArgument(format!(
            "the loss {loss:?} must be a scalar, found dims {:?}",
            loss_shape.dims
        )));
    }

    // Backward: walk nodes in reverse, summing gradient contributions.
    let mut contributions: HashMap<String, Vec<String>> = HashMap::new();
    let mut memo: HashMap<String, String> = HashMap::new();
    let prev_scope = g.set_scope("grad");
    let seed = {
        let mut e = Emit::with_memo(g, &shapes, &mut memo);
        e.ones_like(loss)
    };
    contributions.insert(loss.to_string(), vec![seed]);
    for (index, node) in nodes.iter().enumerate().rev() {
        let has_grad = node.output.iter().any(|o| contributions.contains_key(o));
        let needs: Vec<bool> = node
            .input
            .iter()
            .map(|i| !i.is_empty() && requires.contains(i))
            .collect();
        if !has_grad || !needs.iter().any(|&n| n) {
            continue;
        }
        if let Some(c) = composites.get(&index) {
            // The whole chain in one rule: its interior nodes receive no
            // gradient and are skipped when the walk reaches them.
            let mut e = Emit::with_memo(g, &shapes, &mut memo);
            e.cpu_kernels = options.cpu_kernels;
            let dy = e
                .sum_contributions(contributions.get(&node.output[0]))
                .ok_or_else(|| Error::Internal("composite without a gradient".into()))?;
            let wants: Vec<bool> = c.inputs.iter().map(|i| requires.contains(i)).collect();
            let dxs = composite::emit(&mut e, c, node, &wants, &dy).map_err(|err| match err {
                Error::InvalidArgument(m) => Error::InvalidArgument(format!(
                    "gradient of the {:?} chain ending at node {:?}: {m}",
                    c.kind,
                    node.name()
                )),
                other => other,
            })?;
            for (input, dx) in c.inputs.iter().zip(dxs) {
                if let Some(dx) = dx {
                    contributions.entry(input.clone()).or_default().push(dx);
                }
            }
            continue;
        }
        let op = node.op_type();
        let rule = rules::lookup(op).ok_or_else(|| {
            Error::InvalidArgument(format!(
                "no gradient rule for op {op} (node {:?}) on the path from a trained tensor to the loss",
                node.name()
            ))
        })?;
        let mut e = Emit::with_memo(g, &shapes, &mut memo);
        e.cpu_kernels = options.cpu_kernels;
        let dys: Vec<Option<String>> = node
            .output
            .iter()
            .map(|o| e.sum_contributions(contributions.get(o)))
            .collect();
        let view = NodeView {
            node,
            needs: needs.clone(),
        };
        let dxs = rule(&mut e, &view, &dys).map_err(|err| match err {
            Error::InvalidArgument(m) => {
                Error::InvalidArgument(format!("gradient of {op} node {:?}: {m}", node.name()))
            }
            other => other,
        })?;
        for (i, dx) in dxs.into_iter().enumerate() {
            if let Some(dx) = dx {
                if needs.get(i).copied().unwrap_or(false) {
                    contributions
                        .entry(node.input[i].clone())
                        .or_default()
                        .push(dx);
                }
            }
        }
    }
    let mut grads = Vec::with_capacity(wrt.len());
    for w in wrt {
        let mut e = Emit::with_memo(g, &shapes, &mut memo);
        let dw = match e.sum_contributions(contributions.get(w)) {
            Some(d) => d,
            None => e.zeros_like(w),
        };
        grads.push((w.clone(), dw));
    }
    g.set_scope(&prev_scope);
    Ok(Gradients { grads })
}
