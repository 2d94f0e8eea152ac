//! Decoder-only (Llama, Mistral, Qwen2) reward models as ONNX graphs:
//! token embeddings, pre-RMSNorm transformer blocks with rotary position
//! embeddings and grouped-query attention, a SwiGLU feed-forward block, a
//! final RMSNorm, pooling at the last real token of each row, and a linear
//! reward head — the computation of transformers' `*ForSequenceClassification`.
//!
//! Initializers keep the checkpoint's tensor names and layouts
//! (`model.layers.N.self_attn.q_proj.weight`, `[out, in]` linear weights used
//! through a `Transpose` that ONNX Runtime folds at load time), so a graph
//! maps back onto its checkpoint one to one. The rotary cos/sin tables are
//! computed here and stored as two more (non-trainable) initializers,
//! [`ROTARY_COS`] and [`ROTARY_SIN`].
//!
//! Every op between a weight and `scores` has a gradient rule in
//! [`crate::autodiff::rules`], so the graph trains as it is; positions, masks
//! and the pooling index use other standard ops on paths that carry no
//! gradient.

use std::path::Path;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::onnx::builder::{model, tensor_as, Attr, Dim, GraphBuilder};
use crate::onnx::proto::data_type::{FLOAT, INT64};
use crate::onnx::ModelProto;

use super::bert::{ATTENTION_MASK, INPUT_IDS};
use super::head::RewardHead;
use super::weights::Weights;

/// The `model_type`s this module builds.
pub const SUPPORTED_MODEL_TYPES: &[&str] = &["llama", "mistral", "qwen2"];

/// Initializer holding the rotary cosines, `[positions, head_dim]` (not trained).
pub const ROTARY_COS: &str = "rotary_emb.cos";
/// Initializer holding the rotary sines, `[positions, head_dim]` (not trained).
pub const ROTARY_SIN: &str = "rotary_emb.sin";

/// Additive attention bias for masked keys (padding, future tokens, keys
/// outside a sliding window). Small enough for fp16, large enough that `exp`
/// underflows to exactly 0 in fp32. A row with every key masked gets a
/// uniform (finite) distribution, never NaN.
const MASK_BIAS: f32 = -10000.0;

/// The most layers a config may declare.
pub const MAX_LAYERS: usize = 1024;

/// How rotary frequencies are rescaled for longer contexts.
#[derive(Debug, Clone, PartialEq)]
pub enum RopeScaling {
    /// Positions divided by `factor` (`rope_type: "linear"`).
    Linear { factor: f64 },
    /// Llama 3.1's frequency-dependent scaling (`rope_type: "llama3"`).
    Llama3 {
        factor: f64,
        low_freq_factor: f64,
        high_freq_factor: f64,
        original_max_position_embeddings: usize,
    },
}

/// The fields of a Llama / Mistral / Qwen2 `config.json` that the graph
/// depends on, resolved (defaults applied, per-family rules folded in).
#[derive(Debug, Clone, PartialEq)]
pub struct DecoderConfig {
    /// `llama`, `mistral` or `qwen2`.
    pub model_type: String,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    /// Heads of keys and values (grouped-query attention); defaults to
    /// `num_attention_heads`.
    pub num_key_value_heads: usize,
    /// Size of one attention head (`head_dim`, or hidden / heads).
    pub head_dim: usize,
    pub rms_norm_eps: f64,
    /// Base of the rotary frequencies (default 10000).
    pub rope_theta: f64,
    pub max_position_embeddings: usize,
    pub rope_scaling: Option<RopeScaling>,
    /// Biases on the q/k/v projections (Llama `attention_bias`; always for Qwen2).
    pub qkv_bias: bool,
    /// A bias on the output projection (Llama `attention_bias`).
    pub o_bias: bool,
    /// Biases on the feed-forward projections (Llama `mlp_bias`).
    pub mlp_bias: bool,
    /// Keys a query may see in sliding-window layers: itself and the
    /// `window - 1` tokens before it. None: no sliding window anywhere.
    pub sliding_window: Option<usize>,
    /// Which layers use the sliding window (`num_hidden_layers` entries).
    pub sliding_layers: Vec<bool>,
    pub pad_token_id: Option<i64>,
}

/// A JSON config reader whose errors name the file and the field.
struct Fields<'a> {
    v: &'a Value,
    path: &'a Path,
}

impl Fields<'_> {
    fn err(&self, msg: String) -> Error {
        Error::backbone(self.path, msg)
    }

    /// The field, with JSON `null` treated as absent.
    fn get(&self, key: &str) -> Option<&Value> {
        self.v.get(key).filter(|x| !x.is_null())
    }

    fn opt_usize(&self, key: &str) -> Result<Option<usize>> {
        match self.get(key) {
            None => Ok(None),
            Some(x) => x.as_u64().map(|n| Some(n as usize)).ok_or_else(|| {
                self.err(format!("{key} must be a non-negative integer, found {x}"))
            }),
        }
    }

    fn usize(&self, key: &str) -> Result<usize> {
        self.opt_usize(key)?
            .ok_or_else(|| self.err(format!("config.json lacks {key}")))
    }

    fn opt_f64(&self, key: &str) -> Result<Option<f64>> {
        match self.get(key) {
            None => Ok(None),
            Some(x) => x
                .as_f64()
                .map(Some)
                .ok_or_else(|| self.err(format!("{key} must be a number, found {x}"))),
        }
    }

    fn opt_bool(&self, key: &str) -> Result<Option<bool>> {
        match self.get(key) {
            None => Ok(None),
            Some(x) => x
                .as_bool()
                .map(Some)
                .ok_or_else(|| self.err(format!("{key} must be true or false, found {x}"))),
        }
    }

    fn opt_str(&self, key: &str) -> Result<Option<&str>> {
        match self.get(key) {
            None => Ok(None),
            Some(x) => x
                .as_str()
                .map(Some)
                .ok_or_else(|| self.err(format!("{key} must be a string, found {x}"))),
        }
    }
}

/// Rotary settings from `rope_parameters` (transformers 5 writes
/// `{"rope_type", "rope_theta", ...}` there) or the older `rope_scaling` +
/// top-level `rope_theta`.
fn parse_rope(f: &Fields<'_>, max_pos: usize) -> Result<(f64, Option<RopeScaling>)> {
    let (key, params) = match (f.get("rope_parameters"), f.get("rope_scaling")) {
        (Some(p), _) => ("rope_parameters", Some(p)),
        (None, Some(p)) => ("rope_scaling", Some(p)),
        (None, None) => ("rope_parameters", None),
    };
    let empty = Value::Object(Default::default());
    let params = params.unwrap_or(&empty);
    if !params.is_object() {
        return Err(f.err(format!("{key} must be an object, found {params}")));
    }
    let p = Fields {
        v: params,
        path: f.path,
    };
    // Nested per-layer-type parameters (`{"full_attention": {...}, ...}`)
    // belong to other architectures.
    if let Some(obj) = params.as_object() {
        if let Some((k, _)) = obj.iter().find(|(_, v)| v.is_object()) {
            return Err(f.err(format!(
                "{key} holds per-layer-type parameters ({k:?}), which llama, mistral and qwen2 \
                 do not use"
            )));
        }
    }
    let rope_type = match p.opt_str("rope_type")? {
        Some(t) => t,
        None => p.opt_str("type")?.unwrap_or("default"),
    };
    let theta = match p.opt_f64("rope_theta")? {
        Some(t) => t,
        None => f.opt_f64("rope_theta")?.unwrap_or(10000.0),
    };
    if !(theta.is_finite() && theta > 0.0) {
        return Err(f.err(format!("rope_theta must be positive, found {theta}")));
    }
    let partial = match p.opt_f64("partial_rotary_factor")? {
        Some(v) => Some(v),
        None => f.opt_f64("partial_rotary_factor")?,
    };
    if let Some(v) = partial.filter(|&v| v != 1.0) {
        return Err(f.err(format!(
            "partial_rotary_factor {v} is not supported (only 1.0, rotary over the whole head)"
        )));
    }
    let factor = |name: &str| -> Result<f64> {
        let v = p
            .opt_f64(name)?
            .ok_or_else(|| f.err(format!("{key} of rope_type {rope_type:?} lacks {name}")))?;
        if !(v.is_finite() && v > 0.0) {
            return Err(f.err(format!("{key}.{name} must be positive, found {v}")));
        }
        Ok(v)
    };
    let scaling = match rope_type {
        "default" => None,
        "linear" => Some(RopeScaling::Linear {
            factor: factor("factor")?,
        }),
        "llama3" => {
            let low = factor("low_freq_factor")?;
            let high = factor("high_freq_factor")?;
            if high <= low {
                return Err(f.err(format!(
                    "{key}: high_freq_factor ({high}) must be greater than low_freq_factor ({low})"
                )));
            }
            // transformers gives a top-level original_max_position_embeddings priority.
            let original = match f.opt_usize("original_max_position_embeddings")? {
                Some(v) => v,
                None => p
                    .opt_usize("original_max_position_embeddings")?
                    .unwrap_or(max_pos),
            };
            if original == 0 {
                return Err(f.err(format!(
                    "{key}.original_max_position_embeddings must be positive"
                )));
            }
            Some(RopeScaling::Llama3 {
                factor: factor("factor")?,
                low_freq_factor: low,
                high_freq_factor: high,
                original_max_position_embeddings: original,
            })
        }
        other => {
            return Err(f.err(format!(
                "unsupported rope_type {other:?} in {key} (supported: default, linear, llama3)"
            )))
        }
    };
    Ok((theta, scaling))
}

impl DecoderConfig {
    /// Read and validate `config.json`.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let value: Value = serde_json::from_str(&text)
            .map_err(|e| Error::backbone(path, format!("config.json is not valid JSON: {e}")))?;
        Self::from_json(&value, path)
    }

    /// Parse and validate a config from JSON; `path` names it in errors.
    pub fn from_json(value: &Value, path: &Path) -> Result<Self> {
        let f = Fields { v: value, path };
        if !value.is_object() {
            return Err(f.err("config.json must hold a JSON object".into()));
        }
        let model_type = f.opt_str("model_type")?.ok_or_else(|| {
            f.err(format!(
                "config.json lacks model_type (supported: {})",
                SUPPORTED_MODEL_TYPES.join(", ")
            ))
        })?;
        if !SUPPORTED_MODEL_TYPES.contains(&model_type) {
            return Err(f.err(format!(
                "unsupported model_type {model_type:?} for a decoder (supported: {})",
                SUPPORTED_MODEL_TYPES.join(", ")
            )));
        }
        let act = f.opt_str("hidden_act")?.unwrap_or("silu");
        if act != "silu" {
            return Err(f.err(format!(
                "hidden_act {act:?} is not supported for {model_type} (only \"silu\")"
            )));
        }
        let hidden_size = f.usize("hidden_size")?;
        let num_attention_heads = f.usize("num_attention_heads")?;
        let num_hidden_layers = f.usize("num_hidden_layers")?;
        // Per-layer tables are allocated from this count: bound it before
        // anything is (the deepest released models have ~130 layers).
        if num_hidden_layers > MAX_LAYERS {
            return Err(f.err(format!(
                "num_hidden_layers {num_hidden_layers} is more than rewardkit builds ({MAX_LAYERS})"
            )));
        }
        let num_key_value_heads = f
            .opt_usize("num_key_value_heads")?
            .unwrap_or(num_attention_heads);
        let explicit_head_dim = f.opt_usize("head_dim")?;
        let max_position_embeddings = f.usize("max_position_embeddings")?;
        let (rope_theta, rope_scaling) = parse_rope(&f, max_position_embeddings)?;

        let (qkv_bias, o_bias, mlp_bias) = match model_type {
            "llama" => {
                let attn = f.opt_bool("attention_bias")?.unwrap_or(false);
                (attn, attn, f.opt_bool("mlp_bias")?.unwrap_or(false))
            }
            "qwen2" => (true, false, false),
            _ => (false, false, false),
        };
        let window = f.opt_usize("sliding_window")?;
        let (sliding_window, sliding_layers) = match model_type {
            "mistral" => (window, vec![window.is_some(); num_hidden_layers]),
            "qwen2" => {
                let window = if f.opt_bool("use_sliding_window")?.unwrap_or(false) {
                    window
                } else {
                    None
                };
                let layers = match f.get("layer_types") {
                    Some(Value::Array(types)) => {
                        if types.len() != num_hidden_layers {
                            return Err(f.err(format!(
                                "layer_types has {} entries, expected num_hidden_layers = {}",
                                types.len(),
                                num_hidden_layers
                            )));
                        }
                        types
                            .iter()
                            .map(|t| match t.as_str() {
                                Some("full_attention") => Ok(false),
                                Some("sliding_attention") => Ok(window.is_some()),
                                _ => Err(f.err(format!(
                                    "layer_types entry {t} is not \"full_attention\" or \
                                     \"sliding_attention\""
                                ))),
                            })
                            .collect::<Result<Vec<bool>>>()?
                    }
                    Some(other) => {
                        return Err(f.err(format!(
                            "layer_types must be a list of strings, found {other}"
                        )))
                    }
                    None => {
                        // transformers' rule: layers from max_window_layers on slide.
                        let first = f.opt_usize("max_window_layers")?.unwrap_or(28);
                        (0..num_hidden_layers)
                            .map(|l| window.is_some() && l >= first)
                            .collect()
                    }
                };
                let window = window.filter(|_| layers.iter().any(|&s| s));
                (window, layers)
            }
            _ => (None, vec![false; num_hidden_layers]),
        };
        let pad_token_id = match f.get("pad_token_id") {
            None => None,
            Some(x) => Some(
                x.as_i64()
                    .ok_or_else(|| f.err(format!("pad_token_id must be an integer, found {x}")))?,
            ),
        };

        let cfg = DecoderConfig {
            model_type: model_type.to_string(),
            vocab_size: f.usize("vocab_size")?,
            hidden_size,
            intermediate_size: f.usize("intermediate_size")?,
            num_hidden_layers,
            num_attention_heads,
            num_key_value_heads,
            head_dim: explicit_head_dim
                .unwrap_or_else(|| hidden_size.checked_div(num_attention_heads).unwrap_or(0)),
            rms_norm_eps: f.opt_f64("rms_norm_eps")?.unwrap_or(1e-6),
            rope_theta,
            max_position_embeddings,
            rope_scaling,
            qkv_bias,
            o_bias,
            mlp_bias,
            sliding_window,
            sliding_layers,
            pad_token_id,
        };
        cfg.validate(path, explicit_head_dim.is_some())?;
        Ok(cfg)
    }

    fn validate(&self, path: &Path, explicit_head_dim: bool) -> Result<()> {
        let bad = |msg: String| Err(Error::backbone(path, msg));
        for (name, v) in [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("intermediate_size", self.intermediate_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("num_key_value_heads", self.num_key_value_heads),
            ("max_position_embeddings", self.max_position_embeddings),
        ] {
            if v == 0 {
                return bad(format!("{name} must be positive"));
            }
        }
        if !self
            .num_attention_heads
            .is_multiple_of(self.num_key_value_heads)
        {
            return bad(format!(
                "num_attention_heads {} is not a multiple of num_key_value_heads {}",
                self.num_attention_heads, self.num_key_value_heads
            ));
        }
        if !explicit_head_dim && !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return bad(format!(
                "hidden_size {} is not a multiple of num_attention_heads {} (and no head_dim is given)",
                self.hidden_size, self.num_attention_heads
            ));
        }
        if self.head_dim == 0 || !self.head_dim.is_multiple_of(2) {
            return bad(format!(
                "head_dim must be positive and even for rotary embeddings, found {}",
                self.head_dim
            ));
        }
        if !(self.rms_norm_eps.is_finite() && self.rms_norm_eps > 0.0) {
            return bad(format!(
                "rms_norm_eps must be positive, found {}",
                self.rms_norm_eps
            ));
        }
        if self.sliding_window == Some(0) {
            return bad("sliding_window must be positive".into());
        }
        Ok(())
    }

    /// Heads of queries sharing one key/value head.
    pub fn kv_groups(&self) -> usize {
        self.num_attention_heads / self.num_key_value_heads
    }

    /// The sliding window of layer `layer`, if it has one.
    pub fn layer_window(&self, layer: usize) -> Option<usize> {
        self.sliding_window
            .filter(|_| self.sliding_layers.get(layer).copied().unwrap_or(false))
    }

    /// The rotary inverse frequencies (`head_dim / 2` of them), scaling applied.
    pub fn rope_inv_freq(&self) -> Vec<f64> {
        let dim = self.head_dim;
        (0..dim / 2)
            .map(|i| {
                // As transformers computes it: 1 / theta^(2i/dim), in float32.
                let exponent = ((2 * i) as f32 / dim as f32) as f64;
                let base = self.rope_theta.powf(exponent) as f32;
                let inv = (1.0f32 / base) as f64;
                match &self.rope_scaling {
                    None => inv,
                    Some(RopeScaling::Linear { factor }) => inv / factor,
                    Some(RopeScaling::Llama3 {
                        factor,
                        low_freq_factor,
                        high_freq_factor,
                        original_max_position_embeddings,
                    }) => {
                        let old = *original_max_position_embeddings as f64;
                        let low_wavelen = old / low_freq_factor;
                        let high_wavelen = old / high_freq_factor;
                        let wavelen = 2.0 * std::f64::consts::PI / inv;
                        if wavelen < high_wavelen {
                            inv
                        } else if wavelen > low_wavelen {
                            inv / factor
                        } else {
                            let smooth = (old / wavelen - low_freq_factor)
                                / (high_freq_factor - low_freq_factor);
                            (1.0 - smooth) * inv / factor + smooth * inv
                        }
                    }
                }
            })
            .collect()
    }

    /// Rotary cos and sin tables for positions `0..n_positions`, row-major
    /// `[n_positions, head_dim]`: row p is `cos(p·f)` (`sin(p·f)`) for the
    /// inverse frequencies f, repeated once (the two halves of a head rotate
    /// together). The angle is rounded to f32 first, as transformers does.
    pub fn rope_tables(&self, n_positions: usize) -> (Vec<f32>, Vec<f32>) {
        let inv: Vec<f32> = self.rope_inv_freq().iter().map(|&f| f as f32).collect();
        let dim = self.head_dim;
        let mut cos = Vec::with_capacity(n_positions * dim);
        let mut sin = Vec::with_capacity(n_positions * dim);
        for p in 0..n_positions {
            let row: Vec<f64> = inv.iter().map(|&f| (p as f32 * f) as f64).collect();
            for _ in 0..2 {
                cos.extend(row.iter().map(|a| a.cos() as f32));
                sin.extend(row.iter().map(|a| a.sin() as f32));
            }
        }
        (cos, sin)
    }
}

/// The floating-point type of an inference graph's weights and activations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    #[default]
    F32,
    /// Weights and activations in float16; RMSNorm and softmax computed in
    /// float32 (as transformers does in half precision) and the reward head
    /// kept in float32. Runs on ONNX Runtime's CPU and CUDA providers.
    F16,
    /// The same in bfloat16. ONNX Runtime's CPU provider has no bfloat16
    /// kernels for these ops: such a model needs an execution provider that
    /// has them (CUDA on recent GPUs).
    BF16,
}

impl std::str::FromStr for Precision {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "fp32" | "float32" => Ok(Precision::F32),
            "fp16" | "float16" => Ok(Precision::F16),
            "bf16" | "bfloat16" => Ok(Precision::BF16),
            other => Err(Error::InvalidArgument(format!(
                "unknown dtype {other:?} (expected fp32, fp16 or bf16)"
            ))),
        }
    }
}

impl Precision {
    /// The ONNX element type of weights and activations.
    pub fn elem_type(self) -> i32 {
        match self {
            Precision::F32 => FLOAT,
            Precision::F16 => crate::onnx::proto::data_type::FLOAT16,
            Precision::BF16 => crate::onnx::proto::data_type::BFLOAT16,
        }
    }
}

/// What to build besides the standard `scores` output.
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct DecoderBuildOptions {
    /// Also output the pooled states as `pooled` (`[batch, hidden]`).
    pub expose_pooled: bool,
    /// Rows of the rotary tables, i.e. the longest sequence the graph accepts
    /// (default and upper bound: `max_position_embeddings`). Long-context
    /// checkpoints have tables of `max_position_embeddings × head_dim` floats
    /// each; a smaller bound keeps the model file small.
    pub max_positions: Option<usize>,
    /// Pool at the last token whose id is not this pad id (transformers'
    /// rule, computed from `input_ids`) instead of the last token the
    /// attention mask keeps. The two agree unless the pad id also occurs
    /// inside the text (e.g. a pad token that doubles as end-of-sequence).
    pub pool_pad_token_id: Option<i64>,
    /// Weights' and activations' type (training graphs are always float32).
    pub precision: Precision,
}

impl DecoderBuildOptions {
    pub fn with_expose_pooled(mut self, yes: bool) -> Self {
        self.expose_pooled = yes;
        self
    }

    pub fn with_max_positions(mut self, n: usize) -> Self {
        self.max_positions = Some(n);
        self
    }

    pub fn with_precision(mut self, precision: Precision) -> Self {
        self.precision = precision;
        self
    }

    pub fn with_pool_pad_token_id(mut self, pad: i64) -> Self {
        self.pool_pad_token_id = Some(pad);
        self
    }
}

/// The prefix of Hugging Face decoder checkpoints; initializers always carry
/// it, checkpoints may or may not.
const PREFIX: &str = "model.";

struct Ctx<'a> {
    g: GraphBuilder,
    w: &'a mut Weights,
    /// Names of the weight initializers added, in order.
    params: Vec<String>,
    /// Element type of weights and activations (FLOAT or FLOAT16).
    dt: i32,
}

impl Ctx<'_> {
    /// Add checkpoint tensor `model.{name}` (or `{name}`) as an initializer
    /// named `model.{name}`.
    fn weight(&mut self, name: &str, shape: &[usize]) -> Result<String> {
        let full = format!("{PREFIX}{name}");
        let (_, w) = self.w.take(&[full.clone(), name.to_string()], shape)?;
        self.params.push(full.clone());
        Ok(self
            .g
            .initializer(tensor_as(&full, &w.dims(), &w.data, self.dt)))
    }

    /// A scalar constant of the activations' type.
    fn scalar(&mut self, base: &str, value: f32) -> String {
        self.g
            .const_tensor(base, tensor_as(base, &[], &[value], self.dt))
    }

    /// Cast to the activations' type.
    fn cast_dt(&mut self, x: &str) -> String {
        self.g
            .op("Cast", &[x], vec![("to", Attr::Int(self.dt as i64))])
    }

    fn half(&self) -> bool {
        self.dt != FLOAT
    }

    fn linear(
        &mut self,
        x: &str,
        name: &str,
        n_in: usize,
        n_out: usize,
        bias: bool,
    ) -> Result<String> {
        let w = self.weight(&format!("{name}.weight"), &[n_out, n_in])?;
        let wt = self
            .g
            .op("Transpose", &[&w], vec![("perm", Attr::Ints(vec![1, 0]))]);
        let y = self.g.op("MatMul", &[x, &wt], vec![]);
        if !bias {
            return Ok(y);
        }
        let b = self.weight(&format!("{name}.bias"), &[n_out])?;
        Ok(self.g.op("Add", &[&y, &b], vec![]))
    }

    /// `x / sqrt(mean(x²) + eps) · weight` over the last axis.
    fn rms_norm(&mut self, x: &str, name: &str, hidden: usize, eps: f64) -> Result<String> {
        let w = self.weight(&format!("{name}.weight"), &[hidden])?;
        let eps = self.g.const_f32("eps", eps as f32);
        // In half precision the statistics are float32: x² overflows float16
        // for the large activations decoders have.
        let x32 = if self.half() {
            self.g
                .op("Cast", &[x], vec![("to", Attr::Int(FLOAT as i64))])
        } else {
            x.to_string()
        };
        let x = x32.as_str();
        let sq = self.g.op("Mul", &[x, x], vec![]);
        let ms = self.g.op(
            "ReduceMean",
            &[&sq],
            vec![("axes", Attr::Ints(vec![-1])), ("keepdims", Attr::Int(1))],
        );
        let ms = self.g.op("Add", &[&ms, &eps], vec![]);
        let rms = self.g.op("Sqrt", &[&ms], vec![]);
        let mut y = self.g.op("Div", &[x, &rms], vec![]);
        if self.half() {
            y = self.cast_dt(&y);
        }
        Ok(self.g.op("Mul", &[&y, &w], vec![]))
    }

    /// Rotary embedding of `x` (`[batch, seq, heads, head_dim]`):
    /// `x·cos + rotate_half(x)·sin`, rotate_half(x) = `[-x₂, x₁]`.
    fn rope(&mut self, x: &str, cos: &str, sin: &str, halves: &str) -> String {
        let x1 = self.g.unique("x1");
        let x2 = self.g.unique("x2");
        self.g.node(
            "Split",
            &[x, halves],
            &[&x1, &x2],
            vec![("axis", Attr::Int(3))],
        );
        let neg = self.g.op("Neg", &[&x2], vec![]);
        let rot = self
            .g
            .op("Concat", &[&neg, &x1], vec![("axis", Attr::Int(3))]);
        let a = self.g.op("Mul", &[x, cos], vec![]);
        let b = self.g.op("Mul", &[&rot, sin], vec![]);
        self.g.op("Add", &[&a, &b], vec![])
    }

    /// Repeat each of the key/value heads of `x` (`[batch, seq, kv_heads,
    /// head_dim]`) `groups` times: `[batch, seq, kv_heads·groups, head_dim]`,
    /// query head h reading key/value head h / groups.
    fn repeat_kv(&mut self, x: &str, groups: usize, heads_shape: &str) -> String {
        if groups == 1 {
            return x.to_string();
        }
        let axis3 = self.g.const_i64("axis3", &[1], &[3]);
        let u = self.g.op("Unsqueeze", &[x, &axis3], vec![]);
        let reps = self
            .g
            .const_i64("kv_repeat", &[5], &[1, 1, 1, groups as i64, 1]);
        let e = self.g.op("Expand", &[&u, &reps], vec![]);
        self.g.op("Reshape", &[&e, heads_shape], vec![])
    }
}

/// Build the reward model graph for a Llama / Mistral / Qwen2 backbone.
///
/// Inputs: `input_ids` and `attention_mask`, int64 `[batch, sequence]`
/// (sequence at most the rotary table length). Output: `scores`, float
/// `[batch, n_outputs]`, read at the last token of each row that the mask
/// keeps (left or right padding both work); with
/// [`DecoderBuildOptions::expose_pooled`] also `pooled`, `[batch, hidden]`.
/// Positions are `0..sequence` for every row, as in transformers when no
/// `position_ids` are given. Returns the model and the names of the trainable
/// initializers (backbone, then head) in the order they were added; the rotary
/// tables ([`ROTARY_COS`], [`ROTARY_SIN`]) are not among them.
pub fn build_decoder_reward_model_graph(
    cfg: &DecoderConfig,
    weights: &mut Weights,
    head: &RewardHead,
    opts: DecoderBuildOptions,
) -> Result<(ModelProto, Vec<String>)> {
    let h = cfg.hidden_size;
    if head.hidden() != h {
        return Err(Error::InvalidArgument(format!(
            "the reward head expects hidden size {}, the {} backbone has {h}",
            head.hidden(),
            cfg.model_type
        )));
    }
    let n_pos = opts
        .max_positions
        .unwrap_or(cfg.max_position_embeddings)
        .min(cfg.max_position_embeddings);
    if n_pos == 0 {
        return Err(Error::InvalidArgument(
            "max_positions must be positive".into(),
        ));
    }
    let mut cx = Ctx {
        g: GraphBuilder::new(),
        w: weights,
        params: Vec::new(),
        dt: opts.precision.elem_type(),
    };
    let nh = cfg.num_attention_heads;
    let nkv = cfg.num_key_value_heads;
    let hd = cfg.head_dim;
    let groups = cfg.kv_groups();
    let bs: [Dim; 2] = ["batch".into(), "sequence".into()];

    let ids = cx.g.input(INPUT_IDS, INT64, &bs);
    let mask = cx.g.input(ATTENTION_MASK, INT64, &bs);

    cx.g.set_scope("embeddings");
    let embed = cx.weight("embed_tokens.weight", &[cfg.vocab_size, h])?;
    let mut x =
        cx.g.op("Gather", &[&embed, &ids], vec![("axis", Attr::Int(0))]);

    // Positions 0..sequence and the rotary tables at those positions,
    // shaped [1, sequence, 1, head_dim] to broadcast over batch and heads.
    cx.g.set_scope("positions");
    let shape = cx.g.op("Shape", &[&ids], vec![]);
    let one_idx = cx.g.const_i64("seq_axis", &[], &[1]);
    let seq_len =
        cx.g.op("Gather", &[&shape, &one_idx], vec![("axis", Attr::Int(0))]);
    let zero = cx.g.const_i64("zero", &[], &[0]);
    let step = cx.g.const_i64("step", &[], &[1]);
    let positions = cx.g.op("Range", &[&zero, &seq_len, &step], vec![]);
    let (cos_t, sin_t) = cfg.rope_tables(n_pos);
    let table_dims = [n_pos as i64, hd as i64];
    let cos_t =
        cx.g.initializer(tensor_as(ROTARY_COS, &table_dims, &cos_t, cx.dt));
    let sin_t =
        cx.g.initializer(tensor_as(ROTARY_SIN, &table_dims, &sin_t, cx.dt));
    let axes02 = cx.g.const_i64("axes02", &[2], &[0, 2]);
    let cos = cx.g.op(
        "Gather",
        &[&cos_t, &positions],
        vec![("axis", Attr::Int(0))],
    );
    let cos = cx.g.op("Unsqueeze", &[&cos, &axes02], vec![]);
    let sin = cx.g.op(
        "Gather",
        &[&sin_t, &positions],
        vec![("axis", Attr::Int(0))],
    );
    let sin = cx.g.op("Unsqueeze", &[&sin, &axes02], vec![]);

    // Attention bias [batch, 1, query, key]: a key is visible when the mask
    // keeps it and it is not after the query (and, in sliding-window layers,
    // fewer than `window` positions before it).
    cx.g.set_scope("mask");
    let axes1 = cx.g.const_i64("axes1", &[1], &[1]);
    let axes0 = cx.g.const_i64("axes0", &[1], &[0]);
    let q_pos = cx.g.op("Unsqueeze", &[&positions, &axes1], vec![]);
    let k_pos = cx.g.op("Unsqueeze", &[&positions, &axes0], vec![]);
    // distance[q, k] = q - k
    let distance = cx.g.op("Sub", &[&q_pos, &k_pos], vec![]);
    let zero_i = cx.g.const_i64("zero", &[], &[0]);
    let future = cx.g.op("Less", &[&distance, &zero_i], vec![]);
    let causal = cx.g.op("Not", &[&future], vec![]);
    let causal_f = cx.cast_dt(&causal);
    let mask_f = cx.cast_dt(&mask);
    let axes12 = cx.g.const_i64("axes12", &[2], &[1, 2]);
    let keys = cx.g.op("Unsqueeze", &[&mask_f, &axes12], vec![]);
    let one = cx.scalar("one", 1.0);
    let big = cx.scalar("bias", -MASK_BIAS);
    let bias_of = |cx: &mut Ctx<'_>, visible: &str| -> String {
        let v = cx.g.op("Mul", &[visible, &keys], vec![]);
        let hidden_keys = cx.g.op("Sub", &[&v, &one], vec![]);
        cx.g.op("Mul", &[&hidden_keys, &big], vec![])
    };
    let full_bias = bias_of(&mut cx, &causal_f);
    let window_bias = match cfg.sliding_window {
        Some(w) => {
            let w = cx.g.const_i64("window", &[], &[w as i64]);
            let inside = cx.g.op("Less", &[&distance, &w], vec![]);
            let inside = cx.cast_dt(&inside);
            let visible = cx.g.op("Mul", &[&causal_f, &inside], vec![]);
            Some(bias_of(&mut cx, &visible))
        }
        None => None,
    };

    let q_shape =
        cx.g.const_i64("q_shape", &[4], &[0, 0, nh as i64, hd as i64]);
    let kv_shape =
        cx.g.const_i64("kv_shape", &[4], &[0, 0, nkv as i64, hd as i64]);
    let merge_shape =
        cx.g.const_i64("merge_shape", &[3], &[0, 0, (nh * hd) as i64]);
    let halves =
        cx.g.const_i64("halves", &[2], &[(hd / 2) as i64, (hd / 2) as i64]);
    let scale = cx.scalar("scale", 1.0 / (hd as f32).sqrt());

    for l in 0..cfg.num_hidden_layers {
        cx.g.set_scope(&format!("layer{l}"));
        let p = format!("layers.{l}");
        let eps = cfg.rms_norm_eps;
        let xn = cx.rms_norm(&x, &format!("{p}.input_layernorm"), h, eps)?;
        let a = format!("{p}.self_attn");
        let q = cx.linear(&xn, &format!("{a}.q_proj"), h, nh * hd, cfg.qkv_bias)?;
        let k = cx.linear(&xn, &format!("{a}.k_proj"), h, nkv * hd, cfg.qkv_bias)?;
        let v = cx.linear(&xn, &format!("{a}.v_proj"), h, nkv * hd, cfg.qkv_bias)?;
        // [batch, seq, heads, head_dim]
        let q = cx.g.op("Reshape", &[&q, &q_shape], vec![]);
        let k = cx.g.op("Reshape", &[&k, &kv_shape], vec![]);
        let v = cx.g.op("Reshape", &[&v, &kv_shape], vec![]);
        let q = cx.rope(&q, &cos, &sin, &halves);
        let k = cx.rope(&k, &cos, &sin, &halves);
        let k = cx.repeat_kv(&k, groups, &q_shape);
        let v = cx.repeat_kv(&v, groups, &q_shape);
        let q = cx.g.op(
            "Transpose",
            &[&q],
            vec![("perm", Attr::Ints(vec![0, 2, 1, 3]))],
        );
        let k = cx.g.op(
            "Transpose",
            &[&k],
            vec![("perm", Attr::Ints(vec![0, 2, 3, 1]))],
        );
        let v = cx.g.op(
            "Transpose",
            &[&v],
            vec![("perm", Attr::Ints(vec![0, 2, 1, 3]))],
        );
        let s = cx.g.op("MatMul", &[&q, &k], vec![]);
        let s = cx.g.op("Mul", &[&s, &scale], vec![]);
        let bias = match (cfg.layer_window(l), &window_bias) {
            (Some(_), Some(wb)) => wb.as_str(),
            _ => full_bias.as_str(),
        };
        let s = cx.g.op("Add", &[&s, bias], vec![]);
        let pr = if cx.half() {
            // Softmax in float32, as transformers computes it in half precision.
            let s =
                cx.g.op("Cast", &[&s], vec![("to", Attr::Int(FLOAT as i64))]);
            let pr = cx.g.op("Softmax", &[&s], vec![("axis", Attr::Int(-1))]);
            cx.cast_dt(&pr)
        } else {
            cx.g.op("Softmax", &[&s], vec![("axis", Attr::Int(-1))])
        };
        let ctx = cx.g.op("MatMul", &[&pr, &v], vec![]);
        let ctx = cx.g.op(
            "Transpose",
            &[&ctx],
            vec![("perm", Attr::Ints(vec![0, 2, 1, 3]))],
        );
        let ctx = cx.g.op("Reshape", &[&ctx, &merge_shape], vec![]);
        let attn = cx.linear(&ctx, &format!("{a}.o_proj"), nh * hd, h, cfg.o_bias)?;
        x = cx.g.op("Add", &[&x, &attn], vec![]);

        let xn = cx.rms_norm(&x, &format!("{p}.post_attention_layernorm"), h, eps)?;
        let m = format!("{p}.mlp");
        let i = cfg.intermediate_size;
        let gate = cx.linear(&xn, &format!("{m}.gate_proj"), h, i, cfg.mlp_bias)?;
        let up = cx.linear(&xn, &format!("{m}.up_proj"), h, i, cfg.mlp_bias)?;
        let sig = cx.g.op("Sigmoid", &[&gate], vec![]);
        let act = cx.g.op("Mul", &[&gate, &sig], vec![]);
        let inner = cx.g.op("Mul", &[&act, &up], vec![]);
        let down = cx.linear(&inner, &format!("{m}.down_proj"), i, h, cfg.mlp_bias)?;
        x = cx.g.op("Add", &[&x, &down], vec![]);
    }
    cx.g.set_scope("final");
    x = cx.rms_norm(&x, "norm", h, cfg.rms_norm_eps)?;

    // The last kept token of each row.
    cx.g.set_scope("pool");
    let keep = match opts.pool_pad_token_id {
        Some(pad) => {
            let pad = cx.g.const_i64("pad_id", &[], &[pad]);
            let is_pad = cx.g.op("Equal", &[&ids, &pad], vec![]);
            let not_pad = cx.g.op("Not", &[&is_pad], vec![]);
            cx.g.op("Cast", &[&not_pad], vec![("to", Attr::Int(INT64 as i64))])
        }
        None => mask.clone(),
    };
    let pooled = super::head::last_kept_token(&mut cx.g, &x, &keep, &positions, cx.dt);

    // The head reads float32 (its weights stay float32 in every precision).
    let pooled = if cx.half() {
        cx.g.op("Cast", &[&pooled], vec![("to", Attr::Int(FLOAT as i64))])
    } else {
        pooled
    };
    super::head::append_head(&mut cx.g, &pooled, head, &mut cx.params, opts.expose_pooled);
    let Ctx { g, params, .. } = cx;
    let graph = g.build(&format!("rewardkit_{}_reward_model", cfg.model_type));
    Ok((
        model(
            graph,
            &format!("{} decoder reward model built by rewardkit", cfg.model_type),
        ),
        params,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(model_type: &str) -> Value {
        serde_json::json!({
            "model_type": model_type, "vocab_size": 10, "hidden_size": 16,
            "intermediate_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
            "num_key_value_heads": 2, "max_position_embeddings": 32, "rms_norm_eps": 1e-5
        })
    }

    fn parse(v: &Value) -> Result<DecoderConfig> {
        DecoderConfig::from_json(v, Path::new("x/config.json"))
    }

    #[test]
    fn parses_families_and_defaults() {
        let c = parse(&base("llama")).expect("llama");
        assert_eq!(c.head_dim, 4);
        assert_eq!(c.rope_theta, 10000.0);
        assert_eq!((c.qkv_bias, c.o_bias, c.mlp_bias), (false, false, false));
        assert_eq!(c.kv_groups(), 2);
        let c = parse(&base("qwen2")).expect("qwen2");
        assert_eq!((c.qkv_bias, c.o_bias), (true, false));
        assert_eq!(c.sliding_window, None);
        let mut v = base("mistral");
        v["sliding_window"] = 5.into();
        let c = parse(&v).expect("mistral");
        assert_eq!(c.layer_window(1), Some(5));
        let mut v = base("llama");
        v["attention_bias"] = true.into();
        v["mlp_bias"] = true.into();
        v["head_dim"] = 8.into();
        v["num_key_value_heads"] = Value::Null;
        let c = parse(&v).expect("llama with biases");
        assert_eq!((c.qkv_bias, c.o_bias, c.mlp_bias), (true, true, true));
        assert_eq!((c.head_dim, c.num_key_value_heads), (8, 4));
    }

    #[test]
    fn qwen2_sliding_window_needs_use_sliding_window() {
        let mut v = base("qwen2");
        v["sliding_window"] = 4.into();
        assert_eq!(parse(&v).expect("qwen2").layer_window(1), None);
        v["use_sliding_window"] = true.into();
        v["max_window_layers"] = 1.into();
        let c = parse(&v).expect("qwen2");
        assert_eq!((c.layer_window(0), c.layer_window(1)), (None, Some(4)));
        v["layer_types"] = serde_json::json!(["sliding_attention", "full_attention"]);
        let c = parse(&v).expect("qwen2");
        assert_eq!((c.layer_window(0), c.layer_window(1)), (Some(4), None));
    }

    #[test]
    fn rope_parameters_and_rope_scaling_agree() {
        let mut old = base("llama");
        old["rope_theta"] = 500000.0.into();
        old["rope_scaling"] = serde_json::json!({"type": "linear", "factor": 2.0});
        let mut new = base("llama");
        new["rope_parameters"] =
            serde_json::json!({"rope_type": "linear", "factor": 2.0, "rope_theta": 500000.0});
        let (a, b) = (parse(&old).expect("old"), parse(&new).expect("new"));
        assert_eq!(a, b);
        assert_eq!(a.rope_scaling, Some(RopeScaling::Linear { factor: 2.0 }));
        let f = a.rope_inv_freq();
        assert!((f[0] - 0.5).abs() < 1e-12, "{f:?}");
    }

    #[test]
    fn llama3_scaling_has_three_bands() {
        let mut v = base("llama");
        v["head_dim"] = 8.into();
        v["rope_parameters"] = serde_json::json!({
            "rope_type": "llama3", "rope_theta": 10000.0, "factor": 8.0,
            "low_freq_factor": 1.0, "high_freq_factor": 4.0,
            "original_max_position_embeddings": 64
        });
        let f = parse(&v).expect("llama3").rope_inv_freq();
        // Wavelengths 6.3 (kept), 63 (smoothed), 628 and 6283 (divided by 8).
        assert!((f[0] - 1.0).abs() < 1e-7);
        assert!(f[1] < 0.1 && f[1] > 0.1 / 8.0);
        assert!((f[2] - 0.01 / 8.0).abs() < 1e-9);
        assert!((f[3] - 0.001 / 8.0).abs() < 1e-10);
        let (cos, sin) = parse(&v).expect("llama3").rope_tables(3);
        assert_eq!(cos.len(), 24);
        assert_eq!((cos[0], sin[0]), (1.0, 0.0));
        assert_eq!(cos[8..12], cos[12..16]);
    }

    #[test]
    fn errors_name_what_is_wrong() {
        let err = parse(&base("gpt2")).unwrap_err().to_string();
        assert!(
            err.contains("gpt2") && err.contains("llama, mistral, qwen2"),
            "{err}"
        );
        let mut v = base("llama");
        v["rope_scaling"] = serde_json::json!({"rope_type": "yarn", "factor": 4.0});
        let err = parse(&v).unwrap_err().to_string();
        assert!(err.contains("yarn"), "{err}");
        for family in ["llama", "mistral", "qwen2"] {
            let mut v = base(family);
            v["num_hidden_layers"] = serde_json::json!(1u64 << 60);
            let err = parse(&v).unwrap_err().to_string();
            assert!(err.contains("num_hidden_layers"), "{err}");
        }
        let mut v = base("llama");
        v["num_key_value_heads"] = 3.into();
        let err = parse(&v).unwrap_err().to_string();
        assert!(err.contains("num_key_value_heads"), "{err}");
        let mut v = base("mistral");
        v["hidden_act"] = "gelu".into();
        let err = parse(&v).unwrap_err().to_string();
        assert!(err.contains("gelu"), "{err}");
        let mut v = base("qwen2");
        v["hidden_size"] = 0.into();
        let err = parse(&v).unwrap_err().to_string();
        assert!(err.contains("hidden_size"), "{err}");
        let mut v = base("llama");
        v.as_object_mut().expect("object").remove("vocab_size");
        let err = parse(&v).unwrap_err().to_string();
        assert!(err.contains("vocab_size"), "{err}");
        let mut v = base("llama");
        v["rope_parameters"] = serde_json::json!({"rope_type": "llama3", "factor": 8.0});
        let err = parse(&v).unwrap_err().to_string();
        assert!(err.contains("low_freq_factor"), "{err}");
    }
}
