use std::path::Path;

use ndarray::Array2;

use crate::bundle::Bundle;
use crate::error::{Error, Result};
use crate::model::bert::SCORES;
use crate::runtime::{Device, ModelRunner, RunnerOptions, TensorInput};
use crate::text::{pad_batch, EncodedPair, PairTokenizer};

/// Default token budget per run on the CPU. Runs of about 2048 padded
/// tokens keep a layer's activations in cache: for MiniLM on 2 cores, 32
/// pairs of 256 tokens scored 10% faster as four runs of 8 than as one run
/// of 32 (and 4 × 512 tokens 6% faster than 16 × 512); below 2048 the gain
/// stops (same process, alternating, onnxruntime-python on the bundle).
pub const DEFAULT_MAX_TOKENS: usize = 2048;

/// Default token budget per run on CUDA: 32 pairs of 512 tokens (a GPU
/// wants large runs).
pub const DEFAULT_MAX_TOKENS_CUDA: usize = 32 * 512;

/// Options for opening a [`Scorer`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ScorerOptions {
    /// Intra-op threads per session; 0 = one per core.
    pub threads: usize,
    /// Most pairs run through the model at once.
    pub max_batch: usize,
    /// Most padded tokens (pairs × longest pair) in one run; `Some(0)` = no
    /// limit beyond `max_batch`; `None` = the device's default
    /// ([`DEFAULT_MAX_TOKENS`] on the CPU, [`DEFAULT_MAX_TOKENS_CUDA`] on
    /// CUDA). Long pairs then go in smaller runs, which bounds the
    /// activations' memory whatever the bundle's `max_length`. A pair longer
    /// than the budget still runs, alone.
    pub max_tokens: Option<usize>,
    /// Longest encoded pair; `None` = the bundle's `max_length`. May only lower it.
    pub max_length: Option<usize>,
    pub device: Device,
    /// Sessions that may run concurrently when several threads score at once.
    /// Each extra session holds another copy of the weights.
    pub max_sessions: usize,
    /// Check the bundle's files against the digests in its manifest (default
    /// true; false skips hashing for large bundles from a trusted place).
    pub verify_files: bool,
}

impl Default for ScorerOptions {
    fn default() -> Self {
        ScorerOptions {
            threads: 0,
            max_batch: 32,
            max_tokens: None,
            max_length: None,
            device: Device::Cpu,
            max_sessions: 1,
            verify_files: true,
        }
    }
}

impl ScorerOptions {
    pub fn with_threads(mut self, threads: usize) -> Self {
        self.threads = threads;
        self
    }
    pub fn with_max_batch(mut self, max_batch: usize) -> Self {
        self.max_batch = max_batch;
        self
    }
    pub fn with_max_tokens(mut self, max_tokens: usize) -> Self {
        self.max_tokens = Some(max_tokens);
        self
    }
    pub fn with_max_length(mut self, max_length: usize) -> Self {
        self.max_length = Some(max_length);
        self
    }
    pub fn with_device(mut self, device: Device) -> Self {
        self.device = device;
        self
    }
    pub fn with_verify_files(mut self, verify: bool) -> Self {
        self.verify_files = verify;
        self
    }
    pub fn with_max_sessions(mut self, max_sessions: usize) -> Self {
        self.max_sessions = max_sessions;
        self
    }
}

/// Scores (prompt, response) pairs with a bundle's reward model.
///
/// `Scorer` is `Send + Sync`: share one across threads (`&self` everywhere).
/// Concurrent calls run on up to `max_sessions` sessions at once and wait for
/// a free one beyond that.
#[derive(Debug)]
pub struct Scorer {
    bundle: Bundle,
    tokenizer: PairTokenizer,
    runner: ModelRunner,
    max_batch: usize,
    max_tokens: usize,
    /// Threads for tokenizing (the intra-op thread count; 0 = one per core).
    threads: usize,
    reward_index: usize,
    uses_token_types: bool,
}

impl Scorer {
    /// Open the bundle at `dir` and load its model.
    pub fn open(dir: impl AsRef<Path>, options: ScorerOptions) -> Result<Self> {
        let bundle = Bundle::open_with(dir, options.verify_files)?;
        // Before ONNX Runtime reads the model: external data stays inside
        // the bundle, and stored tensor sizes match their shapes.
        crate::bundle::integrity::check_model(bundle.dir(), crate::bundle::MODEL_FILE)?;
        let manifest = bundle.manifest();
        if options.max_batch == 0 {
            return Err(Error::InvalidArgument(
                "max_batch must be at least 1".into(),
            ));
        }
        let max_length = match options.max_length {
            None => manifest.max_length,
            Some(n) if n <= manifest.max_length => n,
            Some(n) => {
                return Err(Error::InvalidArgument(format!(
                    "max_length {n} exceeds the bundle's max_length {}",
                    manifest.max_length
                )))
            }
        };
        let tok_path = bundle.tokenizer_path();
        let tokenizer = PairTokenizer::from_file(&tok_path, max_length).map_err(|e| match e {
            Error::Tokenizer { msg, .. } => {
                Error::bundle(bundle.dir(), format!("tokenizer.json: {msg}"))
            }
            other => other,
        })?;
        let tokenizer = tokenizer.with_mode(manifest.text.to_mode()?)?;
        let runner = ModelRunner::open(
            &bundle.model_path(),
            RunnerOptions {
                threads: options.threads,
                device: options.device,
                max_sessions: options.max_sessions,
                low_memory: false,
            },
        )?;
        // The manifest and the graph must agree.
        let out_idx = runner
            .output_names()
            .iter()
            .position(|n| n == SCORES)
            .ok_or_else(|| {
                Error::bundle(
                    bundle.dir(),
                    format!(
                        "model.onnx has no output named {SCORES:?} (outputs: {:?})",
                        runner.output_names()
                    ),
                )
            })?;
        let dims = runner.output_dims(out_idx).unwrap_or(&[]);
        match dims {
            [_, Some(n)] if *n as usize == manifest.outputs.len() => {}
            [_, Some(n)] => {
                return Err(Error::bundle(
                    bundle.dir(),
                    format!(
                    "model.onnx outputs {n} scores per pair but rewardkit.json names {} outputs",
                    manifest.outputs.len()
                ),
                ))
            }
            _ => {
                return Err(Error::bundle(
                    bundle.dir(),
                    format!(
                        "model.onnx output {SCORES:?} has shape {dims:?}, expected [batch, {}]",
                        manifest.outputs.len()
                    ),
                ))
            }
        }
        for input in runner.input_names() {
            if !manifest.inputs.contains(input) {
                return Err(Error::bundle(
                    bundle.dir(),
                    format!("model.onnx takes input {input:?} that rewardkit.json does not list"),
                ));
            }
        }
        let uses_token_types = runner
            .input_names()
            .iter()
            .any(|n| n == crate::model::bert::TOKEN_TYPE_IDS);
        let reward_index = manifest.reward_index();
        Ok(Scorer {
            bundle,
            tokenizer,
            runner,
            max_batch: options.max_batch,
            threads: options.threads,
            max_tokens: options
                .max_tokens
                .unwrap_or_else(|| default_max_tokens(options.device)),
            reward_index,
            uses_token_types,
        })
    }

    /// The bundle this scorer was opened from.
    pub fn bundle(&self) -> &Bundle {
        &self.bundle
    }

    /// Names of the model's outputs (`["reward"]`, or the HelpSteer2 attributes).
    pub fn output_names(&self) -> &[String] {
        &self.bundle.manifest().outputs
    }

    /// Index of the reward among [`output_names`](Self::output_names). When
    /// the bundle has [`reward_weights`](Self::reward_weights), the reward is
    /// their combination instead.
    pub fn reward_index(&self) -> usize {
        self.reward_index
    }

    /// The reward of one row of [`score_batch_outputs`](Self::score_batch_outputs):
    /// the reward output, or the weighted sum when the bundle has weights.
    pub fn reward_of(&self, outputs: &[f32]) -> f32 {
        match &self.bundle.manifest().reward_weights {
            Some(w) => outputs.iter().zip(w).map(|(s, w)| s * w).sum(),
            None => outputs[self.reward_index],
        }
    }

    /// Weights combining all outputs into the reward, if the bundle has them.
    pub fn reward_weights(&self) -> Option<&[f32]> {
        self.bundle.manifest().reward_weights.as_deref()
    }

    /// The tokenizer in use.
    pub fn tokenizer(&self) -> &PairTokenizer {
        &self.tokenizer
    }

    /// The reward for one pair.
    pub fn score(&self, prompt: &str, response: &str) -> Result<f32> {
        Ok(self.score_batch(&[prompt], &[response])?[0])
    }

    /// The rewards for a batch of pairs, in input order.
    pub fn score_batch<P: AsRef<str>, R: AsRef<str>>(
        &self,
        prompts: &[P],
        responses: &[R],
    ) -> Result<Vec<f32>> {
        let all = self.score_batch_outputs(prompts, responses)?;
        Ok(all
            .rows()
            .into_iter()
            .map(|row| match row.as_slice() {
                Some(r) => self.reward_of(r),
                None => self.reward_of(&row.to_vec()),
            })
            .collect())
    }

    /// Every output for a batch of pairs: `[n, n_outputs]`, in input order.
    ///
    /// Pairs are encoded, sorted by length and run in chunks of at most
    /// `max_batch`, so similar lengths share a batch and padding stays small.
    pub fn score_batch_outputs<P: AsRef<str>, R: AsRef<str>>(
        &self,
        prompts: &[P],
        responses: &[R],
    ) -> Result<Array2<f32>> {
        if prompts.len() != responses.len() {
            return Err(Error::LengthMismatch {
                what: "prompts vs responses",
                left: prompts.len(),
                right: responses.len(),
            });
        }
        let n_out = self.output_names().len();
        let mut result = Array2::zeros((prompts.len(), n_out));
        if prompts.is_empty() {
            return Ok(result);
        }
        let prompts: Vec<&str> = prompts.iter().map(AsRef::as_ref).collect();
        let responses: Vec<&str> = responses.iter().map(AsRef::as_ref).collect();
        let encoded = self
            .tokenizer
            .encode_pairs(&prompts, &responses, self.threads)?;
        let mut order: Vec<usize> = (0..encoded.len()).collect();
        order.sort_by_key(|&i| encoded[i].len());
        let lengths: Vec<usize> = order.iter().map(|&i| encoded[i].len()).collect();
        let mut start = 0;
        for end in run_ends(&lengths, self.max_batch, self.max_tokens) {
            let chunk = &order[start..end];
            start = end;
            let pairs: Vec<&EncodedPair> = chunk.iter().map(|&i| &encoded[i]).collect();
            let scores = self.run(&pairs)?;
            for (row, &i) in chunk.iter().enumerate() {
                result.row_mut(i).assign(&scores.row(row));
            }
        }
        if let Some(norm) = &self.bundle.manifest().normalization {
            for mut row in result.rows_mut() {
                for (j, v) in row.iter_mut().enumerate() {
                    *v = (*v - norm.mean[j]) / norm.std[j];
                }
            }
        }
        Ok(result)
    }

    /// σ(r_a − r_b): the model's probability that `response_a` is better.
    pub fn compare(&self, prompt: &str, response_a: &str, response_b: &str) -> Result<f32> {
        let r = self.score_batch(&[prompt, prompt], &[response_a, response_b])?;
        Ok(sigmoid(r[0] - r[1]))
    }

    fn run(&self, pairs: &[&EncodedPair]) -> Result<Array2<f32>> {
        let batch = pad_batch(pairs, self.tokenizer.pad_id());
        let mut inputs = vec![
            TensorInput::new(crate::model::bert::INPUT_IDS, batch.input_ids),
            TensorInput::new(crate::model::bert::ATTENTION_MASK, batch.attention_mask),
        ];
        if self.uses_token_types {
            inputs.push(TensorInput::new(
                crate::model::bert::TOKEN_TYPE_IDS,
                batch.token_type_ids,
            ));
        }
        let out = self.runner.run(inputs, &[SCORES])?;
        let scores = out
            .into_iter()
            .next()
            .ok_or_else(|| Error::Internal("no scores returned".into()))?
            .into_dimensionality::<ndarray::Ix2>()
            .map_err(|e| {
                Error::model(
                    self.bundle.model_path().display().to_string(),
                    format!("scores are not 2-D: {e}"),
                )
            })?;
        if scores.nrows() != pairs.len() || scores.ncols() != self.output_names().len() {
            return Err(Error::model(
                self.bundle.model_path().display().to_string(),
                format!(
                    "scores have shape {:?}, expected [{}, {}]",
                    scores.shape(),
                    pairs.len(),
                    self.output_names().len()
                ),
            ));
        }
        Ok(scores)
    }
}

/// What one more model run costs, in padded tokens of work: the per-run
/// overhead and the lower matmul efficiency of a smaller batch. Splitting a
/// run pays when it saves more padding than this.
const RUN_COST_TOKENS: usize = 64;

/// The token budget per run when [`ScorerOptions::max_tokens`] is `None`.
fn default_max_tokens(device: Device) -> usize {
    match device {
        Device::Cpu => DEFAULT_MAX_TOKENS,
        Device::Cuda(_) => DEFAULT_MAX_TOKENS_CUDA,
    }
}

/// Most pairs in one run whatever `max_batch` says, which bounds the work of
/// choosing the runs (it looks at every run length up to this).
const MAX_RUN_PAIRS: usize = 4096;

/// Split pairs sorted by ascending length into runs of at most `max_batch`
/// pairs and `max_tokens` padded tokens (pairs × the run's longest, its last;
/// 0 = no token limit), choosing the split that computes the fewest padded
/// tokens plus [`RUN_COST_TOKENS`] per run. Returns each run's end index.
/// Every run holds at least one pair; a pair over the budget runs alone.
fn run_ends(sorted_lengths: &[usize], max_batch: usize, max_tokens: usize) -> Vec<usize> {
    let n = sorted_lengths.len();
    // best[j]: the cheapest split of the first j pairs; from[j]: where its last run starts.
    let mut best = vec![usize::MAX; n + 1];
    let mut from = vec![0; n + 1];
    best[0] = 0;
    for j in 1..=n {
        let longest = sorted_lengths[j - 1].max(1);
        for count in 1..=max_batch.min(j).min(MAX_RUN_PAIRS) {
            let tokens = count * longest;
            if count > 1 && max_tokens > 0 && tokens > max_tokens {
                break;
            }
            let i = j - count;
            let cost = best[i].saturating_add(tokens + RUN_COST_TOKENS);
            if cost < best[j] {
                best[j] = cost;
                from[j] = i;
            }
        }
    }
    let mut ends = Vec::new();
    let mut j = n;
    while j > 0 {
        ends.push(j);
        j = from[j];
    }
    ends.reverse();
    ends
}

/// The logistic function, stable for large |x|.
pub(crate) fn sigmoid(x: f32) -> f32 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_budget_defaults_by_device() {
        assert_eq!(ScorerOptions::default().max_tokens, None);
        assert_eq!(default_max_tokens(Device::Cpu), 2048);
        assert_eq!(default_max_tokens(Device::Cuda(1)), 32 * 512);
        // 256-token pairs: the CPU default splits 32 of them into runs of 8.
        let lengths = vec![256; 32];
        let ends = run_ends(&lengths, 32, default_max_tokens(Device::Cpu));
        assert_eq!(ends, vec![8, 16, 24, 32]);
        let ends = run_ends(&lengths, 32, default_max_tokens(Device::Cuda(0)));
        assert_eq!(ends, vec![32]);
        assert_eq!(
            ScorerOptions::default().with_max_tokens(0).max_tokens,
            Some(0)
        );
    }

    /// The runs `run_ends` makes, as slices of `lengths`.
    fn runs(lengths: &[usize], max_batch: usize, max_tokens: usize) -> Vec<Vec<usize>> {
        let mut start = 0;
        run_ends(lengths, max_batch, max_tokens)
            .into_iter()
            .map(|end| {
                let run = lengths[start..end].to_vec();
                start = end;
                run
            })
            .collect()
    }

    #[test]
    fn runs_respect_the_pair_and_token_limits() {
        let lengths = [10, 10, 10, 30, 40, 50, 60, 200, 300, 300, 301];
        for (max_batch, max_tokens) in [(4, 100), (3, 0), (32, 16384), (1, 0), (5, 1)] {
            let rs = runs(&lengths, max_batch, max_tokens);
            assert_eq!(rs.concat(), lengths, "every pair once, in order");
            for r in &rs {
                assert!(!r.is_empty() && r.len() <= max_batch, "{r:?}");
                let padded = r.len() * r[r.len() - 1];
                assert!(
                    r.len() == 1 || max_tokens == 0 || padded <= max_tokens,
                    "{r:?}"
                );
            }
        }
        // Uniform lengths and no budget: the fewest runs.
        assert_eq!(runs(&[5; 7], 3, 0).len(), 3);
        assert!(run_ends(&[], 4, 100).is_empty());
    }

    #[test]
    fn runs_split_where_padding_costs_more_than_a_run() {
        // Eight short and eight long pairs: one run would pad the short ones
        // by 490 tokens each, so they run apart.
        let mut lengths = vec![10; 8];
        lengths.extend([500; 8]);
        assert_eq!(runs(&lengths, 32, 0), vec![vec![10; 8], vec![500; 8]]);
        // Nearly equal lengths stay together.
        assert_eq!(runs(&[100, 101, 102, 103], 32, 0).len(), 1);
    }

    #[test]
    fn sigmoid_is_stable() {
        assert_eq!(sigmoid(0.0), 0.5);
        assert!((sigmoid(100.0) - 1.0).abs() < 1e-6);
        assert!(sigmoid(-100.0) >= 0.0 && sigmoid(-100.0) < 1e-6);
        assert!(!sigmoid(-1000.0).is_nan());
    }

    #[test]
    fn scorer_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Scorer>();
    }
}
