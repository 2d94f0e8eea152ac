//! One type for every supported backbone: BERT-family encoders and
//! Llama/Mistral/Qwen2 decoders, chosen by the config's `model_type`.

use std::path::Path;

use crate::error::{Error, Result};
use crate::onnx::ModelProto;

use super::bert::{self, BuildOptions, ATTENTION_MASK, INPUT_IDS, TOKEN_TYPE_IDS};
use super::config::{BertConfig, Pooling};
use super::decoder::{
    build_decoder_reward_model_graph, DecoderBuildOptions, DecoderConfig, Precision,
    SUPPORTED_MODEL_TYPES,
};
use super::head::RewardHead;
use super::weights::Weights;

/// A parsed backbone configuration.
#[derive(Debug, Clone, PartialEq)]
pub enum Backbone {
    Bert(BertConfig),
    Decoder(DecoderConfig),
}

impl Backbone {
    /// Parse `config.json` (its JSON value); `path` names it in errors.
    pub fn from_json(value: &serde_json::Value, path: &Path) -> Result<Self> {
        let model_type = value
            .get("model_type")
            .and_then(|v| v.as_str())
            .unwrap_or("bert");
        if model_type == "bert" {
            Ok(Backbone::Bert(BertConfig::from_json(value, path)?))
        } else if SUPPORTED_MODEL_TYPES.contains(&model_type) {
            Ok(Backbone::Decoder(DecoderConfig::from_json(value, path)?))
        } else {
            Err(Error::backbone(
                path,
                format!(
                    "unsupported model_type {model_type:?} (supported: bert, {})",
                    SUPPORTED_MODEL_TYPES.join(", ")
                ),
            ))
        }
    }

    /// Read and parse `config.json`.
    pub fn from_file(path: &Path) -> Result<Self> {
        Self::from_json(&read_json(path)?, path)
    }

    /// The manifest's architecture family: `bert`, or the decoder's `model_type`.
    pub fn family(&self) -> &str {
        match self {
            Backbone::Bert(_) => "bert",
            Backbone::Decoder(c) => &c.model_type,
        }
    }

    pub fn is_decoder(&self) -> bool {
        matches!(self, Backbone::Decoder(_))
    }

    pub fn hidden_size(&self) -> usize {
        match self {
            Backbone::Bert(c) => c.hidden_size,
            Backbone::Decoder(c) => c.hidden_size,
        }
    }

    pub fn max_position_embeddings(&self) -> usize {
        match self {
            Backbone::Bert(c) => c.max_position_embeddings,
            Backbone::Decoder(c) => c.max_position_embeddings,
        }
    }

    /// The pooling a fresh reward head reads: mean for encoders, the last
    /// real token for decoders.
    pub fn default_pooling(&self) -> Pooling {
        match self {
            Backbone::Bert(_) => Pooling::Mean,
            Backbone::Decoder(_) => Pooling::Last,
        }
    }

    /// Graph inputs, in order.
    pub fn inputs(&self) -> Vec<String> {
        let mut v = vec![INPUT_IDS.to_string(), ATTENTION_MASK.to_string()];
        if let Backbone::Bert(c) = self {
            if c.type_vocab_size > 0 {
                v.push(TOKEN_TYPE_IDS.to_string());
            }
        }
        v
    }

    /// Whether `name` is a token-embedding table (frozen by `freeze.embeddings`).
    pub fn is_embedding(&self, name: &str) -> bool {
        match self {
            Backbone::Bert(_) => name.starts_with("embeddings.") && name.contains("_embeddings"),
            Backbone::Decoder(_) => name.ends_with("embed_tokens.weight"),
        }
    }

    /// Build the reward-model graph. `max_length` bounds the sequences the
    /// graph takes (decoders size their rotary tables by it). Returns the
    /// model and the trainable initializers' names, backbone then head.
    pub fn build(
        &self,
        weights: &mut Weights,
        head: &RewardHead,
        pooling: Pooling,
        max_length: Option<usize>,
    ) -> Result<(ModelProto, Vec<String>)> {
        self.build_with(weights, head, pooling, max_length, Precision::F32, false)
    }

    /// Build the graph again from the weights of `model`, a graph this
    /// backbone built: with ONNX Runtime's fused ops (`fused`, BERT-family
    /// only; decoders keep standard ops) or standard ops only. `path` names
    /// the model in errors. `model` is consumed, and freed before the new
    /// graph is built, so the weights are held twice at most, not three times.
    pub fn rebuild(
        &self,
        model: ModelProto,
        path: &Path,
        pooling: Pooling,
        max_length: Option<usize>,
        fused: bool,
    ) -> Result<ModelProto> {
        let (mut weights, head) = Weights::from_model(&model, path)?;
        drop(model);
        Ok(self
            .build_with(
                &mut weights,
                &head,
                pooling,
                max_length,
                Precision::F32,
                fused,
            )?
            .0)
    }

    /// [`build`](Self::build) in a given precision (bfloat16: decoders only),
    /// with ONNX Runtime's fused ops when `fused` (BERT-family backbones;
    /// decoders are always built with standard ops).
    pub fn build_with(
        &self,
        weights: &mut Weights,
        head: &RewardHead,
        pooling: Pooling,
        max_length: Option<usize>,
        precision: Precision,
        fused: bool,
    ) -> Result<(ModelProto, Vec<String>)> {
        match self {
            Backbone::Bert(c) => bert::build_reward_model_graph(
                c,
                weights,
                head,
                BuildOptions {
                    pooling,
                    expose_pooled: false,
                    fused,
                    precision,
                },
            ),
            Backbone::Decoder(c) => {
                if pooling != Pooling::Last {
                    return Err(Error::InvalidArgument(format!(
                        "{} models pool at the last token; pooling {pooling:?} is not available",
                        c.model_type
                    )));
                }
                let mut opts = DecoderBuildOptions::default().with_precision(precision);
                if let Some(n) = max_length {
                    opts = opts.with_max_positions(n);
                }
                build_decoder_reward_model_graph(c, weights, head, opts)
            }
        }
    }
}

/// Read a JSON file; errors name it.
pub fn read_json(path: &Path) -> Result<serde_json::Value> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| Error::backbone(path, format!("not valid JSON: {e}")))
}
