//! The training loop.

use std::path::{Path, PathBuf};
use std::time::Instant;

use ndarray::{Array1, Array2};

use super::checkpoint::{self, TrainState};
use super::data::{read_pairs, read_ratings, BadLines, DataSummary, Pair, Rating};
use super::graphs::{
    build_training_graphs, Freeze, Objective, TrainGraphs, CHOSEN, LOSS, REJECTED, SCORES_OUT,
};
use super::recipe::{LossKind, OptimizerName, Recipe};
use crate::bundle::{
    Architecture, Bundle, Manifest, OutputPreset, Provenance, TextFormat, FORMAT_NAME,
    FORMAT_VERSION, TOKENIZER_FILE,
};
use crate::error::{Error, Result};
use crate::loss::{PairwiseLoss, PAIR_MARGIN, PAIR_WEIGHT, TARGETS, TARGET_MASK};
use crate::model::bert::{ATTENTION_MASK, INPUT_IDS, TOKEN_TYPE_IDS};
use crate::model::init::SeededRng;
use crate::model::{Backbone, Pooling, RewardHead, Weights};
use crate::onnx::io::write_model;
use crate::onnx::ModelProto;
use crate::optim::{OptimizerKind, Schedule, GRAD_SCALE, INV_SQRT_BC2, LR, STEP_SIZE};
use crate::runtime::{Device, RunnerOptions, TensorInput, TrainingEngine, TrainingSpec};
use crate::text::{pad_batch, EncodedPair, PairTokenizer};

/// Where the starting weights come from.
#[derive(Debug, Clone)]
pub enum Init {
    /// A pretrained backbone directory (config.json, model.safetensors, tokenizer.json); a fresh head.
    Backbone(PathBuf),
    /// An existing bundle: backbone and head continue from it.
    Bundle(PathBuf),
}

/// Training data.
#[derive(Debug, Clone)]
pub enum Examples {
    Pairs(Vec<Pair>),
    Ratings(Vec<Rating>),
}

impl Examples {
    pub fn len(&self) -> usize {
        match self {
            Examples::Pairs(p) => p.len(),
            Examples::Ratings(r) => r.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Evaluation metrics over a data set.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct EvalMetrics {
    pub loss: f64,
    /// Pairwise accuracy with the strict rule r_c > r_r (pairs only).
    pub accuracy: Option<f64>,
    pub mean_margin: Option<f64>,
    pub examples: usize,
}

/// One step's report, passed to the progress callback.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StepReport {
    pub step: u64,
    pub total_steps: u64,
    pub epoch: u64,
    pub loss: f64,
    /// Batch accuracy (pairs only).
    pub accuracy: Option<f64>,
    pub grad_norm: f64,
    pub lr: f64,
    pub examples_per_sec: f64,
    pub elapsed_secs: f64,
    pub eta_secs: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eval: Option<EvalMetrics>,
}

/// The callback's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    Continue,
    /// Stop after this step (a checkpoint is written first).
    Stop,
}

/// The result of a run.
#[derive(Debug, Clone)]
pub struct TrainOutcome {
    pub steps: u64,
    pub last_loss: f64,
    pub eval: Option<EvalMetrics>,
    pub stopped_early: bool,
}

/// `model` with the values of the initializers named in `names` dropped
/// (kept: their names, types and dims).
fn without_values(mut model: ModelProto, names: &std::collections::HashSet<String>) -> ModelProto {
    for t in model
        .graph
        .iter_mut()
        .flat_map(|g| g.initializer.iter_mut())
    {
        if names.contains(t.name()) {
            t.raw_data = None;
            t.float_data = Vec::new();
        }
    }
    model
}

/// A training job.
pub struct Trainer {
    recipe: Recipe,
    engine: TrainingEngine,
    graphs_inference: ModelProto,
    tokenizer: PairTokenizer,
    tokenizer_json: Vec<u8>,
    config_json: serde_json::Value,
    backbone: Backbone,
    pooling: Pooling,
    text: TextFormat,
    outputs: Vec<String>,
    reward_index: usize,
    uses_token_types: bool,
    objective: Objective,
    state: TrainState,
    schedule: Schedule,
    optimizer: OptimizerKind,
    data: Examples,
    eval_data: Option<Examples>,
    data_digest: Option<String>,
    summaries: Vec<DataSummary>,
}

impl std::fmt::Debug for Trainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trainer")
            .field("recipe", &self.recipe.name)
            .field("step", &self.state.step)
            .finish()
    }
}

fn objective_of(recipe: &Recipe) -> Objective {
    match recipe.loss.kind {
        LossKind::Bt => Objective::Pairwise(PairwiseLoss {
            weighted: false,
            margin: false,
            centering: recipe.loss.centering,
        }),
        LossKind::MarginBt => Objective::Pairwise(PairwiseLoss {
            weighted: false,
            margin: true,
            centering: recipe.loss.centering,
        }),
        LossKind::ScaledBt => Objective::Pairwise(PairwiseLoss {
            weighted: true,
            margin: false,
            centering: recipe.loss.centering,
        }),
        LossKind::Regression => Objective::Regression,
    }
}

/// A starting point.
struct Start {
    config_json: serde_json::Value,
    backbone: Backbone,
    weights: Weights,
    head: RewardHead,
    tokenizer_json: Vec<u8>,
    outputs: Vec<String>,
    reward: String,
    /// The pooling the head reads.
    pooling: Pooling,
    /// How pairs become model input.
    text: TextFormat,
}

/// Load the starting point.
fn load_init(init: &Init, recipe: &Recipe) -> Result<Start> {
    match init {
        Init::Backbone(dir) => {
            let cfg_path = dir.join("config.json");
            let value = crate::model::backbone::read_json(&cfg_path)?;
            let backbone = Backbone::from_json(&value, &cfg_path)?;
            let weights = Weights::from_dir(dir)?;
            let outputs = recipe.model.outputs.parse::<OutputPreset>()?.names();
            let std = value
                .get("initializer_range")
                .and_then(|v| v.as_f64())
                .unwrap_or(0.02);
            let head = RewardHead::init(
                outputs.len(),
                backbone.hidden_size(),
                std,
                recipe.model.head_seed,
            )?;
            let tok_path = dir.join(TOKENIZER_FILE);
            let tok = std::fs::read(&tok_path).map_err(|e| Error::io(&tok_path, e))?;
            let reward = recipe
                .model
                .reward_output
                .clone()
                .unwrap_or_else(|| outputs[0].clone());
            // Decoders read the last token and see text through their chat
            // template (if the tokenizer has one); encoders take the
            // recipe's pooling and sentence pairs.
            let text = crate::bundle::import::text_format(&backbone, dir, true)?;
            let pooling = if backbone.is_decoder() {
                Pooling::Last
            } else {
                recipe.model.pooling
            };
            Ok(Start {
                config_json: value,
                backbone,
                weights,
                head,
                tokenizer_json: tok,
                outputs,
                reward,
                pooling,
                text,
            })
        }
        Init::Bundle(dir) => {
            let bundle = Bundle::open(dir)?;
            let m = bundle.manifest().clone();
            if let Some(q) = &m.quantization {
                return Err(Error::bundle(
                    dir,
                    format!("the bundle is quantized ({q}): training starts from a float bundle"),
                ));
            }
            let backbone =
                Backbone::from_json(&m.architecture.config, &dir.join("rewardkit.json"))?;
            if backbone.family() != m.architecture.family {
                return Err(Error::bundle(
                    dir,
                    format!(
                        "architecture family {:?} disagrees with its config's model_type ({:?})",
                        m.architecture.family,
                        backbone.family()
                    ),
                ));
            }
            let mut model = crate::onnx::io::read_model(&bundle.model_path())?;
            crate::onnx::io::load_external_data(&mut model, bundle.dir(), "model.onnx")?;
            // Fused and portable bundles hold the same initializers, so either
            // gives the training graph its weights.
            let (weights, head) = Weights::from_model(&model, &bundle.model_path())?;
            drop(model);
            if head.hidden() != backbone.hidden_size() {
                return Err(Error::bundle(
                    dir,
                    format!(
                        "the reward head takes {} hidden values, the backbone has {}",
                        head.hidden(),
                        backbone.hidden_size()
                    ),
                ));
            }
            if head.n_outputs() != m.outputs.len() {
                return Err(Error::bundle(
                    dir,
                    "head size and manifest outputs disagree",
                ));
            }
            let tok = std::fs::read(bundle.tokenizer_path())
                .map_err(|e| Error::io(bundle.tokenizer_path(), e))?;
            let reward = recipe
                .model
                .reward_output
                .clone()
                .unwrap_or(m.reward_output.clone());
            Ok(Start {
                config_json: m.architecture.config.clone(),
                backbone,
                weights,
                head,
                tokenizer_json: tok,
                outputs: m.outputs.clone(),
                reward,
                pooling: m.pooling,
                text: m.text.clone(),
            })
        }
    }
}

/// Read a data file in the form the recipe's loss needs.
pub fn load_examples(
    path: &Path,
    recipe: &Recipe,
    outputs: &[String],
) -> Result<(Examples, DataSummary)> {
    let bad = if recipe.training.skip_bad_lines {
        BadLines::Skip
    } else {
        BadLines::Error
    };
    match recipe.loss.kind {
        LossKind::Regression => {
            read_ratings(path, outputs, bad).map(|(r, s)| (Examples::Ratings(r), s))
        }
        kind => {
            let (mut pairs, s) = read_pairs(path, bad)?;
            // A tie carries no preference: Scaled BT weighs it 0, the other losses drop it.
            if kind != LossKind::ScaledBt {
                pairs.retain(|p| p.strength != Some(0.0));
            }
            if pairs.is_empty() {
                return Err(Error::InvalidArgument(format!(
                    "{}: every pair is a tie",
                    path.display()
                )));
            }
            Ok((Examples::Pairs(pairs), s))
        }
    }
}

impl Trainer {
    /// Prepare a run: build and load the graphs, read nothing from disk but
    /// the starting point (data is given already parsed).
    pub fn new(
        recipe: Recipe,
        init: &Init,
        data: Examples,
        eval_data: Option<Examples>,
        data_digest: Option<String>,
        work_dir: &Path,
    ) -> Result<Self> {
        if data.is_empty() {
            return Err(Error::InvalidArgument("the training data is empty".into()));
        }
        Self::create(recipe, init, data, eval_data, data_digest, work_dir)
    }

    /// A trainer with no data set, for online updates through
    /// [`train_on_pairs`](Self::train_on_pairs) (a pairwise recipe is needed).
    /// The schedule's length is `training.max_steps` (unbounded when unset).
    pub fn new_online(recipe: Recipe, init: &Init, work_dir: &Path) -> Result<Self> {
        if recipe.loss.kind == LossKind::Regression {
            return Err(Error::InvalidArgument(
                "online training takes pairs: use a pairwise loss".into(),
            ));
        }
        Self::create(
            recipe,
            init,
            Examples::Pairs(Vec::new()),
            None,
            None,
            work_dir,
        )
    }

    fn create(
        recipe: Recipe,
        init: &Init,
        data: Examples,
        eval_data: Option<Examples>,
        data_digest: Option<String>,
        work_dir: &Path,
    ) -> Result<Self> {
        let Start {
            config_json,
            backbone,
            mut weights,
            head,
            tokenizer_json,
            outputs,
            reward: reward_output,
            pooling,
            text,
        } = load_init(init, &recipe)?;
        let reward_index = outputs
            .iter()
            .position(|o| *o == reward_output)
            .ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "reward output {reward_output:?} is not one of {outputs:?}"
                ))
            })?;
        if let Some(w) = &recipe.model.reward_weights {
            if w.len() != outputs.len() {
                return Err(Error::InvalidArgument(format!(
                    "model.reward_weights has {} weights for the {} outputs {outputs:?}",
                    w.len(),
                    outputs.len()
                )));
            }
            if !matches!(objective_of(&recipe), Objective::Regression) {
                return Err(Error::InvalidArgument(
                    "model.reward_weights needs a regression loss: pairwise losses train only model.reward_output".into(),
                ));
            }
        }
        let max_length = recipe
            .model
            .max_length
            .min(backbone.max_position_embeddings());
        let tokenizer = PairTokenizer::from_bytes(&tokenizer_json, max_length, "tokenizer.json")?
            .with_mode(text.to_mode()?)?;
        let objective = objective_of(&recipe);
        match (&objective, &data) {
            (Objective::Regression, Examples::Pairs(_)) | (Objective::Pairwise(_), Examples::Ratings(_)) => {
                return Err(Error::InvalidArgument("the data does not match the loss (pairs need a pairwise loss, ratings need regression)".into()))
            }
            _ => {}
        }
        let optimizer = match recipe.optimizer.name {
            OptimizerName::Adamw => OptimizerKind::Adamw {
                beta1: recipe.optimizer.beta1,
                beta2: recipe.optimizer.beta2,
                eps: recipe.optimizer.eps,
                weight_decay: recipe.optimizer.weight_decay,
            },
            OptimizerName::Sgd => OptimizerKind::Sgd,
        };
        let freeze = Freeze {
            head_only: recipe.training.head_only,
            embeddings: recipe.training.freeze_embeddings,
        };
        // On a GPU, whole tensors: pieces would only add kernel launches.
        let optimizer_piece = match recipe.training.device {
            Device::Cpu => Some(recipe.training.optimizer_piece).filter(|&p| p > 0),
            Device::Cuda(_) => None,
        };
        // rewardkit's kernels are CPU code: on a GPU they would copy every
        // tensor they touch across the bus.
        let fused_kernels = recipe.training.fused_kernels && recipe.training.device == Device::Cpu;
        let graphs: TrainGraphs = build_training_graphs(
            &backbone,
            &mut weights,
            &head,
            pooling,
            Some(max_length),
            reward_index,
            objective,
            freeze,
            optimizer,
            recipe.optimizer.clip,
            recipe.training.grad_accum > 1,
            optimizer_piece,
            fused_kernels,
        )?;
        std::fs::create_dir_all(work_dir).map_err(|e| Error::io(work_dir, e))?;
        let graph_dir = work_dir.join("graphs");
        std::fs::create_dir_all(&graph_dir).map_err(|e| Error::io(&graph_dir, e))?;
        let paths = [
            graph_dir.join("train.onnx"),
            graph_dir.join("optimizer.onnx"),
            graph_dir.join("eval.onnx"),
        ];
        write_model(
            &paths[0],
            &graphs.train,
            crate::onnx::io::DEFAULT_EXTERNAL_THRESHOLD,
        )?;
        write_model(
            &paths[1],
            &graphs.optimizer.model,
            crate::onnx::io::DEFAULT_EXTERNAL_THRESHOLD,
        )?;
        write_model(
            &paths[2],
            &graphs.eval,
            crate::onnx::io::DEFAULT_EXTERNAL_THRESHOLD,
        )?;
        let accumulate_model = match &graphs.accumulator {
            Some(m) => {
                let p = graph_dir.join("accumulate.onnx");
                write_model(&p, m, crate::onnx::io::DEFAULT_EXTERNAL_THRESHOLD)?;
                Some(p)
            }
            None => None,
        };
        let uses_token_types = backbone.inputs().iter().any(|i| i == TOKEN_TYPE_IDS);
        let mut scalars = match optimizer {
            OptimizerKind::Adamw { .. } => vec![
                LR.to_string(),
                STEP_SIZE.to_string(),
                INV_SQRT_BC2.to_string(),
            ],
            OptimizerKind::Sgd => vec![LR.to_string()],
        };
        if accumulate_model.is_some() {
            scalars.push(GRAD_SCALE.to_string());
        }
        // The trained weights live in the engine; the inference graph keeps
        // only their names and shapes until a bundle is written.
        let trained: std::collections::HashSet<String> =
            graphs.params.iter().map(|p| p.name.clone()).collect();
        let engine = TrainingEngine::new(&TrainingSpec {
            accumulate_model,
            train_model: paths[0].clone(),
            optim_model: paths[1].clone(),
            eval_model: paths[2].clone(),
            params: graphs.params,
            state_kinds: optimizer
                .state_names()
                .iter()
                .map(|s| s.to_string())
                .collect(),
            scalars,
            optimizer_piece,
            options: RunnerOptions {
                threads: recipe.training.threads,
                low_memory: recipe.training.low_memory,
                device: recipe.training.device,
                ..Default::default()
            },
        })?;
        let steps_per_epoch = data
            .len()
            .div_ceil(recipe.training.batch_size * recipe.training.grad_accum)
            as u64;
        // max_steps, when given, wins over epochs (it may run past them).
        let total = match recipe.training.max_steps {
            Some(m) => m,
            None if data.is_empty() => u64::MAX,
            None => steps_per_epoch * recipe.training.epochs.max(1),
        };
        let schedule = Schedule {
            kind: recipe.schedule.kind,
            lr: recipe.optimizer.lr,
            warmup_steps: recipe.schedule.warmup_steps,
            total_steps: total,
        };
        Ok(Trainer {
            state: TrainState {
                step: 0,
                epoch: 0,
                position: 0,
                seed: recipe.training.seed,
                total_steps: total,
            },
            recipe,
            engine,
            graphs_inference: without_values(graphs.inference, &trained),
            tokenizer,
            tokenizer_json,
            config_json,
            backbone,
            pooling,
            text,
            outputs,
            reward_index,
            uses_token_types,
            objective,
            schedule,
            optimizer,
            data,
            eval_data,
            data_digest,
            summaries: Vec::new(),
        })
    }

    /// Replace the training (and evaluation) data, restarting the data
    /// position at the start of an epoch; the step count and the optimizer
    /// state carry on. The schedule's length becomes the new data's.
    pub fn set_data(&mut self, data: Examples, eval_data: Option<Examples>) -> Result<()> {
        if data.is_empty() {
            return Err(Error::InvalidArgument("the training data is empty".into()));
        }
        match (&self.objective, &data) {
            (Objective::Regression, Examples::Pairs(_)) | (Objective::Pairwise(_), Examples::Ratings(_)) => {
                return Err(Error::InvalidArgument("the data does not match the loss (pairs need a pairwise loss, ratings need regression)".into()))
            }
            _ => {}
        }
        let steps_per_epoch = data
            .len()
            .div_ceil(self.recipe.training.batch_size * self.recipe.training.grad_accum)
            as u64;
        let planned = self
            .recipe
            .training
            .max_steps
            .unwrap_or(steps_per_epoch * self.recipe.training.epochs.max(1));
        self.state.total_steps = self.state.step + planned;
        self.state.epoch = 0;
        self.state.position = 0;
        self.schedule.total_steps = self.state.total_steps;
        self.data = data;
        self.eval_data = eval_data;
        Ok(())
    }

    /// Output names of the model being trained.
    pub fn output_names(&self) -> &[String] {
        &self.outputs
    }

    /// The recipe in use.
    pub fn recipe(&self) -> &Recipe {
        &self.recipe
    }

    /// Record data-reading summaries (shown in the bundle's provenance).
    pub fn add_summary(&mut self, s: DataSummary) {
        self.summaries.push(s);
    }

    pub fn step(&self) -> u64 {
        self.state.step
    }

    pub fn total_steps(&self) -> u64 {
        self.state.total_steps
    }

    /// The order of examples in `epoch`.
    fn order(&self, epoch: u64) -> Vec<usize> {
        let mut idx: Vec<usize> = (0..self.data.len()).collect();
        if self.recipe.training.shuffle {
            let mut rng = SeededRng::new(
                self.state
                    .seed
                    .wrapping_mul(0x9E37_79B9)
                    .wrapping_add(epoch),
            );
            for i in (1..idx.len()).rev() {
                let j = (rng.next_u64() % (i as u64 + 1)) as usize;
                idx.swap(i, j);
            }
        }
        idx
    }

    fn encode_rows(&self, pairs: &[(&str, &str)]) -> Result<Vec<EncodedPair>> {
        let (prompts, responses): (Vec<&str>, Vec<&str>) = pairs.iter().copied().unzip();
        self.tokenizer
            .encode_pairs(&prompts, &responses, self.recipe.training.threads)
    }

    fn text_inputs(&self, encoded: &[EncodedPair]) -> Vec<TensorInput<'static>> {
        let refs: Vec<&EncodedPair> = encoded.iter().collect();
        let b = pad_batch(&refs, self.tokenizer.pad_id());
        let mut inputs = vec![
            TensorInput::new(INPUT_IDS, b.input_ids),
            TensorInput::new(ATTENTION_MASK, b.attention_mask),
        ];
        if self.uses_token_types {
            inputs.push(TensorInput::new(TOKEN_TYPE_IDS, b.token_type_ids));
        }
        inputs
    }

    /// The graph inputs for a batch of pairs (chosen rows, then rejected rows).
    fn pair_inputs(&self, pairs: &[&Pair]) -> Result<Vec<TensorInput<'static>>> {
        let mut rows: Vec<(&str, &str)> = pairs
            .iter()
            .map(|p| (p.prompt.as_str(), p.chosen.as_str()))
            .collect();
        rows.extend(
            pairs
                .iter()
                .map(|p| (p.prompt.as_str(), p.rejected.as_str())),
        );
        let encoded = self.encode_rows(&rows)?;
        let mut inputs = self.text_inputs(&encoded);
        if let Objective::Pairwise(kind) = self.objective {
            if kind.weighted {
                let w: Array1<f32> = pairs.iter().map(|p| p.strength.unwrap_or(1.0)).collect();
                inputs.push(TensorInput::new(PAIR_WEIGHT, w));
            }
            if kind.margin {
                let scale = self.recipe.loss.margin_scale;
                let m: Array1<f32> = pairs
                    .iter()
                    .map(|p| p.strength.unwrap_or(0.0) * scale)
                    .collect();
                inputs.push(TensorInput::new(PAIR_MARGIN, m));
            }
        }
        Ok(inputs)
    }

    fn rating_inputs(&self, rows: &[&Rating]) -> Result<Vec<TensorInput<'static>>> {
        let texts: Vec<(&str, &str)> = rows
            .iter()
            .map(|r| (r.prompt.as_str(), r.response.as_str()))
            .collect();
        let encoded = self.encode_rows(&texts)?;
        let mut inputs = self.text_inputs(&encoded);
        let n_out = self.outputs.len();
        let mut targets = Array2::<f32>::zeros((rows.len(), n_out));
        let mut mask = Array2::<f32>::zeros((rows.len(), n_out));
        for (i, r) in rows.iter().enumerate() {
            for (j, v) in r.values.iter().enumerate() {
                if let Some(v) = v {
                    targets[[i, j]] = *v;
                    mask[[i, j]] = 1.0;
                }
            }
        }
        inputs.push(TensorInput::new(TARGETS, targets));
        inputs.push(TensorInput::new(TARGET_MASK, mask));
        Ok(inputs)
    }

    fn fetch_names(&self) -> Vec<&'static str> {
        match self.objective {
            Objective::Pairwise(_) => vec![LOSS, CHOSEN, REJECTED],
            Objective::Regression => vec![LOSS, SCORES_OUT],
        }
    }

    /// One optimizer step on the given examples (by index into the data).
    /// One optimizer step on the given examples, in micro-batches of
    /// `batch_size` whose gradients are summed (`grad_accum` > 1).
    fn step_on(&mut self, indices: &[usize]) -> Result<(f64, Option<f64>, f64, f64)> {
        let mut micro = Vec::new();
        for chunk in indices.chunks(self.recipe.training.batch_size.max(1)) {
            micro.push(match &self.data {
                Examples::Pairs(p) => {
                    self.pair_inputs(&chunk.iter().map(|&i| &p[i]).collect::<Vec<_>>())?
                }
                Examples::Ratings(r) => {
                    self.rating_inputs(&chunk.iter().map(|&i| &r[i]).collect::<Vec<_>>())?
                }
            });
        }
        self.update(micro)
    }

    /// Forward, backward and update on ready inputs; refuses a non-finite loss
    /// before touching the parameters.
    fn update(
        &mut self,
        micro_batches: Vec<Vec<TensorInput<'static>>>,
    ) -> Result<(f64, Option<f64>, f64, f64)> {
        let fetch = self.fetch_names();
        let k = micro_batches.len();
        let (mut loss_sum, mut right, mut pairs) = (0.0f64, 0usize, 0usize);
        for (m, inputs) in micro_batches.into_iter().enumerate() {
            let out = self.engine.forward_backward(inputs, &fetch)?;
            let loss = out[0].iter().next().copied().unwrap_or(f32::NAN) as f64;
            if !loss.is_finite() {
                let advice = if self.recipe.optimizer.clip.is_some() {
                    "lower the learning rate, or check the data's strengths"
                } else {
                    "lower the learning rate or set optimizer.clip"
                };
                return Err(Error::InvalidArgument(format!(
                    "the loss became {loss} at step {}: training stopped, the parameters of step {} are kept ({advice})",
                    self.state.step + 1,
                    self.state.step
                )));
            }
            loss_sum += loss;
            if let Objective::Pairwise(_) = self.objective {
                // Plain slices: counting through ndarray's dynamic-rank
                // iterators compiled into code that valgrind reports as a
                // branch on uninitialised stack memory.
                let (c, r) = match (out[1].as_slice(), out[2].as_slice()) {
                    (Some(c), Some(r)) if c.len() == r.len() => (c, r),
                    _ => {
                        return Err(Error::Internal(
                            "chosen and rejected rewards are not matching contiguous arrays".into(),
                        ))
                    }
                };
                right += c.iter().zip(r).filter(|(c, r)| c > r).count();
                pairs += c.len();
            }
            if k > 1 {
                self.engine.accumulate(m == 0)?;
            }
        }
        let loss = loss_sum / k.max(1) as f64;
        let accuracy = match self.objective {
            Objective::Pairwise(_) => Some(right as f64 / pairs.max(1) as f64),
            Objective::Regression => None,
        };
        let lr = self.schedule.lr_at(self.state.step);
        let t = (self.state.step + 1) as i32;
        let mut scalars = vec![(LR, lr as f32)];
        if let OptimizerKind::Adamw { beta1, beta2, .. } = self.optimizer {
            let bc1 = 1.0 - (beta1 as f64).powi(t);
            let bc2 = 1.0 - (beta2 as f64).powi(t);
            scalars.push((STEP_SIZE, (lr / bc1) as f32));
            scalars.push((INV_SQRT_BC2, (1.0 / bc2.sqrt()) as f32));
        }
        if self.recipe.training.grad_accum > 1 {
            // The summed micro-batch gradients become their mean.
            scalars.push((GRAD_SCALE, 1.0 / k.max(1) as f32));
        }
        let grad_norm = self.engine.apply_update(&scalars, k > 1)? as f64;
        self.state.step += 1;
        Ok((loss, accuracy, grad_norm, lr))
    }

    /// Train on a caller-supplied batch of pairs (online updates).
    pub fn train_on_pairs(&mut self, pairs: &[Pair]) -> Result<StepReport> {
        if pairs.is_empty() {
            return Err(Error::EmptyBatch("no pairs"));
        }
        if !matches!(self.objective, Objective::Pairwise(_)) {
            return Err(Error::InvalidArgument(
                "this trainer's loss is not pairwise".into(),
            ));
        }
        let refs: Vec<&Pair> = pairs.iter().collect();
        let inputs = self.pair_inputs(&refs)?;
        let start = Instant::now();
        let (loss, accuracy, grad_norm, lr) = self.update(vec![inputs])?;
        let secs = start.elapsed().as_secs_f64();
        Ok(StepReport {
            step: self.state.step,
            total_steps: self.state.total_steps.max(self.state.step),
            epoch: self.state.epoch,
            loss,
            accuracy,
            grad_norm,
            lr,
            examples_per_sec: pairs.len() as f64 / secs.max(1e-9),
            elapsed_secs: secs,
            eta_secs: 0.0,
            eval: None,
        })
    }

    /// Loss and gradients of every trained parameter for `pairs`, without
    /// updating anything (for checks against other implementations).
    pub fn gradients(&mut self, pairs: &[Pair]) -> Result<(f64, crate::runtime::NamedValues)> {
        let inputs = self.pair_inputs(&pairs.iter().collect::<Vec<_>>())?;
        let out = self.engine.forward_backward(inputs, &[LOSS])?;
        let loss = out[0].iter().next().copied().unwrap_or(f32::NAN) as f64;
        Ok((loss, self.engine.read_grads()?))
    }

    /// Chosen and rejected rewards of `pairs` under the current parameters,
    /// computed by the training graphs' forward pass.
    pub fn pair_rewards(&mut self, pairs: &[Pair]) -> Result<(Vec<f32>, Vec<f32>)> {
        if !matches!(self.objective, Objective::Pairwise(_)) {
            return Err(Error::InvalidArgument(
                "this trainer's loss is not pairwise".into(),
            ));
        }
        let (mut c, mut r) = (
            Vec::with_capacity(pairs.len()),
            Vec::with_capacity(pairs.len()),
        );
        for chunk in pairs.chunks(self.recipe.training.batch_size.max(1)) {
            let inputs = self.pair_inputs(&chunk.iter().collect::<Vec<_>>())?;
            let out = self.engine.evaluate(inputs, &[CHOSEN, REJECTED])?;
            c.extend(out[0].iter().copied());
            r.extend(out[1].iter().copied());
        }
        Ok((c, r))
    }

    /// Evaluate the current parameters on `data` (the eval data when None).
    pub fn evaluate(&mut self, data: Option<&Examples>) -> Result<Option<EvalMetrics>> {
        let data = match data.or(self.eval_data.as_ref()) {
            Some(d) => d.clone(),
            None => return Ok(None),
        };
        let bs = self.recipe.training.batch_size.max(1);
        let fetch = self.fetch_names();
        let (mut loss_sum, mut right, mut margin_sum, mut n) = (0.0f64, 0usize, 0.0f64, 0usize);
        for start in (0..data.len()).step_by(bs) {
            let end = (start + bs).min(data.len());
            let (inputs, count) = match &data {
                Examples::Pairs(p) => (
                    self.pair_inputs(&p[start..end].iter().collect::<Vec<_>>())?,
                    end - start,
                ),
                Examples::Ratings(r) => (
                    self.rating_inputs(&r[start..end].iter().collect::<Vec<_>>())?,
                    end - start,
                ),
            };
            let out = self.engine.evaluate(inputs, &fetch)?;
            loss_sum += out[0].iter().next().copied().unwrap_or(f32::NAN) as f64 * count as f64;
            if out.len() == 3 {
                for (c, r) in out[1].iter().zip(out[2].iter()) {
                    right += usize::from(c > r);
                    margin_sum += (c - r) as f64;
                }
            }
            n += count;
        }
        let pairs = matches!(data, Examples::Pairs(_));
        Ok(Some(EvalMetrics {
            loss: loss_sum / n.max(1) as f64,
            accuracy: pairs.then(|| right as f64 / n.max(1) as f64),
            mean_margin: pairs.then(|| margin_sum / n.max(1) as f64),
            examples: n,
        }))
    }

    /// Run until the planned number of steps (or until `on_step` says stop).
    /// Writes `metrics.jsonl` and checkpoints into `out`, and the bundle at the end.
    pub fn run(
        &mut self,
        out: &Path,
        mut on_step: impl FnMut(&StepReport) -> Control,
    ) -> Result<TrainOutcome> {
        if self.data.is_empty() {
            return Err(Error::InvalidArgument(
                "this trainer has no training data (it was made for online updates)".into(),
            ));
        }
        std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
        let metrics_path = out.join("metrics.jsonl");
        let mut metrics = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&metrics_path)
            .map_err(|e| Error::io(&metrics_path, e))?;
        let bs = self.recipe.training.batch_size * self.recipe.training.grad_accum;
        let start = Instant::now();
        let start_step = self.state.step;
        let mut last_loss = f64::NAN;
        let mut last_eval = None;
        let mut stopped_early = false;
        let mut order = self.order(self.state.epoch);
        while self.state.step < self.state.total_steps {
            if self.state.position >= order.len() {
                self.state.epoch += 1;
                self.state.position = 0;
                order = self.order(self.state.epoch);
            }
            let end = (self.state.position + bs).min(order.len());
            let indices = order[self.state.position..end].to_vec();
            let (loss, accuracy, grad_norm, lr) = self.step_on(&indices)?;
            self.state.position = end;
            last_loss = loss;
            let done = self.state.step - start_step;
            let elapsed = start.elapsed().as_secs_f64();
            let per_step = elapsed / done.max(1) as f64;
            let is_last = self.state.step >= self.state.total_steps;
            let eval = match self.recipe.training.eval_every {
                Some(k) if k > 0 && (self.state.step.is_multiple_of(k) || is_last) => {
                    self.evaluate(None)?
                }
                _ => None,
            };
            if eval.is_some() {
                last_eval = eval.clone();
            }
            let report = StepReport {
                step: self.state.step,
                total_steps: self.state.total_steps,
                epoch: self.state.epoch,
                loss,
                accuracy,
                grad_norm,
                lr,
                examples_per_sec: (done as f64 * bs as f64) / elapsed.max(1e-9),
                elapsed_secs: elapsed,
                eta_secs: per_step * (self.state.total_steps - self.state.step) as f64,
                eval,
            };
            use std::io::Write;
            writeln!(
                metrics,
                "{}",
                serde_json::to_string(&report).unwrap_or_default()
            )
            .map_err(|e| Error::io(&metrics_path, e))?;
            let control = on_step(&report);
            let due = self
                .recipe
                .training
                .checkpoint_every
                .is_some_and(|k| k > 0 && self.state.step.is_multiple_of(k));
            if due || control == Control::Stop {
                self.save_checkpoint(out)?;
            }
            if control == Control::Stop {
                stopped_early = true;
                break;
            }
        }
        if !stopped_early {
            if self.recipe.training.eval_every.is_none() && self.eval_data.is_some() {
                last_eval = self.evaluate(None)?;
            }
            self.save_checkpoint(out)?;
            self.write_bundle(out, last_eval.as_ref())?;
        }
        Ok(TrainOutcome {
            steps: self.state.step,
            last_loss,
            eval: last_eval,
            stopped_early,
        })
    }

    /// Write a checkpoint (parameters, optimizer state, position) into `out/checkpoint`.
    pub fn save_checkpoint(&self, out: &Path) -> Result<()> {
        // On the CPU the checkpoint is written straight from the engine's
        // buffers, with no copy of the model or its state.
        checkpoint::save(
            out,
            &self.state,
            &self.recipe.to_toml(),
            &self.engine.param_views()?,
            &self.engine.state_views()?,
        )
    }

    /// Continue from the checkpoint in `dir`: parameters, optimizer state and
    /// data position. The recipe must be the one the checkpoint was made with.
    pub fn resume(&mut self, dir: &Path) -> Result<()> {
        let ck = checkpoint::load(dir)?;
        if !self.recipe.resumes(&ck.recipe) {
            return Err(Error::InvalidArgument(format!(
                "{}: the checkpoint was made with a different recipe",
                dir.display()
            )));
        }
        self.engine.write_state(&ck.params, &ck.optimizer)?;
        self.state = ck.state;
        Ok(())
    }

    /// The bundle's graph with the current weights: ONNX Runtime's fused ops
    /// for BERT-family backbones unless the recipe asks for a portable graph
    /// (`model.portable`), standard ops otherwise.
    pub fn inference_model(&self) -> Result<ModelProto> {
        let model = self.standard_inference_model()?;
        if self.recipe.model.portable || self.backbone.is_decoder() {
            return Ok(model);
        }
        self.backbone.rebuild(
            model,
            Path::new("the trained model"),
            self.pooling,
            Some(self.tokenizer.max_length()),
            true,
        )
    }

    /// The standard-op inference graph the training graphs were derived
    /// from, with the current weights.
    pub fn standard_inference_model(&self) -> Result<ModelProto> {
        let mut model = self.graphs_inference.clone();
        // Views of the engine's buffers (copies only from a GPU, each freed
        // once it is in the model).
        let mut params: std::collections::HashMap<&str, std::borrow::Cow<'_, [f32]>> =
            self.engine.param_views()?.into_iter().collect();
        if let Some(g) = model.graph.as_mut() {
            for t in g.initializer.iter_mut() {
                if let Some(v) = params.remove(t.name()) {
                    t.raw_data = Some(v.iter().flat_map(|x| x.to_le_bytes()).collect());
                    t.float_data.clear();
                }
            }
        }
        if let Some(name) = params.keys().next() {
            return Err(Error::Internal(format!(
                "trained parameter {name} is not an initializer of the inference graph"
            )));
        }
        Ok(model)
    }

    /// Write the bundle files into `out` (model, tokenizer, then manifest).
    pub fn write_bundle(&self, out: &Path, eval: Option<&EvalMetrics>) -> Result<Bundle> {
        let mut metrics = serde_json::Map::new();
        metrics.insert("steps".into(), serde_json::json!(self.state.step));
        if let Some(e) = eval {
            metrics.insert("eval".into(), serde_json::to_value(e).unwrap_or_default());
        }
        if !self.summaries.is_empty() {
            let s: Vec<serde_json::Value> = self
                .summaries
                .iter()
                .map(|s| serde_json::json!({"path": s.path.display().to_string(), "rows": s.rows, "skipped": s.skipped.len(), "ties": s.ties}))
                .collect();
            metrics.insert("data".into(), serde_json::json!(s));
        }
        let manifest = Manifest {
            format: FORMAT_NAME.into(),
            format_version: FORMAT_VERSION,
            architecture: Architecture {
                family: self.backbone.family().to_string(),
                config: self.config_json.clone(),
            },
            inputs: self.backbone.inputs(),
            outputs: self.outputs.clone(),
            reward_output: self.outputs[self.reward_index].clone(),
            reward_weights: self.recipe.model.reward_weights.clone(),
            pooling: self.pooling,
            max_length: self.tokenizer.max_length(),
            text: self.text.clone(),
            normalization: None,
            quantization: None,
            provenance: Provenance {
                created_by: format!("rewardkit {}", env!("CARGO_PKG_VERSION")),
                recipe: if self.recipe.name.is_empty() {
                    format!("{:?}", self.recipe.loss.kind).to_lowercase()
                } else {
                    self.recipe.name.clone()
                },
                backbone: None,
                seed: Some(self.recipe.training.seed),
                data_digest: self.data_digest.clone(),
                metrics,
            },
            files: None,
        };
        crate::bundle::write_bundle_files(
            out,
            &manifest,
            &self.inference_model()?,
            &self.tokenizer_json,
        )
    }
}
