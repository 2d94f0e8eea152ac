//! The compute runtime: the only module that imports `ort`.
//!
//! It finds and loads the ONNX Runtime shared library once per process, and
//! runs models through a small pool of sessions.

mod denormal;
mod kernels;
mod library;
mod session;
mod train;

pub use library::{environment, ort_library_candidates, ORT_LIB_ENV, ORT_VERSION};
pub use session::{Device, ModelRunner, RunnerOptions, TensorData, TensorInput};
pub use train::{NamedValues, ParamInit, ParamView, StateView, TrainingEngine, TrainingSpec};
