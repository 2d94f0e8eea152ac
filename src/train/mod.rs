//! Training: recipes, data, graphs, the training loop and checkpoints.

pub mod checkpoint;
pub mod convert;
pub mod data;
pub mod graphs;
pub mod recipe;
pub mod synth;
mod trainer;

pub use data::{read_pairs, read_ratings, BadLines, DataSummary, Pair, Rating};
pub use recipe::{LossKind, Recipe};
pub use trainer::{
    load_examples, Control, EvalMetrics, Examples, Init, StepReport, TrainOutcome, Trainer,
};
