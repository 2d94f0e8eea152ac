//! Training losses, appended to a forward graph whose output `scores` is
//! `[rows, n_outputs]`. One file per loss family.

mod pairwise;
mod regression;

pub use pairwise::{
    append_pairwise_loss, PairwiseLoss, PairwiseLossGraph, PAIR_MARGIN, PAIR_WEIGHT,
};
pub use regression::{append_regression_loss, RegressionLossGraph, TARGETS, TARGET_MASK};
