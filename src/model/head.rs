//! The linear reward head on top of the pooled state.

use crate::error::{Error, Result};

use super::init::SeededRng;

/// Initializer name of the head's `[n_outputs, hidden]` weight.
pub const HEAD_WEIGHT: &str = "reward_head.weight";
/// Initializer name of the head's `[n_outputs]` bias.
pub const HEAD_BIAS: &str = "reward_head.bias";

/// A linear map from the pooled state to `n_outputs` scores.
#[derive(Debug, Clone, PartialEq)]
pub struct RewardHead {
    /// Row-major `[n_outputs, hidden]`.
    pub weight: Vec<f32>,
    /// `[n_outputs]`.
    pub bias: Vec<f32>,
    hidden: usize,
}

impl RewardHead {
    /// A fresh head: weights from N(0, std²) with a seeded generator, zero bias.
    pub fn init(n_outputs: usize, hidden: usize, std: f64, seed: u64) -> Result<Self> {
        if n_outputs == 0 {
            return Err(Error::InvalidArgument(
                "a reward head needs at least one output".into(),
            ));
        }
        let mut rng = SeededRng::new(seed);
        Ok(RewardHead {
            weight: rng.normal_vec(n_outputs * hidden, std),
            bias: vec![0.0; n_outputs],
            hidden,
        })
    }

    /// A head from given values; `weight` is row-major `[bias.len(), hidden]`.
    pub fn from_parts(weight: Vec<f32>, bias: Vec<f32>, hidden: usize) -> Result<Self> {
        if bias.is_empty() || weight.len() != bias.len() * hidden {
            return Err(Error::InvalidArgument(format!(
                "head weight has {} values, expected {} outputs x {hidden} hidden",
                weight.len(),
                bias.len()
            )));
        }
        Ok(RewardHead {
            weight,
            bias,
            hidden,
        })
    }

    pub fn n_outputs(&self) -> usize {
        self.bias.len()
    }

    pub fn hidden(&self) -> usize {
        self.hidden
    }
}
