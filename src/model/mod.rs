//! Model architectures, configuration, weight loading and reward heads.

pub mod bert;
pub mod config;
pub mod head;
pub mod init;
pub mod weights;

pub use config::{Activation, BertConfig, Pooling};
pub use head::RewardHead;
pub use weights::{Weight, Weights};
