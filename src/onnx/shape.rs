//! Static shape inference over rewardkit's graphs, with symbolic dimensions.
//!
//! The autodiff needs every value's rank (for `Transpose` permutations) and,
//! where it can be known, which axes a broadcast stretched (to sum gradients
//! back). This pass covers the ops rewardkit's graphs use; a value it cannot
//! infer gets no entry, and callers that need it fail with the value's name.

use std::collections::HashMap;

use super::proto::{attribute_type, data_type, type_proto, GraphProto, NodeProto, TensorProto};
use crate::error::{Error, Result};

/// One dimension: a number, a named symbol, or unknown.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Dim {
    Known(i64),
    Sym(String),
    Unknown,
}

impl Dim {
    pub fn known(&self) -> Option<i64> {
        match self {
            Dim::Known(v) => Some(*v),
            _ => None,
        }
    }

    /// Two dims certainly equal (same number, or the same symbol).
    pub fn same(&self, other: &Dim) -> bool {
        match (self, other) {
            (Dim::Known(a), Dim::Known(b)) => a == b,
            (Dim::Sym(a), Dim::Sym(b)) => a == b,
            _ => false,
        }
    }
}

/// A tensor's element type and dims.
#[derive(Debug, Clone, PartialEq)]
pub struct ValueShape {
    pub elem_type: i32,
    pub dims: Vec<Dim>,
}

impl ValueShape {
    pub fn rank(&self) -> usize {
        self.dims.len()
    }
}

/// Shapes (and small int64 constant values) of a graph's values.
#[derive(Debug, Default, Clone)]
pub struct ShapeInfo {
    shapes: HashMap<String, ValueShape>,
    /// Values of small int64 tensors known at build time (shape constants, axes).
    consts: HashMap<String, Vec<i64>>,
    /// Symbolic contents of shape tensors (`Shape(x)` and values derived from it).
    sym_values: HashMap<String, Vec<Dim>>,
}

fn attr<'a>(node: &'a NodeProto, name: &str) -> Option<&'a super::proto::AttributeProto> {
    node.attribute.iter().find(|a| a.name() == name)
}

/// Integer attribute of a node, or `default`.
pub fn attr_int(node: &NodeProto, name: &str, default: i64) -> i64 {
    attr(node, name).and_then(|a| a.i).unwrap_or(default)
}

/// Integer-list attribute of a node.
pub fn attr_ints(node: &NodeProto, name: &str) -> Option<Vec<i64>> {
    attr(node, name)
        .filter(|a| a.r#type == Some(attribute_type::INTS) || !a.ints.is_empty())
        .map(|a| a.ints.clone())
}

/// Float attribute of a node, or `default`.
pub fn attr_float(node: &NodeProto, name: &str, default: f32) -> f32 {
    attr(node, name).and_then(|a| a.f).unwrap_or(default)
}

fn tensor_i64_values(t: &TensorProto) -> Option<Vec<i64>> {
    if t.data_type != Some(data_type::INT64) {
        return None;
    }
    match &t.raw_data {
        Some(raw) => Some(
            raw.chunks_exact(8)
                .map(|c| i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                .collect(),
        ),
        None => Some(t.int64_data.clone()),
    }
}

/// Normalise a possibly negative axis for `rank`.
pub fn norm_axis(axis: i64, rank: usize) -> Option<usize> {
    let r = rank as i64;
    let a = if axis < 0 { axis + r } else { axis };
    (0..r).contains(&a).then_some(a as usize)
}

/// The symbol `name · mul / div`, simplified.
fn scaled_sym(name: &str, mul: i64, div: i64) -> Dim {
    match (mul, div) {
        (1, 1) => Dim::Sym(name.to_string()),
        (m, 1) => Dim::Sym(format!("{name}*{m}")),
        (1, d) => Dim::Sym(format!("{name}/{d}")),
        (m, d) => Dim::Sym(format!("{name}*{m}/{d}")),
    }
}

/// Broadcast two shapes (numpy rules).
pub fn broadcast(a: &[Dim], b: &[Dim]) -> Vec<Dim> {
    let n = a.len().max(b.len());
    (0..n)
        .map(|i| {
            let da = if i + a.len() >= n {
                &a[i + a.len() - n]
            } else {
                &Dim::Known(1)
            };
            let db = if i + b.len() >= n {
                &b[i + b.len() - n]
            } else {
                &Dim::Known(1)
            };
            match (da, db) {
                (Dim::Known(1), d) | (d, Dim::Known(1)) => d.clone(),
                (x, y) if x.same(y) => x.clone(),
                (Dim::Known(x), _) | (_, Dim::Known(x)) => Dim::Known(*x),
                (Dim::Sym(s), _) => Dim::Sym(s.clone()),
                _ => Dim::Unknown,
            }
        })
        .collect()
}

impl ShapeInfo {
    /// Infer shapes for every value of `graph` that the supported ops produce.
    pub fn infer(graph: &GraphProto) -> Self {
        let mut info = ShapeInfo::default();
        for vi in graph
            .input
            .iter()
            .chain(graph.value_info.iter())
            .chain(graph.output.iter())
        {
            if let Some(ty) = &vi.r#type {
                if let Some(type_proto::Value::TensorType(t)) = &ty.value {
                    let dims = t
                        .shape
                        .as_ref()
                        .map(|s| {
                            s.dim
                                .iter()
                                .map(|d| match &d.value {
                                    Some(super::proto::tensor_shape_proto::dimension::Value::DimValue(v)) => Dim::Known(*v),
                                    Some(super::proto::tensor_shape_proto::dimension::Value::DimParam(p)) => Dim::Sym(p.clone()),
                                    None => Dim::Unknown,
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    info.shapes.insert(
                        vi.name().to_string(),
                        ValueShape {
                            elem_type: t.elem_type.unwrap_or(0),
                            dims,
                        },
                    );
                }
            }
        }
        for t in &graph.initializer {
            info.add_tensor(t);
        }
        for node in &graph.node {
            info.infer_node(node);
        }
        info
    }

    fn add_tensor(&mut self, t: &TensorProto) {
        let name = t.name().to_string();
        self.shapes.insert(
            name.clone(),
            ValueShape {
                elem_type: t.data_type.unwrap_or(0),
                dims: t.dims.iter().map(|&d| Dim::Known(d)).collect(),
            },
        );
        if t.num_elements().is_some_and(|n| n <= 64) {
            if let Some(v) = tensor_i64_values(t) {
                self.consts.insert(name, v);
            }
        }
    }

    /// Record a value's shape (used for values the autodiff adds).
    pub fn set(&mut self, name: &str, shape: ValueShape) {
        self.shapes.insert(name.to_string(), shape);
    }

    pub fn get(&self, name: &str) -> Option<&ValueShape> {
        self.shapes.get(name)
    }

    /// The shape of `name`, or an error naming it.
    pub fn require(&self, name: &str) -> Result<&ValueShape> {
        self.shapes.get(name).ok_or_else(|| {
            Error::model(
                name,
                "its shape could not be inferred (an op without shape inference produced it)",
            )
        })
    }

    pub fn rank(&self, name: &str) -> Result<usize> {
        Ok(self.require(name)?.rank())
    }

    /// A constant int64 tensor's values, when known.
    pub fn const_i64(&self, name: &str) -> Option<&[i64]> {
        self.consts.get(name).map(Vec::as_slice)
    }

    /// A node's `axes`: its second input when that is a known constant
    /// (opset 13+ style), else its `axes` attribute.
    fn axes_of(&self, node: &NodeProto) -> Option<Vec<i64>> {
        node.input
            .get(1)
            .filter(|n| !n.is_empty())
            .and_then(|n| self.consts.get(n))
            .cloned()
            .or_else(|| attr_ints(node, "axes"))
    }

    /// Infer one node's outputs from its inputs (no-op for unsupported ops).
    pub fn infer_node(&mut self, node: &NodeProto) {
        let inputs: Vec<Option<ValueShape>> = node
            .input
            .iter()
            .map(|i| {
                if i.is_empty() {
                    None
                } else {
                    self.shapes.get(i).cloned()
                }
            })
            .collect();
        let inp = |i: usize| inputs.get(i).and_then(|s| s.as_ref());
        let out0 = node.output.first().cloned().unwrap_or_default();
        let op = node.op_type();
        let same_as = |i: usize| inp(i).cloned();
        let result: Option<ValueShape> = match op {
            "Identity" | "Neg" | "Exp" | "Log" | "Sqrt" | "Erf" | "Tanh" | "Relu" | "Sigmoid"
            | "Softmax" | "LogSoftmax" | "Abs" | "Sign" | "Softplus" | "Reciprocal" | "Not"
            | "Dropout" => same_as(0),
            "Add" | "Sub" | "Mul" | "Div" | "Pow" | "Max" | "Min" | "Sum" | "Mean" | "Equal"
            | "Greater" | "Less" | "And" | "Or" | "GreaterOrEqual" | "LessOrEqual" => {
                let mut dims: Vec<Dim> = Vec::new();
                let mut elem = 0;
                let mut ok = true;
                for (k, s) in inputs.iter().enumerate() {
                    match s {
                        Some(s) => {
                            dims = if k == 0 {
                                s.dims.clone()
                            } else {
                                broadcast(&dims, &s.dims)
                            };
                            if k == 0 {
                                elem = s.elem_type;
                            }
                        }
                        None => ok = false,
                    }
                }
                let elem = if matches!(
                    op,
                    "Equal" | "Greater" | "Less" | "And" | "Or" | "GreaterOrEqual" | "LessOrEqual"
                ) {
                    data_type::BOOL
                } else {
                    elem
                };
                ok.then_some(ValueShape {
                    elem_type: elem,
                    dims,
                })
            }
            "Where" => match (inp(0), inp(1), inp(2)) {
                (Some(c), Some(a), Some(b)) => Some(ValueShape {
                    elem_type: a.elem_type,
                    dims: broadcast(&broadcast(&c.dims, &a.dims), &b.dims),
                }),
                _ => None,
            },
            "Cast" => inp(0).map(|s| ValueShape {
                elem_type: attr_int(node, "to", 0) as i32,
                dims: s.dims.clone(),
            }),
            "Shape" => inp(0).map(|s| {
                self.sym_values.insert(out0.clone(), s.dims.clone());
                if s.dims.iter().all(|d| d.known().is_some()) {
                    self.consts
                        .insert(out0.clone(), s.dims.iter().filter_map(Dim::known).collect());
                }
                ValueShape {
                    elem_type: data_type::INT64,
                    dims: vec![Dim::Known(s.rank() as i64)],
                }
            }),
            "Size" => Some(ValueShape {
                elem_type: data_type::INT64,
                dims: vec![],
            }),
            "ConstantOfShape" => {
                let elem = attr(node, "value")
                    .and_then(|a| a.t.as_ref())
                    .and_then(|t| t.data_type)
                    .unwrap_or(data_type::FLOAT);
                match (inp(0), self.consts.get(&node.input[0])) {
                    (_, Some(v)) => Some(ValueShape {
                        elem_type: elem,
                        dims: v.iter().map(|&d| Dim::Known(d)).collect(),
                    }),
                    (_, None) if self.sym_values.contains_key(&node.input[0]) => Some(ValueShape {
                        elem_type: elem,
                        dims: self.sym_values[&node.input[0]].clone(),
                    }),
                    (Some(s), None) => s.dims.first().and_then(Dim::known).map(|n| ValueShape {
                        elem_type: elem,
                        dims: vec![Dim::Unknown; n as usize],
                    }),
                    _ => None,
                }
            }
            "Range" => inp(0).map(|s| {
                // Range(0, n, 1) has n elements; n is often a symbolic dim.
                let from_zero = self.consts.get(&node.input[0]).is_some_and(|v| v == &[0]);
                let step_one = node
                    .input
                    .get(2)
                    .and_then(|n| self.consts.get(n))
                    .is_some_and(|v| v == &[1]);
                let limit = node
                    .input
                    .get(1)
                    .and_then(|n| self.sym_values.get(n))
                    .filter(|v| v.len() == 1)
                    .map(|v| v[0].clone());
                let dim = match (from_zero && step_one, limit) {
                    (true, Some(d)) => d,
                    _ => Dim::Unknown,
                };
                ValueShape {
                    elem_type: s.elem_type,
                    dims: vec![dim],
                }
            }),
            "Gather"
                if self.sym_values.contains_key(&node.input[0])
                    && self.consts.contains_key(&node.input[1]) =>
            {
                let vals = &self.sym_values[&node.input[0]];
                let idx = &self.consts[&node.input[1]];
                let picked: Option<Vec<Dim>> = idx
                    .iter()
                    .map(|&i| norm_axis(i, vals.len()).map(|i| vals[i].clone()))
                    .collect();
                let scalar = inp(1).is_some_and(|s| s.rank() == 0);
                if let Some(p) = picked {
                    self.sym_values.insert(out0.clone(), p);
                }
                Some(ValueShape {
                    elem_type: data_type::INT64,
                    dims: if scalar {
                        vec![]
                    } else {
                        vec![Dim::Known(idx.len() as i64)]
                    },
                })
            }
            "Gather" => match (inp(0), inp(1)) {
                (Some(d), Some(i)) => norm_axis(attr_int(node, "axis", 0), d.rank()).map(|ax| {
                    let mut dims = d.dims[..ax].to_vec();
                    dims.extend(i.dims.iter().cloned());
                    dims.extend(d.dims[ax + 1..].iter().cloned());
                    ValueShape {
                        elem_type: d.elem_type,
                        dims,
                    }
                }),
                _ => None,
            },
            "Unsqueeze" => match (inp(0), self.axes_of(node)) {
                (Some(s), Some(axes)) => {
                    let r = s.rank() + axes.len();
                    let mut axes: Vec<usize> =
                        axes.iter().filter_map(|&a| norm_axis(a, r)).collect();
                    axes.sort();
                    let mut src = s.dims.iter();
                    let dims = (0..r)
                        .map(|i| {
                            if axes.contains(&i) {
                                Dim::Known(1)
                            } else {
                                src.next().cloned().unwrap_or(Dim::Unknown)
                            }
                        })
                        .collect();
                    Some(ValueShape {
                        elem_type: s.elem_type,
                        dims,
                    })
                }
                _ => None,
            },
            "Squeeze" => match (inp(0), self.axes_of(node)) {
                (Some(s), Some(axes)) => {
                    let axes: Vec<usize> = axes
                        .iter()
                        .filter_map(|&a| norm_axis(a, s.rank()))
                        .collect();
                    let dims = s
                        .dims
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| !axes.contains(i))
                        .map(|(_, d)| d.clone())
                        .collect();
                    Some(ValueShape {
                        elem_type: s.elem_type,
                        dims,
                    })
                }
                _ => None,
            },
            "Transpose" => inp(0).map(|s| {
                let perm =
                    attr_ints(node, "perm").unwrap_or_else(|| (0..s.rank() as i64).rev().collect());
                ValueShape {
                    elem_type: s.elem_type,
                    dims: perm
                        .iter()
                        .map(|&p| s.dims.get(p as usize).cloned().unwrap_or(Dim::Unknown))
                        .collect(),
                }
            }),
            "Reshape" => match (inp(0), node.input.get(1).and_then(|n| self.consts.get(n))) {
                (Some(s), Some(target)) => {
                    let mut dims: Vec<Dim> = target
                        .iter()
                        .enumerate()
                        .map(|(i, &t)| match t {
                            0 => s.dims.get(i).cloned().unwrap_or(Dim::Unknown),
                            -1 => Dim::Unknown,
                            v => Dim::Known(v),
                        })
                        .collect();
                    // Resolve a single -1 when everything else is known, or
                    // derive a symbol (`batch/2`) when one input dim is symbolic.
                    if let Some(pos) = target.iter().position(|&t| t == -1) {
                        let rest: Option<i64> = dims
                            .iter()
                            .enumerate()
                            .filter(|(i, _)| *i != pos)
                            .map(|(_, d)| d.known())
                            .product();
                        let syms: Vec<&Dim> =
                            s.dims.iter().filter(|d| d.known().is_none()).collect();
                        let known: i64 = s.dims.iter().filter_map(Dim::known).product();
                        dims[pos] = match (rest, syms.as_slice()) {
                            (Some(r), []) if r != 0 => Dim::Known(known / r),
                            (Some(r), [Dim::Sym(name)]) if r != 0 && known % r == 0 => {
                                scaled_sym(name, known / r, 1)
                            }
                            (Some(r), [Dim::Sym(name)]) if known != 0 && r % known == 0 => {
                                scaled_sym(name, 1, r / known)
                            }
                            _ => Dim::Unknown,
                        };
                    }
                    Some(ValueShape {
                        elem_type: s.elem_type,
                        dims,
                    })
                }
                (Some(s), None) if self.sym_values.contains_key(&node.input[1]) => {
                    Some(ValueShape {
                        elem_type: s.elem_type,
                        dims: self.sym_values[&node.input[1]].clone(),
                    })
                }
                (Some(s), None) => inp(1)
                    .and_then(|t| t.dims.first().and_then(Dim::known))
                    .map(|n| ValueShape {
                        elem_type: s.elem_type,
                        dims: vec![Dim::Unknown; n as usize],
                    }),
                _ => None,
            },
            "MatMul" => match (inp(0), inp(1)) {
                (Some(a), Some(b)) if a.rank() >= 2 && b.rank() >= 2 => {
                    let batch = broadcast(&a.dims[..a.rank() - 2], &b.dims[..b.rank() - 2]);
                    let mut dims = batch;
                    dims.push(a.dims[a.rank() - 2].clone());
                    dims.push(b.dims[b.rank() - 1].clone());
                    Some(ValueShape {
                        elem_type: a.elem_type,
                        dims,
                    })
                }
                _ => None,
            },
            "Gemm" => match (inp(0), inp(1)) {
                (Some(a), Some(b)) if a.rank() == 2 && b.rank() == 2 => {
                    let m = if attr_int(node, "transA", 0) != 0 {
                        &a.dims[1]
                    } else {
                        &a.dims[0]
                    };
                    let n = if attr_int(node, "transB", 0) != 0 {
                        &b.dims[0]
                    } else {
                        &b.dims[1]
                    };
                    Some(ValueShape {
                        elem_type: a.elem_type,
                        dims: vec![m.clone(), n.clone()],
                    })
                }
                _ => None,
            },
            "ReduceSum" | "ReduceMean" | "ReduceSumSquare" | "ReduceMax" | "ReduceL2" => inp(0)
                .map(|s| {
                    let keep = attr_int(node, "keepdims", 1) != 0;
                    let axes = self.axes_of(node);
                    let axes: Vec<usize> = match axes {
                        Some(a) if !a.is_empty() => {
                            a.iter().filter_map(|&x| norm_axis(x, s.rank())).collect()
                        }
                        _ => (0..s.rank()).collect(),
                    };
                    let dims = s
                        .dims
                        .iter()
                        .enumerate()
                        .filter_map(|(i, d)| {
                            if axes.contains(&i) {
                                keep.then_some(Dim::Known(1))
                            } else {
                                Some(d.clone())
                            }
                        })
                        .collect();
                    ValueShape {
                        elem_type: s.elem_type,
                        dims,
                    }
                }),
            "LayerNormalization" => {
                if let Some(s) = inp(0) {
                    let ax = norm_axis(attr_int(node, "axis", -1), s.rank()).unwrap_or(0);
                    let stat_dims: Vec<Dim> = s
                        .dims
                        .iter()
                        .enumerate()
                        .map(|(i, d)| if i >= ax { Dim::Known(1) } else { d.clone() })
                        .collect();
                    for extra in node.output.iter().skip(1).filter(|o| !o.is_empty()) {
                        self.shapes.insert(
                            extra.clone(),
                            ValueShape {
                                elem_type: data_type::FLOAT,
                                dims: stat_dims.clone(),
                            },
                        );
                    }
                }
                same_as(0)
            }
            "Concat" => {
                let all: Option<Vec<&ValueShape>> = inputs.iter().map(|s| s.as_ref()).collect();
                all.and_then(|all| {
                    let first = all.first()?;
                    let ax = norm_axis(attr_int(node, "axis", 0), first.rank())?;
                    let mut dims = first.dims.clone();
                    dims[ax] = all
                        .iter()
                        .map(|s| s.dims.get(ax).and_then(Dim::known))
                        .sum::<Option<i64>>()
                        .map_or(Dim::Unknown, Dim::Known);
                    Some(ValueShape {
                        elem_type: first.elem_type,
                        dims,
                    })
                })
            }
            "Split" => {
                if let Some(s) = inp(0) {
                    let ax = norm_axis(attr_int(node, "axis", 0), s.rank()).unwrap_or(0);
                    let n = node.output.len() as i64;
                    let sizes = node
                        .input
                        .get(1)
                        .filter(|n| !n.is_empty())
                        .and_then(|n| self.consts.get(n))
                        .cloned();
                    for (k, o) in node.output.iter().enumerate() {
                        let mut dims = s.dims.clone();
                        dims[ax] = match (&sizes, s.dims[ax].known()) {
                            (Some(sz), _) => sz.get(k).map_or(Dim::Unknown, |&v| Dim::Known(v)),
                            (None, Some(total)) if total % n == 0 => Dim::Known(total / n),
                            _ => Dim::Unknown,
                        };
                        self.shapes.insert(
                            o.clone(),
                            ValueShape {
                                elem_type: s.elem_type,
                                dims,
                            },
                        );
                    }
                }
                None
            }
            "Expand" => match (inp(0), node.input.get(1).and_then(|n| self.consts.get(n))) {
                (Some(s), Some(t)) => Some(ValueShape {
                    elem_type: s.elem_type,
                    dims: broadcast(
                        &s.dims,
                        &t.iter().map(|&v| Dim::Known(v)).collect::<Vec<_>>(),
                    ),
                }),
                (Some(s), None) if self.sym_values.contains_key(&node.input[1]) => {
                    Some(ValueShape {
                        elem_type: s.elem_type,
                        dims: broadcast(&s.dims, &self.sym_values[&node.input[1]]),
                    })
                }
                (Some(s), None) => inp(1)
                    .and_then(|t| t.dims.first().and_then(Dim::known))
                    .map(|n| ValueShape {
                        elem_type: s.elem_type,
                        dims: vec![Dim::Unknown; (n as usize).max(s.rank())],
                    }),
                _ => None,
            },
            "ScatterND" | "ScatterElements" => same_as(0),
            "Flatten" => inp(0).and_then(|s| {
                let ax = norm_axis(attr_int(node, "axis", 1), s.rank() + 1)?;
                let prod = |d: &[Dim]| {
                    d.iter()
                        .map(Dim::known)
                        .product::<Option<i64>>()
                        .map_or(Dim::Unknown, Dim::Known)
                };
                Some(ValueShape {
                    elem_type: s.elem_type,
                    dims: vec![prod(&s.dims[..ax]), prod(&s.dims[ax..])],
                })
            }),
            "Constant" => attr(node, "value").and_then(|a| a.t.as_ref()).map(|t| {
                if let Some(v) = tensor_i64_values(t) {
                    self.consts.insert(out0.clone(), v);
                }
                ValueShape {
                    elem_type: t.data_type.unwrap_or(0),
                    dims: t.dims.iter().map(|&d| Dim::Known(d)).collect(),
                }
            }),
            _ => None,
        };
        if let Some(s) = result {
            if !out0.is_empty() {
                self.shapes.insert(out0, s);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcasting() {
        let b = broadcast(
            &[Dim::Sym("b".into()), Dim::Known(1), Dim::Known(4)],
            &[Dim::Known(3), Dim::Known(4)],
        );
        assert_eq!(b, vec![Dim::Sym("b".into()), Dim::Known(3), Dim::Known(4)]);
    }
}
