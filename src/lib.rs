//! rewardkit: embedded reward models. Train on stock ONNX Runtime, write a
//! plain ONNX graph in a self-describing bundle, and score (prompt, response)
//! pairs in-process from Rust, the command line or C.
#![warn(clippy::unwrap_used)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod autodiff;
pub mod bundle;
pub mod engine;
pub mod error;
pub mod ffi;
pub mod loss;
pub mod model;
pub mod onnx;
pub mod optim;
pub mod runtime;
pub mod testing;
pub mod text;
pub mod train;

#[doc(hidden)]
pub mod cli;

pub use bundle::{Bundle, InitOptions, Manifest, OutputPreset};
pub use engine::{Device, Scorer, ScorerOptions};
pub use error::{Error, ErrorCode, Result};
