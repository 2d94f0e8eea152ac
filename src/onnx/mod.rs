//! ONNX protobuf messages, model file I/O and a graph builder.

pub mod builder;
pub mod io;
pub mod proto;
pub mod shape;

pub use builder::{Attr, Dim, GraphBuilder};
pub use proto::{data_type, GraphProto, ModelProto, TensorProto};
