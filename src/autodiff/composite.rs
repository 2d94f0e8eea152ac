//! Chains of forward ops differentiated as one function.
//!
//! Op-by-op rules are correct for any graph, but a chain of elementwise ops
//! that together compute one well-known function gets a backward pass as
//! long as the chain, and every intermediate the op rules read stays alive
//! from the forward pass to the backward pass. The exact GELU,
//! `0.5·x·(1 + erf(x/√2))`, is five forward ops: differentiated op by op,
//! its backward pass is ten passes over the layer's widest activation and
//! keeps two extra tensors of that size per layer (`x/√2` and
//! `1 + erf(x/√2)`). Recognised as a whole, its gradient is computed from
//! `x` alone in nine passes (ten when the incoming gradient is not a
//! product that ONNX Runtime can scale); the forward chain's intermediates
//! are then read by nothing else, so they are freed at once, and ONNX
//! Runtime fuses the chain into its single Gelu kernel.
//!
//! Attention's `Softmax` followed by the product with the values,
//! `ctx = softmax(s)·v`, is the other chain. Op by op, the softmax backward
//! needs `Σⱼ dpᵢⱼ·pᵢⱼ` over the key axis: a product and a reduction over the
//! [batch, heads, seq, seq] probabilities. When the probabilities feed only
//! that product, `Σⱼ dpᵢⱼ·pᵢⱼ = dctxᵢ · ctxᵢ` (since dp = dctx·vᵀ and
//! ctx = p·v), a product over the head dimension instead, 8× fewer elements
//! at 256 tokens for MiniLM's 32-wide heads (the identity FlashAttention's
//! backward pass uses).
//!
//! A linear layer with its weight stored `[out, in]`, `MatMul(x,
//! Transpose(W))`, is the third. Op by op, the weight's gradient is the
//! transposed weight's, `xᵀ·dy` (`[in, out]`), transposed back: one more
//! pass over the weight, and the product in the orientation that ONNX
//! Runtime's CPU GEMM runs slower (for MiniLM's output projection, K = 1536
//! and N = 384, 114 against 148 GFLOP/s with cold caches). Taken whole,
//! `dW = dyᵀ·x` is computed as such.
//!
//! A chain is only taken as a whole when each intermediate has exactly one
//! reader (the next op of the chain) and is not a graph output; otherwise
//! the op rules apply as usual.

use std::collections::HashMap;

use super::{rules, Emit, NodeView};
use crate::error::{Error, Result};
use crate::onnx::builder::Attr;
use crate::onnx::io::tensor_to_f32;
use crate::onnx::proto::{data_type, GraphProto, NodeProto};
use crate::onnx::shape::{attr_int, attr_ints, ShapeInfo};

/// A recognised chain and the values its gradient flows to.
#[derive(Debug, Clone)]
pub struct Composite {
    pub kind: CompositeKind,
    /// The chain's inputs: `[x]` for the GELU, `[scores, values]` for the
    /// softmax and product.
    pub inputs: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompositeKind {
    /// `0.5·x·(1 + erf(x/√2))`
    GeluErf,
    /// `MatMul(Softmax(s, last axis), v)`
    SoftmaxMatMul,
    /// `MatMul(x, Transpose(w, perm = [1, 0]))` with `w` a matrix
    Linear,
}

/// Every recognised chain, keyed by the index of its last node in `graph`.
pub fn find(graph: &GraphProto, shapes: &ShapeInfo) -> HashMap<usize, Composite> {
    let mut readers: HashMap<&str, usize> = HashMap::new();
    for n in &graph.node {
        for i in n.input.iter().filter(|i| !i.is_empty()) {
            *readers.entry(i.as_str()).or_default() += 1;
        }
    }
    for o in &graph.output {
        // A graph output is read from outside: never an interior value.
        *readers.entry(o.name()).or_default() += 2;
    }
    let mut producer: HashMap<&str, &NodeProto> = HashMap::new();
    for n in &graph.node {
        for o in n.output.iter().filter(|o| !o.is_empty()) {
            producer.insert(o.as_str(), n);
        }
    }
    let scalar = |name: &str| -> Option<f32> {
        let t = graph.initializer.iter().find(|t| t.name() == name)?;
        if t.data_type() != data_type::FLOAT || t.dims.iter().product::<i64>() != 1 {
            return None;
        }
        tensor_to_f32(t).ok()?.first().copied()
    };
    let m = Matcher {
        readers,
        producer,
        scalar: &scalar,
        shapes,
    };
    graph
        .node
        .iter()
        .enumerate()
        .filter_map(|(i, n)| {
            let c = if let Some(x) = m.gelu_erf(n) {
                Composite {
                    kind: CompositeKind::GeluErf,
                    inputs: vec![x],
                }
            } else if let Some(inputs) = m.linear(n) {
                Composite {
                    kind: CompositeKind::Linear,
                    inputs,
                }
            } else {
                Composite {
                    kind: CompositeKind::SoftmaxMatMul,
                    inputs: m.softmax_matmul(n)?,
                }
            };
            Some((i, c))
        })
        .collect()
}

struct Matcher<'a, 'g> {
    readers: HashMap<&'g str, usize>,
    producer: HashMap<&'g str, &'g NodeProto>,
    scalar: &'a dyn Fn(&str) -> Option<f32>,
    shapes: &'a ShapeInfo,
}

fn close(v: f32, want: f32) -> bool {
    (v - want).abs() <= 1e-6 * want.abs()
}

impl<'g> Matcher<'_, 'g> {
    /// The node that computes `value`, when `value` is an interior value
    /// of a chain (read once, by the chain's next op) and of op `op`.
    fn interior(&self, value: &str, op: &str) -> Option<&'g NodeProto> {
        let n = self.producer.get(value)?;
        (n.op_type() == op && n.output.len() == 1 && self.readers.get(value) == Some(&1))
            .then_some(*n)
    }

    /// The operands of a binary node as (other, constant) when one of them
    /// is a scalar float constant equal to `want`.
    fn with_constant<'n>(&self, n: &'n NodeProto, want: f32) -> Option<&'n str> {
        if n.input.len() != 2 {
            return None;
        }
        let (a, b) = (n.input[0].as_str(), n.input[1].as_str());
        if (self.scalar)(b).is_some_and(|v| close(v, want)) {
            Some(a)
        } else if (self.scalar)(a).is_some_and(|v| close(v, want)) {
            Some(b)
        } else {
            None
        }
    }

    /// `ctx = MatMul(Softmax(s), v)` with the softmax over the last axis
    /// and read by nothing else. Returns `[s, v]`.
    fn softmax_matmul(&self, last: &NodeProto) -> Option<Vec<String>> {
        if last.op_type() != "MatMul" || last.input.len() != 2 || last.output.len() != 1 {
            return None;
        }
        let softmax = self.interior(&last.input[0], "Softmax")?;
        let s = softmax.input.first()?;
        let rank = self.shapes.get(s)?.rank() as i64;
        let axis = attr_int(softmax, "axis", -1);
        let (rv, ry) = (
            self.shapes.get(&last.input[1])?.rank(),
            self.shapes.get(&last.output[0])?.rank(),
        );
        (rank >= 2 && rv >= 2 && ry >= 2 && (axis == -1 || axis == rank - 1))
            .then(|| vec![s.clone(), last.input[1].clone()])
    }

    /// `y = MatMul(x, Transpose(w))` with `w` of rank 2, `x` of rank 2 or
    /// more and the transpose read by nothing else. Returns `[x, w]`.
    fn linear(&self, last: &NodeProto) -> Option<Vec<String>> {
        if last.op_type() != "MatMul" || last.input.len() != 2 || last.output.len() != 1 {
            return None;
        }
        let t = self.interior(&last.input[1], "Transpose")?;
        let w = t.input.first()?;
        let perm_ok = attr_ints(t, "perm").is_none_or(|p| p == [1, 0]);
        let (rx, rw) = (
            self.shapes.get(&last.input[0])?.rank(),
            self.shapes.get(w)?.rank(),
        );
        (perm_ok && rw == 2 && rx >= 2).then(|| vec![last.input[0].clone(), w.clone()])
    }

    /// `y = Mul(Mul(x, Add(Erf(Div(x, √2)), 1)), 0.5)`, with the usual
    /// commutations and `Mul(x, 1/√2)` for the Div. Returns `x`.
    fn gelu_erf(&self, last: &NodeProto) -> Option<String> {
        if last.op_type() != "Mul" {
            return None;
        }
        let xe = self.with_constant(last, 0.5)?;
        let mul = self.interior(xe, "Mul")?;
        if mul.input.len() != 2 {
            return None;
        }
        for (x, e1) in [(0, 1), (1, 0)].map(|(a, b)| (&mul.input[a], &mul.input[b])) {
            let Some(add) = self.interior(e1, "Add") else {
                continue;
            };
            let Some(erf_out) = self.with_constant(add, 1.0) else {
                continue;
            };
            let Some(erf) = self.interior(erf_out, "Erf") else {
                continue;
            };
            let Some(scaled) = erf.input.first() else {
                continue;
            };
            let by_div = self.interior(scaled, "Div").is_some_and(|d| {
                d.input.len() == 2
                    && d.input[0] == *x
                    && (self.scalar)(&d.input[1])
                        .is_some_and(|v| close(v, std::f32::consts::SQRT_2))
            });
            let by_mul = self.interior(scaled, "Mul").is_some_and(|m| {
                self.with_constant(m, std::f32::consts::FRAC_1_SQRT_2) == Some(x.as_str())
            });
            if !(by_div || by_mul) {
                continue;
            }
            return Some(x.clone());
        }
        None
    }
}

/// The gradients with respect to the chain's inputs (`None` where `needs`
/// says none is wanted), given the gradient of its output. `last` is the
/// chain's last node.
pub fn emit(
    e: &mut Emit<'_>,
    c: &Composite,
    last: &NodeProto,
    needs: &[bool],
    dy: &str,
) -> Result<Vec<Option<String>>> {
    match c.kind {
        CompositeKind::GeluErf => Ok(vec![needs[0].then(|| gelu_erf(e, &c.inputs[0], dy))]),
        CompositeKind::SoftmaxMatMul => {
            // The product's own rule gives dp = dctx·vᵀ and dv = pᵀ·dctx.
            let matmul =
                rules::lookup("MatMul").ok_or_else(|| Error::Internal("no MatMul rule".into()))?;
            let view = NodeView {
                node: last,
                needs: vec![needs[0], needs[1]],
            };
            // The rule returns None for an operand `needs` leaves out.
            let mut grads = matmul(e, &view, &[Some(dy.to_string())])?;
            grads.resize(2, None);
            let ds = match grads[0].take() {
                Some(dp) => {
                    // ds = p·(dp − Σⱼ dpⱼ·pⱼ), the sum taken as dctx·ctx.
                    let (p, ctx) = (&last.input[0], &last.output[0]);
                    let rank = e.rank(ctx)? as i64;
                    let prod = e.mul(dy, ctx);
                    let dot = e.reduce_sum(&prod, &[rank - 1], true);
                    let centred = e.sub(&dp, &dot);
                    Some(e.mul(p, &centred))
                }
                None => None,
            };
            Ok(vec![ds, grads[1].take()])
        }
        CompositeKind::Linear => linear(e, &c.inputs[0], &c.inputs[1], &last.output[0], needs, dy),
    }
}

/// `y = x·wᵀ`: dx = dy·w, and dw = dyᵀ·x over the rows of all batch dims.
fn linear(
    e: &mut Emit<'_>,
    x: &str,
    w: &str,
    y: &str,
    needs: &[bool],
    dy: &str,
) -> Result<Vec<Option<String>>> {
    let dx = needs[0].then(|| e.op("MatMul", &[dy, w], vec![]));
    let dw = if needs[1] {
        let x2 = e.as_rows(x, x)?;
        let dy2 = e.as_rows(dy, y)?;
        let dyt = e.op("Transpose", &[&dy2], vec![("perm", Attr::Ints(vec![1, 0]))]);
        Some(e.op("MatMul", &[&dyt, &x2], vec![]))
    } else {
        None
    };
    Ok(vec![dx, dw])
}

fn gelu_erf(e: &mut Emit<'_>, x: &str, dy: &str) -> String {
    let f32_input = e.shape(x).is_ok_and(|s| s.elem_type == data_type::FLOAT);
    if e.cpu_kernels && f32_input {
        let dx = e.op(super::FUSED_GELU_GRAD, &[dy, x], vec![]);
        e.g.set_last_domain(crate::onnx::builder::RK_DOMAIN);
        return dx;
    }
    // d/dx [x·Φ(x)] = Φ(x) + x·φ(x) = ½·(1 + erf(s) + 2·s·exp(−s²)/√π)
    // with s = x/√2, and 2/√π·exp(−s²) = exp(ln(2/√π) − s²).
    // `s` is a Mul by 1/√2, not the forward's Div by √2, so that
    // common-subexpression elimination does not merge it into the
    // forward chain (which would stop the chain's fusion).
    let inv_sqrt2 = e.f32(std::f32::consts::FRAC_1_SQRT_2);
    let s = e.mul(x, &inv_sqrt2);
    let erf = e.op("Erf", &[&s], vec![]);
    let s2 = e.mul(&s, &s);
    let log_c = e.f32((2.0 / std::f32::consts::PI.sqrt()).ln());
    let t = e.sub(&log_c, &s2);
    let ex = e.op("Exp", &[&t], vec![]);
    let x_pdf2 = e.mul(&s, &ex);
    // Two-input adds: ONNX Runtime's Sum with a broadcast scalar
    // takes its slow general path (it cost about three passes).
    let one = e.f32(1.0);
    let a = e.add(&erf, &x_pdf2);
    let twice_slope = e.add(&a, &one);
    // The ½ goes on dy: when dy is a product read only here (the next
    // layer's input gradient), ONNX Runtime folds it into that product's
    // scale, saving a pass.
    let half = e.f32(0.5);
    let half_dy = e.mul(dy, &half);
    e.mul(&half_dy, &twice_slope)
}
