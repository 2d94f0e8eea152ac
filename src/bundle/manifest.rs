use serde::{Deserialize, Serialize};

use crate::model::Pooling;

/// The `format` value of every rewardkit manifest.
pub const FORMAT_NAME: &str = "rewardkit-bundle";
/// The newest manifest version this build reads. Writers record the lowest
/// version that describes the bundle ([`Manifest::required_version`]), so
/// encoder bundles stay readable by builds that know only version 1.
pub const FORMAT_VERSION: u64 = 2;

/// `rewardkit.json`: everything needed to use `model.onnx` correctly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`FORMAT_NAME`].
    pub format: String,
    /// The manifest version; readers refuse newer versions than they know.
    pub format_version: u64,
    pub architecture: Architecture,
    /// Graph inputs, in order (`input_ids`, `attention_mask`, maybe `token_type_ids`).
    pub inputs: Vec<String>,
    /// Names of the columns of the `scores` output.
    pub outputs: Vec<String>,
    /// Which output is the reward (when `reward_weights` is absent).
    pub reward_output: String,
    /// Optional weights, one per output, that combine the (normalised)
    /// outputs into the reward: `reward = Σ_j w_j · s_j`. When present they
    /// take the place of `reward_output`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reward_weights: Option<Vec<f32>>,
    pub pooling: Pooling,
    /// Longest encoded pair the model accepts, special tokens included.
    pub max_length: usize,
    /// How a (prompt, response) pair becomes model input.
    pub text: TextFormat,
    /// How the weights were quantized after training (`int8-dynamic`), if
    /// they were; such bundles score but do not train or merge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantization: Option<String>,
    /// Optional affine normalisation applied to every output: `(s - mean) / std`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub normalization: Option<Normalization>,
    #[serde(default)]
    pub provenance: Provenance,
    /// Size and sha256 of each file of the bundle, checked on open. Written
    /// by rewardkit; bundles without it (older ones, hand-made ones) are
    /// opened without the check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<std::collections::BTreeMap<String, super::integrity::FileRecord>>,
}

/// The model family and its configuration (the backbone's `config.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Architecture {
    /// `bert` for BERT-family encoders; the config's `model_type` (`llama`,
    /// `mistral`, `qwen2`) for decoders.
    pub family: String,
    pub config: serde_json::Value,
}

/// How text is presented to the model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TextFormat {
    /// The tokenizer's sentence-pair encoding: prompt as the first segment,
    /// response as the second (`[CLS] prompt [SEP] response [SEP]` for BERT).
    Pair,
    /// One sequence for decoders without a chat template: the prompt's turns
    /// as `User: …` / `Assistant: …` blocks, then `Assistant: response`, with
    /// the tokenizer's own special tokens. Since format version 2.
    Plain,
    /// One sequence rendered by the model's chat template, the response as
    /// the last assistant turn. Since format version 2.
    Chat {
        chat_template: crate::text::ChatTemplateSpec,
    },
}

impl TextFormat {
    /// The tokenizer mode that presents pairs this way (compiling the chat
    /// template; its errors name the bundle).
    pub fn to_mode(&self) -> crate::error::Result<crate::text::TextMode> {
        use crate::text::{ChatTemplate, TextMode};
        Ok(match self {
            TextFormat::Pair => TextMode::Pair,
            TextFormat::Plain => TextMode::Plain,
            TextFormat::Chat { chat_template } => {
                TextMode::Chat(Box::new(ChatTemplate::new(chat_template.clone())?))
            }
        })
    }
}

/// Per-output affine normalisation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Normalization {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

/// Where a bundle came from.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    #[serde(default)]
    pub created_by: String,
    /// `init` for an untrained bundle; the training recipe otherwise.
    #[serde(default)]
    pub recipe: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backbone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_digest: Option<String>,
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub metrics: serde_json::Map<String, serde_json::Value>,
}

impl Manifest {
    /// Parse and validate manifest text. Errors say what is wrong and where.
    pub fn parse(text: &str) -> Result<Self, String> {
        // Check the format and version before the rest, so a newer bundle
        // gets a version error rather than a confusing field error.
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("not valid JSON ({e})"))?;
        let format = value.get("format").and_then(|v| v.as_str());
        if format != Some(FORMAT_NAME) {
            return Err(format!(
                "\"format\" is {:?}, expected {FORMAT_NAME:?}",
                value.get("format")
            ));
        }
        match value.get("format_version").and_then(|v| v.as_u64()) {
            None => return Err("\"format_version\" is missing or not a whole number".into()),
            Some(v) if v > FORMAT_VERSION => {
                return Err(format!(
                    "format_version {v} is newer than this build of rewardkit reads ({FORMAT_VERSION}); upgrade rewardkit"
                ))
            }
            Some(0) => return Err("format_version 0 is not valid".into()),
            Some(_) => {}
        }
        let m: Manifest = serde_json::from_value(value).map_err(|e| e.to_string())?;
        m.validate()?;
        Ok(m)
    }

    /// Check the manifest's internal consistency.
    pub fn validate(&self) -> Result<(), String> {
        if self.outputs.is_empty() {
            return Err("\"outputs\" is empty".into());
        }
        for (i, o) in self.outputs.iter().enumerate() {
            if o.is_empty() || self.outputs[..i].contains(o) {
                return Err(format!("output name {o:?} is empty or repeated"));
            }
        }
        if !self.outputs.contains(&self.reward_output) {
            return Err(format!(
                "reward_output {:?} is not one of the outputs {:?}",
                self.reward_output, self.outputs
            ));
        }
        if let Some(w) = &self.reward_weights {
            if w.len() != self.outputs.len() {
                return Err(format!(
                    "reward_weights has {} weights for {} outputs",
                    w.len(),
                    self.outputs.len()
                ));
            }
            if w.iter().any(|v| !v.is_finite()) {
                return Err("reward_weights must all be finite".into());
            }
        }
        if self.max_length < 4 {
            return Err(format!("max_length {} is too small", self.max_length));
        }
        if self.inputs.is_empty() {
            return Err("\"inputs\" is empty".into());
        }
        if let Some(n) = &self.normalization {
            if n.mean.len() != self.outputs.len() || n.std.len() != self.outputs.len() {
                return Err(format!(
                    "normalization has {} means and {} stds for {} outputs",
                    n.mean.len(),
                    n.std.len(),
                    self.outputs.len()
                ));
            }
            if n.std.iter().any(|s| !s.is_finite() || *s <= 0.0)
                || n.mean.iter().any(|m| !m.is_finite())
            {
                return Err("normalization needs finite means and positive finite stds".into());
            }
        }
        Ok(())
    }

    /// The lowest format version that describes this manifest: 2 for
    /// decoder models and single-sequence text formats, 1 otherwise.
    pub fn required_version(&self) -> u64 {
        let v2 = self.architecture.family != "bert"
            || !matches!(self.text, TextFormat::Pair)
            || matches!(self.pooling, Pooling::Last | Pooling::Pooler);
        if v2 {
            2
        } else {
            1
        }
    }

    /// Index of the reward output.
    pub fn reward_index(&self) -> usize {
        self.outputs
            .iter()
            .position(|o| *o == self.reward_output)
            .unwrap_or(0)
    }

    /// Pretty JSON text of the manifest.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|_| "{}".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        Manifest {
            format: FORMAT_NAME.into(),
            format_version: FORMAT_VERSION,
            architecture: Architecture {
                family: "bert".into(),
                config: serde_json::json!({}),
            },
            inputs: vec!["input_ids".into(), "attention_mask".into()],
            outputs: vec!["reward".into()],
            reward_output: "reward".into(),
            reward_weights: None,
            pooling: Pooling::Mean,
            max_length: 128,
            text: TextFormat::Pair,
            normalization: None,
            quantization: None,
            provenance: Provenance::default(),
            files: None,
        }
    }

    #[test]
    fn round_trips() {
        let m = sample();
        assert_eq!(Manifest::parse(&m.to_json()).expect("parse"), m);
    }

    #[test]
    fn rejects_bad_manifests_with_reasons() {
        let mut m = sample();
        m.reward_output = "helpfulness".into();
        assert!(Manifest::parse(&m.to_json())
            .unwrap_err()
            .contains("reward_output"));
        let mut m = sample();
        m.format_version = 99;
        assert!(Manifest::parse(&m.to_json()).unwrap_err().contains("newer"));
        let mut m = sample();
        m.outputs = vec!["a".into(), "a".into()];
        m.reward_output = "a".into();
        assert!(Manifest::parse(&m.to_json())
            .unwrap_err()
            .contains("repeated"));
        assert!(Manifest::parse("{\"format\": ")
            .unwrap_err()
            .contains("JSON"));
        assert!(Manifest::parse("{\"format\": \"other\"}")
            .unwrap_err()
            .contains("format"));
        let mut m = sample();
        m.normalization = Some(Normalization {
            mean: vec![0.0],
            std: vec![0.0],
        });
        assert!(Manifest::parse(&m.to_json()).unwrap_err().contains("std"));
    }
}
