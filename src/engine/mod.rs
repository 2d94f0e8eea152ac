//! Scoring: the [`Scorer`] opens a bundle and scores (prompt, response) pairs.

mod scorer;

pub use crate::runtime::Device;
pub use scorer::{Scorer, ScorerOptions, DEFAULT_MAX_TOKENS, DEFAULT_MAX_TOKENS_CUDA};
