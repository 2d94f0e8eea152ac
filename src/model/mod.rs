//! Model architectures, configuration, weight loading and reward heads.

pub mod backbone;
pub mod bert;
pub mod config;
pub mod decoder;
pub mod head;
pub mod init;
pub mod weights;

pub use backbone::Backbone;
pub use config::{Activation, BertConfig, Pooling};
pub use decoder::{
    build_decoder_reward_model_graph, DecoderBuildOptions, DecoderConfig, Precision, RopeScaling,
};
pub use head::RewardHead;
pub use weights::{Weight, Weights};
