//! Training recipes: TOML files (see `training/recipes/`), with values
//! overridable from the command line as `section.key=value`. An unknown key
//! is an error naming it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::Pooling;
use crate::optim::ScheduleKind;
use crate::runtime::Device;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipe {
    /// A name recorded in the bundle's provenance.
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub model: ModelSection,
    pub loss: LossSection,
    pub optimizer: OptimizerSection,
    #[serde(default)]
    pub schedule: ScheduleSection,
    #[serde(default)]
    pub training: TrainingSection,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    /// `reward`, `helpsteer2` or `helpfulness` (used when starting from a backbone).
    #[serde(default = "default_outputs")]
    pub outputs: String,
    /// Which output is the reward (default: the first).
    #[serde(default)]
    pub reward_output: Option<String>,
    /// Weights combining the outputs into the bundle's reward at scoring time
    /// (one per output; regression recipes only, which train every output).
    #[serde(default)]
    pub reward_weights: Option<Vec<f32>>,
    #[serde(default)]
    pub pooling: Pooling,
    /// Longest encoded pair in tokens.
    #[serde(default = "default_max_length")]
    pub max_length: usize,
    /// Seed of the fresh head (when starting from a backbone).
    #[serde(default)]
    pub head_seed: u64,
    /// Write the bundle's model.onnx with standard ONNX ops only, instead of
    /// ONNX Runtime's fused attention and layer-norm ops (BERT-family
    /// backbones; training itself always runs standard ops). Left out of the
    /// recipe text when false, so checkpoints made before it existed resume.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub portable: bool,
}

impl Default for ModelSection {
    fn default() -> Self {
        ModelSection {
            outputs: default_outputs(),
            reward_output: None,
            reward_weights: None,
            pooling: Pooling::Mean,
            max_length: default_max_length(),
            head_seed: 0,
            portable: false,
        }
    }
}

fn default_outputs() -> String {
    "reward".into()
}
fn default_max_length() -> usize {
    256
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LossKind {
    /// Bradley–Terry: −log σ(r_c − r_r).
    Bt,
    /// −log σ(r_c − r_r − m), m = margin_scale · strength.
    MarginBt,
    /// −|strength| · log σ(r_c − r_r).
    ScaledBt,
    /// Masked MSE over the outputs (ratings data).
    Regression,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LossSection {
    pub kind: LossKind,
    /// Reward-centering coefficient η (pairwise losses; 0 = off).
    #[serde(default)]
    pub centering: f32,
    /// Margin per unit of strength (margin BT).
    #[serde(default = "one")]
    pub margin_scale: f32,
}

fn one() -> f32 {
    1.0
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerName {
    Adamw,
    Sgd,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptimizerSection {
    #[serde(default = "adamw")]
    pub name: OptimizerName,
    pub lr: f64,
    #[serde(default = "beta1")]
    pub beta1: f32,
    #[serde(default = "beta2")]
    pub beta2: f32,
    #[serde(default = "eps")]
    pub eps: f32,
    #[serde(default)]
    pub weight_decay: f32,
    /// Max global gradient norm (none = no clipping).
    #[serde(default)]
    pub clip: Option<f32>,
}

fn adamw() -> OptimizerName {
    OptimizerName::Adamw
}
fn beta1() -> f32 {
    0.9
}
fn beta2() -> f32 {
    0.999
}
fn eps() -> f32 {
    1e-8
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleSection {
    #[serde(default)]
    pub kind: ScheduleKind,
    #[serde(default)]
    pub warmup_steps: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingSection {
    /// Pairs (or rated rows) per micro-batch (one forward/backward run).
    #[serde(default = "batch")]
    pub batch_size: usize,
    /// Micro-batches whose gradients are averaged into one optimizer step
    /// (the step sees batch_size × grad_accum examples).
    #[serde(default = "one_usize")]
    pub grad_accum: usize,
    #[serde(default = "epochs")]
    pub epochs: u64,
    /// Stop after this many steps (default: the epochs' worth).
    #[serde(default)]
    pub max_steps: Option<u64>,
    /// Seed of the data order.
    #[serde(default)]
    pub seed: u64,
    /// Shuffle each epoch (false keeps the file's order).
    #[serde(default = "yes")]
    pub shuffle: bool,
    /// Evaluate on the eval data every N steps (and at the end).
    #[serde(default)]
    pub eval_every: Option<u64>,
    /// Write a checkpoint every N steps (and at the end).
    #[serde(default)]
    pub checkpoint_every: Option<u64>,
    /// Intra-op threads (0 = one per core).
    #[serde(default)]
    pub threads: usize,
    /// Train only the reward head.
    #[serde(default)]
    pub head_only: bool,
    /// Keep the embedding tables fixed.
    #[serde(default)]
    pub freeze_embeddings: bool,
    /// Skip and count malformed data lines instead of stopping.
    #[serde(default)]
    pub skip_bad_lines: bool,
    /// Let ONNX Runtime allocate each step's intermediates as it goes (on,
    /// the default) rather than pre-plan one block from earlier steps' shapes
    /// (`false`, its "memory pattern"). With MiniLM on 2 cores the plan cost
    /// 35–60% more peak RSS (1.66 against 1.24 GiB at 128 tokens, 3.11
    /// against 1.96 at 256) and steps were not consistently faster:
    /// alternating runs went either way, by up to 15%. Like the device, not
    /// part of what a checkpoint must match.
    #[serde(default = "yes")]
    pub low_memory: bool,
    /// CPU only: parameters larger than this many elements are updated by
    /// the optimizer in pieces of at most this size, so each piece's
    /// elementwise passes stay in cache (0: whole tensors). Like the device,
    /// not part of what a checkpoint must match.
    #[serde(default = "optimizer_piece")]
    pub optimizer_piece: usize,
    /// CPU only: run the AdamW update and the exact GELU's gradient as
    /// rewardkit's one-pass kernels (custom ops registered with ONNX Runtime)
    /// rather than chains of standard ONNX ops. The update is the same
    /// arithmetic, bit for bit; the GELU gradient's erf is within 1.5e-7.
    /// For MiniLM at 128 tokens on 2 cores they took the optimizer run from
    /// about 145 to 50 ms and the GELU gradients from about 75 to 18 ms per
    /// step. `false` keeps every training graph in standard ops. Ignored on
    /// CUDA. Like the device, not part of what a checkpoint must match.
    #[serde(default = "yes")]
    pub fused_kernels: bool,
    /// Where the training graphs run: `cpu`, `cuda` or `cuda:N`. Not part of
    /// what a checkpoint must match: a run may resume on another device.
    #[serde(default, with = "device_string", skip_serializing_if = "is_cpu")]
    pub device: Device,
}

fn is_cpu(d: &Device) -> bool {
    *d == Device::Cpu
}

/// A device as its string (`cpu`, `cuda:0`) in TOML.
mod device_string {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::runtime::Device;

    pub fn serialize<S: Serializer>(d: &Device, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(d)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Device, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

impl Default for TrainingSection {
    fn default() -> Self {
        TrainingSection {
            batch_size: batch(),
            grad_accum: 1,
            epochs: epochs(),
            max_steps: None,
            seed: 0,
            shuffle: true,
            eval_every: None,
            checkpoint_every: None,
            threads: 0,
            head_only: false,
            freeze_embeddings: false,
            skip_bad_lines: false,
            low_memory: true,
            optimizer_piece: optimizer_piece(),
            fused_kernels: true,
            device: Device::Cpu,
        }
    }
}

fn optimizer_piece() -> usize {
    crate::optim::CPU_PIECE
}

fn one_usize() -> usize {
    1
}
fn batch() -> usize {
    8
}
fn epochs() -> u64 {
    1
}
fn yes() -> bool {
    true
}

/// Set `a.b.c = value` in a TOML table; `value` is parsed as TOML, or taken as a string.
fn set_dotted(root: &mut toml::Table, key: &str, value: &str) -> Result<()> {
    let parts: Vec<&str> = key.split('.').collect();
    let (last, path) = parts
        .split_last()
        .ok_or_else(|| Error::InvalidArgument("empty override key".into()))?;
    let mut table = root;
    for p in path {
        let entry = table
            .entry(p.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        table = entry.as_table_mut().ok_or_else(|| {
            Error::InvalidArgument(format!("override {key}: {p} is not a section"))
        })?;
    }
    let parsed: toml::Value = match format!("v = {value}").parse::<toml::Table>() {
        Ok(mut t) => t.remove("v").unwrap_or(toml::Value::String(value.into())),
        Err(_) => toml::Value::String(value.to_string()),
    };
    table.insert(last.to_string(), parsed);
    Ok(())
}

impl Recipe {
    /// Parse recipe text, apply `key=value` overrides, and validate.
    pub fn parse(text: &str, what: &str, overrides: &[String]) -> Result<Self> {
        let mut table: toml::Table = text
            .parse()
            .map_err(|e| Error::InvalidArgument(format!("{what}: not valid TOML: {e}")))?;
        for o in overrides {
            let (k, v) = o.split_once('=').ok_or_else(|| {
                Error::InvalidArgument(format!("override {o:?} is not key=value"))
            })?;
            set_dotted(&mut table, k.trim(), v.trim())?;
        }
        let recipe: Recipe =
            toml::Value::Table(table)
                .try_into()
                .map_err(|e: toml::de::Error| {
                    Error::InvalidArgument(format!("{what}: {}", e.message()))
                })?;
        recipe.validate(what)?;
        Ok(recipe)
    }

    /// Read a recipe file.
    pub fn from_file(path: &Path, overrides: &[String]) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let text = String::from_utf8(bytes).map_err(|e| {
            Error::InvalidArgument(format!(
                "{}: not valid UTF-8 (at byte {})",
                path.display(),
                e.utf8_error().valid_up_to()
            ))
        })?;
        Self::parse(&text, &path.display().to_string(), overrides)
    }

    fn validate(&self, what: &str) -> Result<()> {
        let bad = |m: String| Err(Error::InvalidArgument(format!("{what}: {m}")));
        if !(self.optimizer.lr > 0.0 && self.optimizer.lr.is_finite()) {
            return bad(format!(
                "optimizer.lr {} must be positive",
                self.optimizer.lr
            ));
        }
        if self.training.grad_accum == 0 {
            return bad("training.grad_accum must be at least 1".into());
        }
        if self.training.batch_size == 0 {
            return bad("training.batch_size must be at least 1".into());
        }
        if !(0.0..1.0).contains(&self.optimizer.beta1)
            || !(0.0..1.0).contains(&self.optimizer.beta2)
        {
            return bad("optimizer betas must be in [0, 1)".into());
        }
        if let Some(c) = self.optimizer.clip {
            if c.is_nan() || c <= 0.0 {
                return bad(format!("optimizer.clip {c} must be positive"));
            }
        }
        if self.model.max_length < 8 {
            return bad(format!(
                "model.max_length {} is too small",
                self.model.max_length
            ));
        }
        if let Err(e) = self.model.outputs.parse::<crate::bundle::OutputPreset>() {
            return bad(format!("model.outputs: {e}"));
        }
        Ok(())
    }

    /// The recipe as TOML text (recorded in checkpoints).
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_default()
    }

    /// Whether a checkpoint written under the recipe `saved` (its TOML) may
    /// continue under this one: the same recipe, except for the device, the
    /// memory planning, the optimizer's pieces and kernels, which say how the run
    /// happens rather than what it computes.
    pub fn resumes(&self, saved: &str) -> bool {
        let computed = |r: &Recipe| {
            let mut r = r.clone();
            r.training.device = Device::Cpu;
            r.training.low_memory = true;
            r.training.optimizer_piece = optimizer_piece();
            r.training.fused_kernels = true;
            r.to_toml()
        };
        Recipe::parse(saved, "the checkpoint's recipe", &[])
            .is_ok_and(|r| computed(&r) == computed(self))
    }
}

/// Which data file a pipeline stage trains on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StageData {
    /// `--data` (and `--eval-data`).
    Pairs,
    /// `--ratings` (and `--eval-ratings`).
    Ratings,
}

/// One stage of a pipeline recipe.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineStage {
    /// The stage's recipe file, relative to the pipeline file.
    pub recipe: PathBuf,
    pub data: StageData,
    /// Overrides applied to the stage's recipe (`key=value`), before the
    /// command line's own `--set` values.
    #[serde(default)]
    pub set: Vec<String>,
}

impl PipelineStage {
    /// The stage recipe's file stem (`helpfulness_regression`).
    pub fn name(&self) -> String {
        self.recipe
            .file_stem()
            .map_or("stage".into(), |s| s.to_string_lossy().into_owned())
    }
}

/// A recipe made of stages run one after another, each starting from the
/// previous stage's bundle (its weights and head), such as the paper's
/// helpfulness regression followed by Scaled BT.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pipeline {
    #[serde(default)]
    pub name: String,
    pub stages: Vec<PipelineStage>,
}

impl Pipeline {
    /// Read `path` as a pipeline: `Ok(None)` if it is a plain recipe (no
    /// `stages`). Stage recipe paths are resolved against the file's
    /// directory, and each stage recipe is checked to exist.
    pub fn from_file(path: &Path) -> Result<Option<Self>> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let what = path.display().to_string();
        let table: toml::Table = text
            .parse()
            .map_err(|e| Error::InvalidArgument(format!("{what}: not valid TOML: {e}")))?;
        if !table.contains_key("stages") {
            return Ok(None);
        }
        let mut p: Pipeline =
            toml::Value::Table(table)
                .try_into()
                .map_err(|e: toml::de::Error| {
                    Error::InvalidArgument(format!("{what}: {}", e.message()))
                })?;
        if p.stages.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "{what}: \"stages\" is empty"
            )));
        }
        let base = path.parent().unwrap_or(Path::new("."));
        for (i, st) in p.stages.iter_mut().enumerate() {
            st.recipe = base.join(&st.recipe);
            if !st.recipe.is_file() {
                return Err(Error::InvalidArgument(format!(
                    "{what}: stage {} recipe {} does not exist",
                    i + 1,
                    st.recipe.display()
                )));
            }
        }
        Ok(Some(p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "[loss]\nkind = \"bt\"\n[optimizer]\nlr = 1e-5\n";

    #[test]
    fn defaults_and_overrides() {
        let r = Recipe::parse(
            BASE,
            "r",
            &[
                "optimizer.lr=3e-4".into(),
                "training.batch_size=4".into(),
                "model.pooling=cls".into(),
            ],
        )
        .expect("parse");
        assert_eq!(r.optimizer.lr, 3e-4);
        assert_eq!(r.training.batch_size, 4);
        assert_eq!(r.model.pooling, Pooling::Cls);
        assert_eq!(r.optimizer.name, OptimizerName::Adamw);
    }

    #[test]
    fn unknown_keys_are_named() {
        let err = Recipe::parse(&format!("{BASE}[training]\nbatchsize = 3\n"), "r.toml", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("batchsize"), "{err}");
        let err = Recipe::parse(BASE, "r.toml", &["optimizer.learning_rate=1".into()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("learning_rate"), "{err}");
        let err = Recipe::parse(
            "[loss]\nkind = \"nope\"\n[optimizer]\nlr = 1\n",
            "r.toml",
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("nope"), "{err}");
    }

    #[test]
    fn device_is_parsed_and_named_when_wrong() {
        let r = Recipe::parse(BASE, "r", &[]).expect("parse");
        assert_eq!(r.training.device, Device::Cpu);
        // A CPU recipe serialises as before the device existed, so the
        // recipes saved in older checkpoints still match.
        assert!(!r.to_toml().contains("device"), "{}", r.to_toml());
        for (text, want) in [
            ("cuda", Device::Cuda(0)),
            ("cuda:2", Device::Cuda(2)),
            ("cpu", Device::Cpu),
        ] {
            let r = Recipe::parse(BASE, "r", &[format!("training.device={text}")]).expect(text);
            assert_eq!(r.training.device, want);
            let again = Recipe::parse(&r.to_toml(), "again", &[]).expect("round trip");
            assert_eq!(again.training.device, want);
        }
        for bad in ["tpu", "cuda:", "cuda:-1", "cuda:x"] {
            let err = Recipe::parse(BASE, "r.toml", &[format!("training.device={bad}")])
                .unwrap_err()
                .to_string();
            assert!(err.contains("r.toml") && err.contains(bad), "{bad}: {err}");
        }
    }

    #[test]
    fn a_checkpoint_resumes_on_another_device_or_memory_plan_but_not_another_recipe() {
        let cpu = Recipe::parse(BASE, "r", &[]).expect("parse");
        let gpu = Recipe::parse(BASE, "r", &["training.device=cuda:1".into()]).expect("parse");
        assert!(cpu.resumes(&gpu.to_toml()));
        assert!(gpu.resumes(&cpu.to_toml()));
        assert!(cpu.resumes(&cpu.to_toml()));
        let planned =
            Recipe::parse(BASE, "r", &["training.low_memory=false".into()]).expect("parse");
        assert!(!planned.training.low_memory && cpu.training.low_memory);
        assert!(cpu.resumes(&planned.to_toml()));
        assert!(planned.resumes(&cpu.to_toml()));
        let whole =
            Recipe::parse(BASE, "r", &["training.optimizer_piece=0".into()]).expect("parse");
        assert!(cpu.resumes(&whole.to_toml()) && whole.resumes(&cpu.to_toml()));
        let other = Recipe::parse(BASE, "r", &["optimizer.lr=2e-5".into()]).expect("parse");
        assert!(!other.resumes(&cpu.to_toml()));
        assert!(!cpu.resumes("not toml ["));
    }
}
