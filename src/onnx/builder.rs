//! A small builder for ONNX graphs: unique value names, typed attributes,
//! initializers and constants.

use std::collections::HashSet;

use super::proto::{
    attribute_type, data_type, tensor_shape_proto, type_proto, AttributeProto, GraphProto,
    ModelProto, NodeProto, OperatorSetIdProto, TensorProto, TensorShapeProto, TypeProto,
    ValueInfoProto,
};

/// ONNX IR version written by rewardkit (ONNX 1.14+; loads in any ORT >= 1.15).
pub const IR_VERSION: i64 = 9;
/// ONNX Runtime's contrib-op domain (fused attention, skip-layer-norm, ...).
pub const MS_DOMAIN: &str = "com.microsoft";

/// rewardkit's own CPU kernels (`crate::runtime` registers them with CPU
/// training sessions; never in a bundle's graph).
pub const RK_DOMAIN: &str = "ai.rewardkit";

/// Default-domain opset written by rewardkit (LayerNormalization needs 17).
pub const OPSET: i64 = 17;

/// One dimension of a graph input or output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dim {
    /// A fixed size.
    Fixed(i64),
    /// A symbolic size such as `batch` or `sequence`.
    Named(String),
}

impl From<i64> for Dim {
    fn from(v: i64) -> Self {
        Dim::Fixed(v)
    }
}

impl From<&str> for Dim {
    fn from(v: &str) -> Self {
        Dim::Named(v.to_string())
    }
}

/// A typed node attribute.
#[derive(Debug, Clone)]
pub enum Attr {
    Int(i64),
    Float(f32),
    Ints(Vec<i64>),
    Floats(Vec<f32>),
    String(String),
    Tensor(Box<TensorProto>),
}

impl Attr {
    fn into_proto(self, name: &str) -> AttributeProto {
        let mut a = AttributeProto {
            name: Some(name.to_string()),
            ..Default::default()
        };
        match self {
            Attr::Int(v) => {
                a.r#type = Some(attribute_type::INT);
                a.i = Some(v);
            }
            Attr::Float(v) => {
                a.r#type = Some(attribute_type::FLOAT);
                a.f = Some(v);
            }
            Attr::Ints(v) => {
                a.r#type = Some(attribute_type::INTS);
                a.ints = v;
            }
            Attr::Floats(v) => {
                a.r#type = Some(attribute_type::FLOATS);
                a.floats = v;
            }
            Attr::String(v) => {
                a.r#type = Some(attribute_type::STRING);
                a.s = Some(v.into_bytes());
            }
            Attr::Tensor(t) => {
                a.r#type = Some(attribute_type::TENSOR);
                a.t = Some(*t);
            }
        }
        a
    }
}

/// Make a `TensorProto` holding `f32` values in `raw_data`.
pub fn tensor_f32(name: &str, dims: &[i64], values: &[f32]) -> TensorProto {
    let mut raw = Vec::with_capacity(values.len() * 4);
    for v in values {
        raw.extend_from_slice(&v.to_le_bytes());
    }
    tensor_raw(name, data_type::FLOAT, dims, raw)
}

/// A `TensorProto` of `values` stored as element type `dt`: float16 or
/// bfloat16 (rounded to nearest), float32 otherwise.
pub fn tensor_as(name: &str, dims: &[i64], values: &[f32], dt: i32) -> TensorProto {
    let raw: Vec<u8> = match dt {
        data_type::FLOAT16 => values
            .iter()
            .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
            .collect(),
        data_type::BFLOAT16 => values
            .iter()
            .flat_map(|v| half::bf16::from_f32(*v).to_le_bytes())
            .collect(),
        _ => return tensor_f32(name, dims, values),
    };
    tensor_raw(name, dt, dims, raw)
}

/// Make a `TensorProto` holding `i64` values in `raw_data`.
pub fn tensor_i64(name: &str, dims: &[i64], values: &[i64]) -> TensorProto {
    let mut raw = Vec::with_capacity(values.len() * 8);
    for v in values {
        raw.extend_from_slice(&v.to_le_bytes());
    }
    tensor_raw(name, data_type::INT64, dims, raw)
}

/// Make a `TensorProto` from little-endian bytes.
pub fn tensor_raw(name: &str, dt: i32, dims: &[i64], raw: Vec<u8>) -> TensorProto {
    TensorProto {
        name: Some(name.to_string()),
        dims: dims.to_vec(),
        data_type: Some(dt),
        raw_data: Some(raw),
        ..Default::default()
    }
}

fn value_info(name: &str, elem_type: i32, dims: &[Dim]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| tensor_shape_proto::Dimension {
            value: Some(match d {
                Dim::Fixed(v) => tensor_shape_proto::dimension::Value::DimValue(*v),
                Dim::Named(s) => tensor_shape_proto::dimension::Value::DimParam(s.clone()),
            }),
            denotation: None,
        })
        .collect();
    ValueInfoProto {
        name: Some(name.to_string()),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(elem_type),
                shape: Some(TensorShapeProto { dim }),
            })),
            denotation: None,
        }),
        doc_string: None,
    }
}

/// Builds one ONNX graph. Value names are made unique on request; node names
/// are generated from the op type.
#[derive(Debug, Default)]
pub struct GraphBuilder {
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
    inputs: Vec<ValueInfoProto>,
    outputs: Vec<ValueInfoProto>,
    names: HashSet<String>,
    counter: usize,
    /// Prefix applied to generated names (a scope such as `layer3/attn`).
    scope: String,
}

impl GraphBuilder {
    /// An empty graph.
    pub fn new() -> Self {
        Self::default()
    }

    /// Continue building on an existing graph: its values, initializers,
    /// inputs and outputs are kept and their names reserved.
    pub fn from_graph(graph: GraphProto) -> Self {
        let mut names = HashSet::new();
        for n in &graph.node {
            names.extend(n.input.iter().cloned());
            names.extend(n.output.iter().cloned());
        }
        names.extend(graph.initializer.iter().map(|t| t.name().to_string()));
        names.extend(graph.input.iter().map(|v| v.name().to_string()));
        names.extend(graph.output.iter().map(|v| v.name().to_string()));
        GraphBuilder {
            nodes: graph.node,
            initializers: graph.initializer,
            inputs: graph.input,
            outputs: graph.output,
            names,
            counter: 0,
            scope: String::new(),
        }
    }

    /// A copy of the graph so far for analysis (large initializers are
    /// copied without their data: only names, types and dims).
    pub fn snapshot(&self) -> GraphProto {
        let initializer = self
            .initializers
            .iter()
            .map(|t| {
                if t.raw_data.as_ref().is_some_and(|r| r.len() > 1024) {
                    TensorProto {
                        name: t.name.clone(),
                        dims: t.dims.clone(),
                        data_type: t.data_type,
                        ..Default::default()
                    }
                } else {
                    t.clone()
                }
            })
            .collect();
        GraphProto {
            node: self.nodes.clone(),
            name: None,
            initializer,
            doc_string: None,
            input: self.inputs.clone(),
            output: self.outputs.clone(),
            value_info: vec![],
        }
    }

    /// A full copy of the graph so far, initializers included.
    pub fn snapshot_full(&self) -> GraphProto {
        GraphProto {
            node: self.nodes.clone(),
            name: Some("graph".into()),
            initializer: self.initializers.clone(),
            doc_string: None,
            input: self.inputs.clone(),
            output: self.outputs.clone(),
            value_info: vec![],
        }
    }

    /// Nodes added so far.
    pub fn nodes(&self) -> &[NodeProto] {
        &self.nodes
    }

    /// Mutable access to the nodes (to add optional outputs to forward nodes).
    pub fn nodes_mut(&mut self) -> &mut Vec<NodeProto> {
        &mut self.nodes
    }

    /// Take an initializer out of the graph (to make it a graph input instead).
    pub fn take_initializer(&mut self, name: &str) -> Option<TensorProto> {
        let pos = self.initializers.iter().position(|t| t.name() == name)?;
        Some(self.initializers.remove(pos))
    }

    /// Initializers so far.
    pub fn initializers(&self) -> &[TensorProto] {
        &self.initializers
    }

    /// Declare an existing value (for example a former initializer) as a graph input.
    pub fn declare_input(&mut self, name: &str, elem_type: i32, dims: &[Dim]) {
        self.names.insert(name.to_string());
        self.inputs.push(value_info(name, elem_type, dims));
    }

    /// Declare an existing value as a graph output under its own name.
    pub fn declare_output(&mut self, name: &str, elem_type: i32, dims: &[Dim]) {
        self.outputs.push(value_info(name, elem_type, dims));
    }

    /// Remove every declared graph output.
    pub fn clear_outputs(&mut self) {
        self.outputs.clear();
    }

    /// Set the scope used to prefix generated names; returns the previous one.
    pub fn set_scope(&mut self, scope: &str) -> String {
        std::mem::replace(&mut self.scope, scope.to_string())
    }

    /// A name not used before in this graph, derived from `base`.
    pub fn unique(&mut self, base: &str) -> String {
        let base = if self.scope.is_empty() {
            base.to_string()
        } else {
            format!("{}/{}", self.scope, base)
        };
        if self.names.insert(base.clone()) {
            return base;
        }
        loop {
            self.counter += 1;
            let candidate = format!("{}_{}", base, self.counter);
            if self.names.insert(candidate.clone()) {
                return candidate;
            }
        }
    }

    /// Reserve an exact name (graph inputs, outputs, checkpoint tensor names).
    /// Panics in debug builds if the name is taken: that is a builder bug.
    fn claim(&mut self, name: &str) -> String {
        let fresh = self.names.insert(name.to_string());
        debug_assert!(fresh, "value name {name} claimed twice");
        name.to_string()
    }

    /// Declare a graph input with an exact name.
    pub fn input(&mut self, name: &str, elem_type: i32, dims: &[Dim]) -> String {
        let name = self.claim(name);
        self.inputs.push(value_info(&name, elem_type, dims));
        name
    }

    /// Add an initializer with an exact name (weights keep their checkpoint names).
    pub fn initializer(&mut self, mut tensor: TensorProto) -> String {
        let name = self.claim(tensor.name());
        tensor.name = Some(name.clone());
        self.initializers.push(tensor);
        name
    }

    /// Add a constant tensor as an initializer with a name generated from `base`.
    pub fn const_tensor(&mut self, base: &str, mut tensor: TensorProto) -> String {
        let name = self.unique(base);
        tensor.name = Some(name.clone());
        self.initializers.push(tensor);
        name
    }

    /// Add a small constant as an initializer with a generated name.
    pub fn const_i64(&mut self, base: &str, dims: &[i64], values: &[i64]) -> String {
        let name = self.unique(base);
        self.initializers.push(tensor_i64(&name, dims, values));
        name
    }

    /// A scalar `f32` constant.
    pub fn const_f32(&mut self, base: &str, value: f32) -> String {
        let name = self.unique(base);
        self.initializers.push(tensor_f32(&name, &[], &[value]));
        name
    }

    /// Add a node with one output, whose name is generated from `out_base`.
    pub fn op(&mut self, op_type: &str, inputs: &[&str], attrs: Vec<(&str, Attr)>) -> String {
        let base = op_type.to_ascii_lowercase();
        let out = self.unique(&base);
        self.node(op_type, inputs, &[&out], attrs);
        out
    }

    /// Add a node of ONNX Runtime's `com.microsoft` contrib domain with one
    /// output. [`model`] declares the domain's opset when a graph uses it.
    pub fn op_ms(&mut self, op_type: &str, inputs: &[&str], attrs: Vec<(&str, Attr)>) -> String {
        let out = self.op(op_type, inputs, attrs);
        if let Some(n) = self.nodes.last_mut() {
            n.domain = Some(MS_DOMAIN.to_string());
        }
        out
    }

    /// Put the last node added into `domain` ([`model`] declares the
    /// domain's opset).
    pub fn set_last_domain(&mut self, domain: &str) {
        if let Some(n) = self.nodes.last_mut() {
            n.domain = Some(domain.to_string());
        }
    }

    /// Add a node writing exactly the given output names.
    pub fn node(
        &mut self,
        op_type: &str,
        inputs: &[&str],
        outputs: &[&str],
        attrs: Vec<(&str, Attr)>,
    ) {
        for o in outputs {
            self.names.insert(o.to_string());
        }
        let name = format!("{}#{}", op_type, self.nodes.len());
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.iter().map(|s| s.to_string()).collect(),
            name: Some(name),
            op_type: Some(op_type.to_string()),
            domain: None,
            attribute: attrs.into_iter().map(|(n, a)| a.into_proto(n)).collect(),
            doc_string: None,
        });
    }

    /// Add a node with one output of the exact name `out` and declare that
    /// output a graph output (no `Identity` copy, unlike [`output`](Self::output)).
    pub fn op_output(
        &mut self,
        op_type: &str,
        inputs: &[&str],
        attrs: Vec<(&str, Attr)>,
        out: &str,
        elem_type: i32,
        dims: &[Dim],
    ) -> String {
        let name = self.claim(out);
        self.node(op_type, inputs, &[&name], attrs);
        self.outputs.push(value_info(&name, elem_type, dims));
        name
    }

    /// Add a node whose outputs are graph outputs of the exact names
    /// `outputs`, all of one type and shape.
    pub fn node_outputs(
        &mut self,
        op_type: &str,
        inputs: &[&str],
        outputs: &[&str],
        attrs: Vec<(&str, Attr)>,
        elem_type: i32,
        dims: &[Dim],
    ) {
        for o in outputs {
            let name = self.claim(o);
            self.outputs.push(value_info(&name, elem_type, dims));
        }
        self.node(op_type, inputs, outputs, attrs);
    }

    /// Rename value `value` to the exact graph-output name `name` and declare it.
    pub fn output(&mut self, value: &str, name: &str, elem_type: i32, dims: &[Dim]) {
        let name = self.claim(name);
        self.node("Identity", &[value], &[&name], vec![]);
        self.outputs.push(value_info(&name, elem_type, dims));
    }

    /// Finish the graph.
    pub fn build(self, name: &str) -> GraphProto {
        GraphProto {
            node: self.nodes,
            name: Some(name.to_string()),
            initializer: self.initializers,
            doc_string: None,
            input: self.inputs,
            output: self.outputs,
            value_info: vec![],
        }
    }
}

/// Whether a node of `graph` belongs to ONNX Runtime's contrib domain.
pub fn uses_contrib_ops(graph: &GraphProto) -> bool {
    graph.node.iter().any(|n| n.domain() == MS_DOMAIN)
}

/// Wrap a graph in a model with rewardkit's IR version and opset, plus the
/// `com.microsoft` opset when a node of the graph uses it.
pub fn model(graph: GraphProto, doc: &str) -> ModelProto {
    let mut opset_import = vec![OperatorSetIdProto {
        domain: Some(String::new()),
        version: Some(OPSET),
    }];
    for domain in [MS_DOMAIN, RK_DOMAIN] {
        if graph.node.iter().any(|n| n.domain() == domain) {
            opset_import.push(OperatorSetIdProto {
                domain: Some(domain.to_string()),
                version: Some(1),
            });
        }
    }
    ModelProto {
        ir_version: Some(IR_VERSION),
        opset_import,
        producer_name: Some("rewardkit".to_string()),
        producer_version: Some(env!("CARGO_PKG_VERSION").to_string()),
        domain: None,
        model_version: Some(1),
        doc_string: Some(doc.to_string()),
        graph: Some(graph),
        metadata_props: vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_names_do_not_collide() {
        let mut g = GraphBuilder::new();
        let a = g.unique("x");
        let b = g.unique("x");
        let c = g.unique("x");
        assert_eq!(a, "x");
        assert_ne!(a, b);
        assert_ne!(b, c);
        g.set_scope("layer0");
        assert_eq!(g.unique("x"), "layer0/x");
    }

    #[test]
    fn zero_valued_attributes_survive() {
        use prost::Message;
        let mut g = GraphBuilder::new();
        let x = g.input("x", data_type::FLOAT, &["n".into(), 3.into()]);
        let y = g.op("Softmax", &[&x], vec![("axis", Attr::Int(0))]);
        g.output(&y, "y", data_type::FLOAT, &["n".into(), 3.into()]);
        let bytes = model(g.build("t"), "").encode_to_vec();
        let back = ModelProto::decode(bytes.as_slice()).expect("decode");
        let node = &back.graph.as_ref().expect("graph").node[0];
        assert_eq!(node.attribute[0].i, Some(0));
        assert_eq!(node.attribute[0].r#type, Some(attribute_type::INT));
    }
}
