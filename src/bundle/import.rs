//! `rewardkit import`: a Hugging Face checkpoint directory (a
//! `*ForSequenceClassification` model, or a bare backbone with a fresh
//! head) becomes a bundle.

use std::path::Path;

use super::create::write_bundle_owned;
use super::manifest::{
    Architecture, Manifest, Provenance, TextFormat, FORMAT_NAME, FORMAT_VERSION,
};
use super::{Bundle, TOKENIZER_FILE};
use crate::error::{Error, Result};
use crate::model::backbone::read_json;
use crate::model::{Backbone, Pooling, Precision, RewardHead, Weights};
use crate::text::{ChatTemplate, PairTokenizer, TextMode};

/// The longest sequence an imported decoder accepts unless told otherwise.
pub const DEFAULT_DECODER_MAX_LENGTH: usize = 4096;
/// The same for encoders.
pub const DEFAULT_ENCODER_MAX_LENGTH: usize = 512;

/// Options for [`import_hf`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ImportOptions {
    /// Replace the checkpoint's head (or add one to a bare backbone) with a
    /// fresh one with these outputs. `None`: use the checkpoint's head.
    pub outputs: Option<Vec<String>>,
    /// Which output is the reward (default: the first).
    pub reward_output: Option<String>,
    /// Longest encoded pair (default: the position limit, at most
    /// [`DEFAULT_DECODER_MAX_LENGTH`] / [`DEFAULT_ENCODER_MAX_LENGTH`]).
    pub max_length: Option<usize>,
    /// Seed of a fresh head.
    pub seed: u64,
    /// Ignore the tokenizer's chat template and use the plain format.
    pub no_chat_template: bool,
    /// Replace an existing bundle.
    pub overwrite: bool,
    /// Weights' and activations' type (fp16: decoders only).
    pub precision: Precision,
    /// Standard ONNX ops only (BERT-family models are otherwise written with
    /// ONNX Runtime's fused attention and layer-norm ops; decoders always
    /// use standard ops).
    pub portable: bool,
}

impl ImportOptions {
    pub fn with_outputs(mut self, outputs: Vec<String>) -> Self {
        self.outputs = Some(outputs);
        self
    }
    pub fn with_reward_output(mut self, name: impl Into<String>) -> Self {
        self.reward_output = Some(name.into());
        self
    }
    pub fn with_max_length(mut self, n: usize) -> Self {
        self.max_length = Some(n);
        self
    }
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
    pub fn with_no_chat_template(mut self, yes: bool) -> Self {
        self.no_chat_template = yes;
        self
    }
    pub fn with_precision(mut self, precision: Precision) -> Self {
        self.precision = precision;
        self
    }
    pub fn with_overwrite(mut self, yes: bool) -> Self {
        self.overwrite = yes;
        self
    }
    pub fn with_portable(mut self, yes: bool) -> Self {
        self.portable = yes;
        self
    }
}

/// Output names of a classification checkpoint: `id2label` in index order,
/// with transformers' placeholder `LABEL_0` of a one-label model named
/// `reward`.
fn label_names(config: &serde_json::Value, path: &Path) -> Result<Vec<String>> {
    let n_labels = config.get("num_labels").and_then(|v| v.as_u64());
    let Some(map) = config.get("id2label").and_then(|v| v.as_object()) else {
        // transformers leaves the default labels (two of them) out of the file.
        let n = n_labels.unwrap_or(2) as usize;
        return Ok(if n == 1 {
            vec!["reward".into()]
        } else {
            (0..n).map(|i| format!("LABEL_{i}")).collect()
        });
    };
    let mut names = vec![None; map.len()];
    for (k, v) in map {
        let i: usize = k.parse().ok().filter(|&i| i < map.len()).ok_or_else(|| {
            Error::backbone(
                path,
                format!("id2label key {k:?} is not an index below {}", map.len()),
            )
        })?;
        let name = v.as_str().ok_or_else(|| {
            Error::backbone(path, format!("id2label[{k:?}] is {v}, expected a string"))
        })?;
        names[i] = Some(name.to_string());
    }
    let names: Vec<String> = names.into_iter().map(|n| n.unwrap_or_default()).collect();
    if names.len() == 1 && names[0] == "LABEL_0" {
        return Ok(vec!["reward".into()]);
    }
    Ok(names)
}

/// The checkpoint's classification head, `[n_out, hidden]` weight and bias
/// (zero when the layer has none, as decoders' `score` layers).
fn checkpoint_head(
    backbone: &Backbone,
    weights: &mut Weights,
    n_out: usize,
    dir: &Path,
) -> Result<(RewardHead, Pooling)> {
    let h = backbone.hidden_size();
    let (prefix, pooling) = match backbone {
        Backbone::Decoder(_) => ("score", Pooling::Last),
        Backbone::Bert(_) => {
            let has_pooler =
                weights.has("bert.pooler.dense.weight") || weights.has("pooler.dense.weight");
            (
                "classifier",
                if has_pooler {
                    Pooling::Pooler
                } else {
                    Pooling::Cls
                },
            )
        }
    };
    let wname = format!("{prefix}.weight");
    if !weights.has(&wname) {
        return Err(Error::backbone(
            dir,
            format!(
                "no classification head ({wname}) in the checkpoint: pass --outputs to add a fresh head"
            ),
        ));
    }
    let (_, w) = weights.take(&[wname], &[n_out, h])?;
    let bname = format!("{prefix}.bias");
    let bias = if weights.has(&bname) {
        weights.take(&[bname], &[n_out])?.1.data
    } else {
        vec![0.0; n_out]
    };
    Ok((RewardHead::from_parts(w.data, bias, h)?, pooling))
}

/// How the imported model sees text: a chat template when the tokenizer
/// has one (decoders), the plain format for other decoders, sentence pairs
/// for encoders.
/// How the checkpoint in `dir` sees a pair: sentence pairs for encoders; for
/// decoders, the tokenizer's chat template when it has one (and
/// `use_chat_template`), else plain `User:`/`Assistant:` text.
pub fn text_format(backbone: &Backbone, dir: &Path, use_chat_template: bool) -> Result<TextFormat> {
    if !backbone.is_decoder() {
        return Ok(TextFormat::Pair);
    }
    let cfg = dir.join("tokenizer_config.json");
    if !use_chat_template || !cfg.is_file() {
        return Ok(TextFormat::Plain);
    }
    Ok(match ChatTemplate::from_tokenizer_config(&cfg)? {
        Some(t) => TextFormat::Chat {
            chat_template: t.spec().clone(),
        },
        None => TextFormat::Plain,
    })
}

/// Import the Hugging Face checkpoint in `dir` (`config.json`, safetensors
/// weights, single or sharded, `tokenizer.json`, optionally
/// `tokenizer_config.json` with a chat template) as a bundle at `out`.
pub fn import_hf(dir: &Path, out: &Path, opts: &ImportOptions) -> Result<Bundle> {
    let config_path = dir.join("config.json");
    let config = read_json(&config_path)?;
    let backbone = Backbone::from_json(&config, &config_path)?;
    let limit = backbone.max_position_embeddings();
    let max_length = match opts.max_length {
        Some(n) if n > limit => {
            return Err(Error::InvalidArgument(format!(
                "max_length {n} exceeds the model's max_position_embeddings {limit}"
            )))
        }
        Some(n) => n,
        None if backbone.is_decoder() => limit.min(DEFAULT_DECODER_MAX_LENGTH),
        None => limit.min(DEFAULT_ENCODER_MAX_LENGTH),
    };
    let text = text_format(&backbone, dir, !opts.no_chat_template)?;
    let tok_path = dir.join(TOKENIZER_FILE);
    let tokenizer_json = std::fs::read(&tok_path).map_err(|e| Error::io(&tok_path, e))?;
    // Load the tokenizer in its mode now: a broken tokenizer or template
    // fails before anything is written.
    let mode: TextMode = text.to_mode()?;
    PairTokenizer::from_bytes(&tokenizer_json, max_length, &tok_path.display().to_string())?
        .with_mode(mode)?;

    let mut weights = Weights::from_dir(dir)?;
    let (head, pooling, outputs) = match &opts.outputs {
        Some(outputs) => {
            if outputs.is_empty() {
                return Err(Error::InvalidArgument("--outputs names no output".into()));
            }
            let std = config
                .get("initializer_range")
                .and_then(|v| v.as_f64())
                .unwrap_or(0.02);
            let head = RewardHead::init(outputs.len(), backbone.hidden_size(), std, opts.seed)?;
            (head, backbone.default_pooling(), outputs.clone())
        }
        None => {
            let names = label_names(&config, &config_path)?;
            let (head, pooling) = checkpoint_head(&backbone, &mut weights, names.len(), dir)?;
            (head, pooling, names)
        }
    };
    let reward_output = match &opts.reward_output {
        Some(r) if !outputs.contains(r) => {
            return Err(Error::InvalidArgument(format!(
                "reward output {r:?} is not one of the outputs {outputs:?}"
            )))
        }
        Some(r) => r.clone(),
        None => outputs[0].clone(),
    };
    let (model, _) = backbone.build_with(
        &mut weights,
        &head,
        pooling,
        Some(max_length),
        opts.precision,
        !opts.portable,
    )?;
    drop(weights);
    let manifest = Manifest {
        format: FORMAT_NAME.into(),
        format_version: FORMAT_VERSION,
        architecture: Architecture {
            family: backbone.family().to_string(),
            config,
        },
        inputs: backbone.inputs(),
        outputs,
        reward_output,
        reward_weights: None,
        pooling,
        max_length,
        text,
        normalization: None,
        quantization: None,
        provenance: Provenance {
            created_by: format!("rewardkit {}", env!("CARGO_PKG_VERSION")),
            recipe: "import".into(),
            backbone: Some(dir.display().to_string()),
            seed: opts.outputs.as_ref().map(|_| opts.seed),
            data_digest: None,
            metrics: Default::default(),
        },
        files: None,
    };
    write_bundle_owned(out, &manifest, model, &tokenizer_json, opts.overwrite)
}
