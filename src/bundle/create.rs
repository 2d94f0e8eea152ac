use std::path::{Path, PathBuf};

use super::manifest::{
    Architecture, Manifest, Provenance, TextFormat, FORMAT_NAME, FORMAT_VERSION,
};
use super::{Bundle, MANIFEST_FILE, MODEL_FILE, TOKENIZER_FILE};
use crate::error::{Error, Result};
use crate::model::bert::{self, BuildOptions};
use crate::model::{BertConfig, Pooling, Precision, RewardHead, Weights};
use crate::onnx::io::{write_atomic, write_model, write_model_owned, DEFAULT_EXTERNAL_THRESHOLD};
use crate::onnx::ModelProto;
use crate::text::PairTokenizer;

/// Named sets of outputs for a fresh head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputPreset {
    /// One scalar output, `reward`.
    Reward,
    /// The five HelpSteer2 attributes; the reward is `helpfulness`.
    HelpSteer2,
    /// One output, `helpfulness` (the paper's helpfulness-only regression).
    Helpfulness,
}

impl OutputPreset {
    pub fn names(self) -> Vec<String> {
        match self {
            OutputPreset::Reward => vec!["reward".into()],
            OutputPreset::Helpfulness => vec!["helpfulness".into()],
            OutputPreset::HelpSteer2 => [
                "helpfulness",
                "correctness",
                "coherence",
                "complexity",
                "verbosity",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        }
    }
}

impl std::str::FromStr for OutputPreset {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "reward" => Ok(OutputPreset::Reward),
            "helpsteer2" => Ok(OutputPreset::HelpSteer2),
            "helpfulness" => Ok(OutputPreset::Helpfulness),
            _ => Err(Error::InvalidArgument(format!(
                "unknown outputs {s:?} (expected reward, helpsteer2 or helpfulness)"
            ))),
        }
    }
}

/// Options for [`init_from_backbone`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct InitOptions {
    pub outputs: Vec<String>,
    /// Which output is the reward (default: the first).
    pub reward_output: Option<String>,
    /// Weights combining the outputs into the reward (one per output).
    pub reward_weights: Option<Vec<f32>>,
    /// Seed for the head's initial weights.
    pub seed: u64,
    pub pooling: Pooling,
    /// Longest encoded pair (default: the backbone's position limit, at most 512).
    pub max_length: Option<usize>,
    /// Replace an existing bundle at the output path.
    pub overwrite: bool,
    /// Write `model.onnx` with standard ONNX ops only, instead of ONNX
    /// Runtime's fused contrib ops (BERT-family backbones; decoders are
    /// always written with standard ops).
    pub portable: bool,
    /// Type of the encoder's weights and activations: fp32, or fp16 for
    /// GPUs (the bundle is half the size; pooling and the head stay fp32).
    pub precision: Precision,
}

impl Default for InitOptions {
    fn default() -> Self {
        InitOptions {
            outputs: OutputPreset::Reward.names(),
            reward_output: None,
            reward_weights: None,
            seed: 0,
            pooling: Pooling::Mean,
            max_length: None,
            overwrite: false,
            portable: false,
            precision: Precision::F32,
        }
    }
}

impl InitOptions {
    pub fn with_outputs(mut self, preset: OutputPreset) -> Self {
        self.outputs = preset.names();
        self.reward_output = None;
        self.reward_weights = None;
        self
    }
    /// Which output is the reward.
    pub fn with_reward_output(mut self, name: impl Into<String>) -> Self {
        self.reward_output = Some(name.into());
        self
    }
    /// Combine all outputs into the reward with these weights (one per output).
    pub fn with_reward_weights(mut self, weights: Vec<f32>) -> Self {
        self.reward_weights = Some(weights);
        self
    }
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
    pub fn with_pooling(mut self, pooling: Pooling) -> Self {
        self.pooling = pooling;
        self
    }
    pub fn with_max_length(mut self, max_length: usize) -> Self {
        self.max_length = Some(max_length);
        self
    }
    pub fn with_overwrite(mut self, overwrite: bool) -> Self {
        self.overwrite = overwrite;
        self
    }
    pub fn with_portable(mut self, portable: bool) -> Self {
        self.portable = portable;
        self
    }
    pub fn with_precision(mut self, precision: Precision) -> Self {
        self.precision = precision;
        self
    }
}

/// Make an untrained reward-model bundle from a pretrained backbone directory
/// holding `config.json`, `model.safetensors` and `tokenizer.json`.
pub fn init_from_backbone(backbone: &Path, out: &Path, opts: &InitOptions) -> Result<Bundle> {
    let config_path = backbone.join("config.json");
    let config_value: serde_json::Value = {
        let text = std::fs::read_to_string(&config_path).map_err(|e| Error::io(&config_path, e))?;
        serde_json::from_str(&text)
            .map_err(|e| Error::backbone(&config_path, format!("not valid JSON: {e}")))?
    };
    if crate::model::Backbone::from_json(&config_value, &config_path)?.is_decoder() {
        // A decoder backbone: the import path, with a fresh head.
        let mut io = super::import::ImportOptions::default()
            .with_outputs(opts.outputs.clone())
            .with_seed(opts.seed)
            .with_overwrite(opts.overwrite)
            .with_portable(opts.portable)
            .with_precision(opts.precision);
        if let Some(r) = &opts.reward_output {
            io = io.with_reward_output(r.clone());
        }
        if let Some(n) = opts.max_length {
            io = io.with_max_length(n);
        }
        if opts.reward_weights.is_some() {
            return Err(Error::InvalidArgument(
                "reward weights are set by training recipes, not by init of a decoder".into(),
            ));
        }
        return super::import::import_hf(backbone, out, &io);
    }
    let cfg = BertConfig::from_json(&config_value, &config_path)?;
    let max_length = opts
        .max_length
        .unwrap_or(cfg.max_position_embeddings.min(512));
    if max_length > cfg.max_position_embeddings {
        return Err(Error::InvalidArgument(format!(
            "max_length {max_length} exceeds the backbone's max_position_embeddings {}",
            cfg.max_position_embeddings
        )));
    }
    let tok_path = backbone.join(TOKENIZER_FILE);
    let tokenizer_json = std::fs::read(&tok_path).map_err(|e| Error::io(&tok_path, e))?;
    // Loading it now catches a broken tokenizer before anything is written.
    PairTokenizer::from_bytes(&tokenizer_json, max_length, &tok_path.display().to_string())?;
    let mut weights = Weights::from_safetensors(&backbone.join("model.safetensors"))?;
    let head = RewardHead::init(
        opts.outputs.len(),
        cfg.hidden_size,
        cfg.initializer_range,
        opts.seed,
    )?;
    let model = bert::build_reward_model(
        &cfg,
        &mut weights,
        &head,
        BuildOptions {
            pooling: opts.pooling,
            expose_pooled: false,
            fused: !opts.portable,
            precision: opts.precision,
        },
    )?;
    let mut inputs = vec![
        bert::INPUT_IDS.to_string(),
        bert::ATTENTION_MASK.to_string(),
    ];
    if cfg.type_vocab_size > 0 {
        inputs.push(bert::TOKEN_TYPE_IDS.to_string());
    }
    let manifest = Manifest {
        format: FORMAT_NAME.into(),
        format_version: FORMAT_VERSION,
        architecture: Architecture {
            family: "bert".into(),
            config: config_value,
        },
        inputs,
        outputs: opts.outputs.clone(),
        reward_output: opts
            .reward_output
            .clone()
            .or_else(|| opts.outputs.first().cloned())
            .unwrap_or_default(),
        reward_weights: opts.reward_weights.clone(),
        pooling: opts.pooling,
        max_length,
        text: TextFormat::Pair,
        normalization: None,
        quantization: None,
        provenance: Provenance {
            created_by: format!("rewardkit {}", env!("CARGO_PKG_VERSION")),
            recipe: "init".into(),
            backbone: Some(backbone.display().to_string()),
            seed: Some(opts.seed),
            data_digest: None,
            metrics: Default::default(),
        },
        files: None,
    };
    write_bundle(out, &manifest, &model, &tokenizer_json, opts.overwrite)
}

/// Write a complete bundle. Files go to a staging directory beside `out`,
/// which is renamed into place at the end, so `out` never holds a half-written
/// bundle.
pub fn write_bundle(
    out: &Path,
    manifest: &Manifest,
    model: &ModelProto,
    tokenizer_json: &[u8],
    overwrite: bool,
) -> Result<Bundle> {
    write_bundle_with(
        out,
        manifest,
        |p| write_model(p, model, DEFAULT_EXTERNAL_THRESHOLD),
        tokenizer_json,
        overwrite,
    )
}

/// Past this many bytes of weights, [`write_bundle_owned`] streams them to
/// external data instead of encoding one protobuf: the model's weights are
/// then in memory once while it is written.
pub const STREAMING_EXTERNAL_THRESHOLD: usize = 64 << 20;

/// [`write_bundle`] for a model the caller gives up (see
/// [`write_model_owned`]): large models are written with little extra memory.
pub fn write_bundle_owned(
    out: &Path,
    manifest: &Manifest,
    model: ModelProto,
    tokenizer_json: &[u8],
    overwrite: bool,
) -> Result<Bundle> {
    write_bundle_with(
        out,
        manifest,
        |p| write_model_owned(p, model, STREAMING_EXTERNAL_THRESHOLD),
        tokenizer_json,
        overwrite,
    )
}

fn write_bundle_with(
    out: &Path,
    manifest: &Manifest,
    write_model_to: impl FnOnce(&Path) -> Result<()>,
    tokenizer_json: &[u8],
    overwrite: bool,
) -> Result<Bundle> {
    let manifest = &checked_manifest(out, manifest)?;
    if out.exists() {
        let is_bundle = out.join(MANIFEST_FILE).exists();
        let empty_dir = out.is_dir()
            && std::fs::read_dir(out)
                .map(|mut d| d.next().is_none())
                .unwrap_or(false);
        if !(empty_dir || (is_bundle && overwrite)) {
            let why = if is_bundle {
                "a bundle already exists there (use --force to replace it)"
            } else {
                "it exists and is not an empty directory or a bundle"
            };
            return Err(Error::InvalidArgument(format!(
                "cannot write a bundle to {}: {why}",
                out.display()
            )));
        }
    }
    let name = out
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| Error::InvalidArgument(format!("bad bundle path {}", out.display())))?;
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(|e| Error::io(&parent, e))?;
    let staging = parent.join(format!(".{name}.partial-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir(&staging).map_err(|e| Error::io(&staging, e))?;
    let written = (|| {
        write_model_to(&staging.join(MODEL_FILE))?;
        write_atomic(&staging.join(TOKENIZER_FILE), tokenizer_json)?;
        let manifest = with_file_records(&staging, manifest)?;
        write_atomic(&staging.join(MANIFEST_FILE), manifest.to_json().as_bytes())?;
        if out.exists() {
            std::fs::remove_dir_all(out).map_err(|e| Error::io(out, e))?;
        }
        std::fs::rename(&staging, out).map_err(|e| Error::io(out, e))
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(e);
    }
    Bundle::open(out)
}

/// `manifest`, validated, with the lowest format version that holds it (so
/// older readers open what they can read).
fn checked_manifest(out: &Path, manifest: &Manifest) -> Result<Manifest> {
    manifest.validate().map_err(|msg| Error::bundle(out, msg))?;
    let mut manifest = manifest.clone();
    manifest.format_version = manifest.required_version();
    Ok(manifest)
}

/// Write the bundle files into an existing directory that may hold other
/// files (a training run's checkpoints and metrics). The manifest is removed
/// first and written last, so a crash in between leaves no manifest (not a
/// bundle) rather than a manifest that disagrees with the model.
pub fn write_bundle_files(
    out: &Path,
    manifest: &Manifest,
    model: &ModelProto,
    tokenizer_json: &[u8],
) -> Result<Bundle> {
    let manifest = &checked_manifest(out, manifest)?;
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let mpath = out.join(MANIFEST_FILE);
    if mpath.exists() {
        std::fs::remove_file(&mpath).map_err(|e| Error::io(&mpath, e))?;
    }
    write_model(&out.join(MODEL_FILE), model, DEFAULT_EXTERNAL_THRESHOLD)?;
    write_atomic(&out.join(TOKENIZER_FILE), tokenizer_json)?;
    let manifest = with_file_records(out, manifest)?;
    write_atomic(&mpath, manifest.to_json().as_bytes())?;
    Bundle::open(out)
}

/// `manifest` with the sizes and digests of the bundle files written in `dir`
/// (model, its external data, tokenizer).
fn with_file_records(dir: &Path, manifest: &Manifest) -> Result<Manifest> {
    let mut names = vec![MODEL_FILE.to_string(), TOKENIZER_FILE.to_string()];
    names.extend(super::integrity::check_model(dir, MODEL_FILE)?);
    let mut m = manifest.clone();
    m.files = Some(super::integrity::record_files(dir, &names)?);
    Ok(m)
}
