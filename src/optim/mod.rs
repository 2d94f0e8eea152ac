//! Optimizers as ONNX graphs, and learning-rate schedules.
//!
//! The optimizer graph takes every parameter, its gradient and its state,
//! plus per-step scalars, and returns the updated parameters and state. It
//! clips gradients by their global norm first when asked.

mod accumulate;
mod adamw;
mod schedule;

pub use accumulate::{build_accumulate_graph, ACC_KEEP};
pub use adamw::{
    build_optimizer_graph, piece_name, pieces, OptimizerGraph, OptimizerKind, ParamSpec, CPU_PIECE,
    FUSED_ADAMW, GRAD_NORM, GRAD_SCALE, INV_SQRT_BC2, LR, STEP_SIZE,
};
pub use schedule::{Schedule, ScheduleKind};
