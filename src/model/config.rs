//! Backbone configuration (`config.json` of a Hugging Face checkpoint) and the
//! reward-model settings rewardkit adds on top of it.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// How token states are pooled into one vector per sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Pooling {
    /// The state of the first token (`[CLS]`).
    Cls,
    /// The mean over non-padding tokens (sentence-transformers' pooling).
    #[default]
    Mean,
    /// The state of the last non-padding token of each row (decoder models).
    Last,
    /// BERT's pooler: `tanh(dense([CLS]))`, as `BertForSequenceClassification`
    /// feeds its classifier. Needs the checkpoint's `pooler.dense` weights.
    Pooler,
}

impl std::str::FromStr for Pooling {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "cls" => Ok(Pooling::Cls),
            "mean" => Ok(Pooling::Mean),
            "last" => Ok(Pooling::Last),
            "pooler" => Ok(Pooling::Pooler),
            _ => Err(Error::InvalidArgument(format!(
                "unknown pooling {s:?} (expected cls, mean, last or pooler)"
            ))),
        }
    }
}

/// Hidden activation of the feed-forward blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Activation {
    /// Exact GELU, `x·Φ(x)` with the error function (HF `gelu`).
    #[serde(rename = "gelu")]
    Gelu,
    /// The tanh approximation of GELU (HF `gelu_new`, `gelu_pytorch_tanh`).
    #[serde(rename = "gelu_new", alias = "gelu_pytorch_tanh", alias = "gelu_fast")]
    GeluTanh,
    /// ReLU.
    #[serde(rename = "relu")]
    Relu,
}

/// The fields of a BERT-family `config.json` that the graph depends on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BertConfig {
    #[serde(default = "default_model_type")]
    pub model_type: String,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    #[serde(default = "default_act")]
    pub hidden_act: Activation,
    #[serde(default = "default_max_pos")]
    pub max_position_embeddings: usize,
    #[serde(default = "default_type_vocab")]
    pub type_vocab_size: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    #[serde(default)]
    pub pad_token_id: i64,
    #[serde(default = "default_init_range")]
    pub initializer_range: f64,
    #[serde(default = "default_pos_type")]
    pub position_embedding_type: String,
}

fn default_model_type() -> String {
    "bert".into()
}
fn default_act() -> Activation {
    Activation::Gelu
}
fn default_max_pos() -> usize {
    512
}
fn default_type_vocab() -> usize {
    2
}
fn default_eps() -> f64 {
    1e-12
}
fn default_init_range() -> f64 {
    0.02
}
fn default_pos_type() -> String {
    "absolute".into()
}

/// Model types whose checkpoints follow BERT's layout and math.
const BERT_FAMILY: &[&str] = &["bert"];

impl BertConfig {
    /// Read and validate `config.json`.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let value: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| Error::backbone(path, format!("config.json is not valid JSON: {e}")))?;
        Self::from_json(&value, path)
    }

    /// Parse and validate a config from JSON; `path` names it in errors.
    pub fn from_json(value: &serde_json::Value, path: &Path) -> Result<Self> {
        let model_type = value
            .get("model_type")
            .and_then(|v| v.as_str())
            .unwrap_or("bert");
        if !BERT_FAMILY.contains(&model_type) {
            return Err(Error::backbone(
                path,
                format!(
                    "unsupported model_type {model_type:?} (supported: {})",
                    BERT_FAMILY.join(", ")
                ),
            ));
        }
        let cfg: BertConfig = serde_json::from_value(value.clone())
            .map_err(|e| Error::backbone(path, format!("config.json: {e}")))?;
        cfg.validate(path)?;
        Ok(cfg)
    }

    fn validate(&self, path: &Path) -> Result<()> {
        let bad = |msg: String| Err(Error::backbone(path, msg));
        if self.hidden_size == 0 || self.num_attention_heads == 0 || self.num_hidden_layers == 0 {
            return bad(
                "hidden_size, num_attention_heads and num_hidden_layers must be positive".into(),
            );
        }
        if !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return bad(format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            ));
        }
        if self.vocab_size == 0 || self.intermediate_size == 0 || self.max_position_embeddings == 0
        {
            return bad(
                "vocab_size, intermediate_size and max_position_embeddings must be positive".into(),
            );
        }
        if self.position_embedding_type != "absolute" {
            return bad(format!(
                "position_embedding_type {:?} is not supported (only \"absolute\")",
                self.position_embedding_type
            ));
        }
        Ok(())
    }

    /// Size of one attention head.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_unknown_model_type_by_name() {
        let v = serde_json::json!({"model_type": "llama", "vocab_size": 10});
        let err = BertConfig::from_json(&v, Path::new("x/config.json")).unwrap_err();
        assert!(err.to_string().contains("llama"), "{err}");
    }

    #[test]
    fn rejects_indivisible_heads() {
        let v = serde_json::json!({
            "model_type": "bert", "vocab_size": 10, "hidden_size": 10,
            "num_hidden_layers": 1, "num_attention_heads": 3, "intermediate_size": 8
        });
        let err = BertConfig::from_json(&v, Path::new("c.json")).unwrap_err();
        assert!(err.to_string().contains("multiple"), "{err}");
    }

    #[test]
    fn parses_activation_names() {
        for (name, act) in [
            ("gelu", Activation::Gelu),
            ("gelu_new", Activation::GeluTanh),
            ("relu", Activation::Relu),
        ] {
            let v = serde_json::json!({
                "vocab_size": 10, "hidden_size": 4, "num_hidden_layers": 1,
                "num_attention_heads": 2, "intermediate_size": 8, "hidden_act": name
            });
            assert_eq!(
                BertConfig::from_json(&v, Path::new("c"))
                    .expect("parse")
                    .hidden_act,
                act
            );
        }
    }
}
