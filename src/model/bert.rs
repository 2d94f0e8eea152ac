//! The BERT-family encoder reward model as an ONNX graph: embeddings,
//! post-LayerNorm transformer blocks, pooling, and a linear reward head.
//!
//! Initializers keep the checkpoint's tensor names and layouts (`[out, in]`
//! linear weights, used through a `Transpose` that ONNX Runtime folds at load
//! time), so a graph maps back onto its checkpoint one to one.

use crate::error::{Error, Result};
use crate::onnx::builder::{model, tensor_as, Attr, Dim, GraphBuilder};
use crate::onnx::proto::data_type::{FLOAT, INT32, INT64};
use crate::onnx::ModelProto;

use super::config::{Activation, BertConfig, Pooling};
use super::decoder::Precision;
use super::head::RewardHead;
use super::weights::Weights;

/// Graph input names, in the order the graph declares them.
pub const INPUT_IDS: &str = "input_ids";
pub const ATTENTION_MASK: &str = "attention_mask";
pub const TOKEN_TYPE_IDS: &str = "token_type_ids";
/// Graph output holding `[batch, n_outputs]` scores.
pub const SCORES: &str = "scores";
/// Optional graph output holding `[batch, hidden]` pooled states.
pub const POOLED: &str = "pooled";

/// What to build besides the standard `scores` output.
#[derive(Debug, Clone, Copy, Default)]
pub struct BuildOptions {
    pub pooling: Pooling,
    /// Also output the pooled states as `pooled` (for parity checks and embeddings).
    pub expose_pooled: bool,
    /// Use ONNX Runtime's fused contrib ops (`Attention`, `BiasGelu`/
    /// `FastGelu`, and in half precision `SkipLayerNormalization`) for
    /// inference. The
    /// weight initializers keep the same names, shapes and order as the
    /// standard-op graph; only the nodes between them differ. Training graphs
    /// are always built with standard ops.
    pub fused: bool,
    /// Type of the encoder's weights and activations. In float16 the
    /// embeddings and layers run in half precision (ONNX Runtime computes the
    /// LayerNorm statistics and softmax in float32 either way); pooling and
    /// the reward head stay float32.
    pub precision: Precision,
}

/// Additive attention bias for padded keys. Small enough for fp16, large
/// enough that `exp` underflows to exactly 0 in fp32.
const MASK_BIAS: f32 = -10000.0;

struct Ctx<'a> {
    g: GraphBuilder,
    w: &'a mut Weights,
    prefix: &'static str,
    /// Names of the weight initializers added, in order.
    params: Vec<String>,
    /// Element type of the weights and constants added now.
    dt: i32,
}

impl Ctx<'_> {
    /// Add the checkpoint tensor `name` (trying the known prefixes and aliases)
    /// as an initializer with the unprefixed name.
    fn weight(&mut self, name: &str, aliases: &[&str], shape: &[usize]) -> Result<String> {
        let mut candidates = Vec::new();
        for n in std::iter::once(name).chain(aliases.iter().copied()) {
            candidates.push(format!("{}{n}", self.prefix));
            candidates.push(n.to_string());
        }
        let (_, w) = self.w.take(&candidates, shape)?;
        self.params.push(name.to_string());
        Ok(self
            .g
            .initializer(tensor_as(name, &w.dims(), &w.data, self.dt)))
    }

    /// A scalar constant of the current element type.
    fn constant(&mut self, base: &str, value: f32) -> String {
        self.g
            .const_tensor(base, tensor_as(base, &[], &[value], self.dt))
    }

    fn linear(&mut self, x: &str, name: &str, n_in: usize, n_out: usize) -> Result<String> {
        let w = self.weight(&format!("{name}.weight"), &[], &[n_out, n_in])?;
        let b = self.weight(&format!("{name}.bias"), &[], &[n_out])?;
        let wt = self
            .g
            .op("Transpose", &[&w], vec![("perm", Attr::Ints(vec![1, 0]))]);
        let y = self.g.op("MatMul", &[x, &wt], vec![]);
        Ok(self.g.op("Add", &[&y, &b], vec![]))
    }

    /// `x · Wᵀ` for the checkpoint linear `name`, without its bias; returns
    /// the product and the bias initializer, for an op that adds the bias
    /// itself.
    fn matmul_bias(
        &mut self,
        x: &str,
        name: &str,
        n_in: usize,
        n_out: usize,
    ) -> Result<(String, String)> {
        let w = self.weight(&format!("{name}.weight"), &[], &[n_out, n_in])?;
        let b = self.weight(&format!("{name}.bias"), &[], &[n_out])?;
        let wt = self
            .g
            .op("Transpose", &[&w], vec![("perm", Attr::Ints(vec![1, 0]))]);
        Ok((self.g.op("MatMul", &[x, &wt], vec![]), b))
    }

    /// `LayerNorm(x + bias + skip)`. In half precision (the GPU path) it is
    /// one `SkipLayerNormalization`. In float32 it is two `Add`s and a
    /// standard `LayerNormalization`: ONNX Runtime 1.31's CPU kernel for
    /// `SkipLayerNormalization` took 120-130 ms per 32×256 MiniLM batch
    /// (12 nodes) where the three standard ops took 50 ms (ORT profile,
    /// 2 threads), and float32 bundles are the CPU ones.
    fn skip_layer_norm(
        &mut self,
        x: &str,
        skip: &str,
        bias: &str,
        name: &str,
        hidden: usize,
        eps: f64,
    ) -> Result<String> {
        if self.dt == FLOAT {
            let biased = self.g.op("Add", &[x, bias], vec![]);
            let sum = self.g.op("Add", &[&biased, skip], vec![]);
            return self.layer_norm(&sum, name, hidden, eps);
        }
        let (gamma, beta) = self.norm_params(name, hidden)?;
        Ok(self.g.op_ms(
            "SkipLayerNormalization",
            &[x, skip, &gamma, &beta, bias],
            vec![("epsilon", Attr::Float(eps as f32))],
        ))
    }

    fn norm_params(&mut self, name: &str, hidden: usize) -> Result<(String, String)> {
        let gamma = self.weight(
            &format!("{name}.weight"),
            &[&format!("{name}.gamma")],
            &[hidden],
        )?;
        let beta = self.weight(
            &format!("{name}.bias"),
            &[&format!("{name}.beta")],
            &[hidden],
        )?;
        Ok((gamma, beta))
    }

    fn layer_norm(&mut self, x: &str, name: &str, hidden: usize, eps: f64) -> Result<String> {
        let (gamma, beta) = self.norm_params(name, hidden)?;
        Ok(self.g.op(
            "LayerNormalization",
            &[x, &gamma, &beta],
            vec![
                ("axis", Attr::Int(-1)),
                ("epsilon", Attr::Float(eps as f32)),
            ],
        ))
    }

    fn activation(&mut self, x: &str, act: Activation) -> String {
        match act {
            Activation::Gelu => {
                // 0.5 · x · (1 + erf(x / √2)). A Div by √2 (not a Mul by
                // 1/√2) is the form ONNX Runtime's Gelu/BiasGelu fusion
                // recognises, so the session runs one fused kernel.
                let sqrt2 = self.constant("sqrt2", std::f32::consts::SQRT_2);
                let half = self.constant("half", 0.5);
                let one = self.constant("one", 1.0);
                let s = self.g.op("Div", &[x, &sqrt2], vec![]);
                let e = self.g.op("Erf", &[&s], vec![]);
                let e1 = self.g.op("Add", &[&e, &one], vec![]);
                let xe = self.g.op("Mul", &[x, &e1], vec![]);
                self.g.op("Mul", &[&xe, &half], vec![])
            }
            Activation::GeluTanh => {
                // 0.5 · x · (1 + tanh(√(2/π) · (x + 0.044715 x³)))
                let c = self.constant("gelu_c", 0.797_884_6);
                let k = self.constant("gelu_k", 0.044715);
                let half = self.constant("half", 0.5);
                let one = self.constant("one", 1.0);
                let x2 = self.g.op("Mul", &[x, x], vec![]);
                let x3 = self.g.op("Mul", &[&x2, x], vec![]);
                let kx3 = self.g.op("Mul", &[&x3, &k], vec![]);
                let inner = self.g.op("Add", &[x, &kx3], vec![]);
                let scaled = self.g.op("Mul", &[&inner, &c], vec![]);
                let t = self.g.op("Tanh", &[&scaled], vec![]);
                let t1 = self.g.op("Add", &[&t, &one], vec![]);
                let xt = self.g.op("Mul", &[x, &t1], vec![]);
                self.g.op("Mul", &[&xt, &half], vec![])
            }
            Activation::Relu => self.g.op("Relu", &[x], vec![]),
        }
    }
}

/// Constants shared by every standard-op attention block.
struct AttentionShapes {
    /// `[0, 0, heads, head_dim]`, splitting the hidden axis into heads.
    heads: String,
    /// `[0, 0, hidden]`, merging the heads back.
    merge: String,
    /// `1/√head_dim`.
    scale: String,
}

/// One post-LayerNorm encoder layer in standard ONNX ops (the training form).
fn standard_layer(
    cx: &mut Ctx<'_>,
    cfg: &BertConfig,
    x: &str,
    attn_bias: &str,
    shapes: &AttentionShapes,
    p: &str,
) -> Result<String> {
    let h = cfg.hidden_size;
    let q = cx.linear(x, &format!("{p}.attention.self.query"), h, h)?;
    let k = cx.linear(x, &format!("{p}.attention.self.key"), h, h)?;
    let v = cx.linear(x, &format!("{p}.attention.self.value"), h, h)?;
    let q = cx.g.op("Reshape", &[&q, &shapes.heads], vec![]);
    let q = cx.g.op(
        "Transpose",
        &[&q],
        vec![("perm", Attr::Ints(vec![0, 2, 1, 3]))],
    );
    let k = cx.g.op("Reshape", &[&k, &shapes.heads], vec![]);
    let k = cx.g.op(
        "Transpose",
        &[&k],
        vec![("perm", Attr::Ints(vec![0, 2, 3, 1]))],
    );
    let v = cx.g.op("Reshape", &[&v, &shapes.heads], vec![]);
    let v = cx.g.op(
        "Transpose",
        &[&v],
        vec![("perm", Attr::Ints(vec![0, 2, 1, 3]))],
    );
    let s = cx.g.op("MatMul", &[&q, &k], vec![]);
    let s = cx.g.op("Mul", &[&s, &shapes.scale], vec![]);
    let s = cx.g.op("Add", &[&s, attn_bias], vec![]);
    let pr = cx.g.op("Softmax", &[&s], vec![("axis", Attr::Int(-1))]);
    let ctx = cx.g.op("MatMul", &[&pr, &v], vec![]);
    let ctx = cx.g.op(
        "Transpose",
        &[&ctx],
        vec![("perm", Attr::Ints(vec![0, 2, 1, 3]))],
    );
    let ctx = cx.g.op("Reshape", &[&ctx, &shapes.merge], vec![]);
    let attn = cx.linear(&ctx, &format!("{p}.attention.output.dense"), h, h)?;
    let res = cx.g.op("Add", &[&attn, x], vec![]);
    let x = cx.layer_norm(
        &res,
        &format!("{p}.attention.output.LayerNorm"),
        h,
        cfg.layer_norm_eps,
    )?;
    let inter = cx.linear(
        &x,
        &format!("{p}.intermediate.dense"),
        h,
        cfg.intermediate_size,
    )?;
    let inter = cx.activation(&inter, cfg.hidden_act);
    let out = cx.linear(
        &inter,
        &format!("{p}.output.dense"),
        cfg.intermediate_size,
        h,
    )?;
    let res = cx.g.op("Add", &[&out, &x], vec![]);
    cx.layer_norm(
        &res,
        &format!("{p}.output.LayerNorm"),
        h,
        cfg.layer_norm_eps,
    )
}

/// The mask to give ONNX Runtime's `Attention`: `mask_i32` itself when some
/// position of the batch is padding, its first column (`[batch, 1]`) when
/// none is. The kernel takes a `[batch, 1]` mask for no mask at all and then
/// skips building a `[batch, sequence, sequence]` bias and copying it into
/// every head's scores. Measured on the MiniLM reward model, 2 threads, the
/// two graphs alternating in one process: 32 unpadded sequences of 256
/// tokens 1.03-1.06× faster, a single pair of 128 tokens 1.01×; scores
/// identical. (A token counts as padding where the mask is 0, as in the
/// kernel's own test `mask > 0`.)
fn unpadded_as_no_mask(g: &mut GraphBuilder, mask: &str, mask_i32: &str) -> String {
    let lowest = g.op("ReduceMin", &[mask], vec![("keepdims", Attr::Int(0))]);
    let zero = g.const_i64("zero", &[], &[0]);
    let unpadded = g.op("Greater", &[&lowest, &zero], vec![]);
    let width = g.op(
        "Shape",
        &[mask],
        vec![("start", Attr::Int(1)), ("end", Attr::Int(2))],
    );
    let one = g.const_i64("one", &[1], &[1]);
    let end = g.op("Where", &[&unpadded, &one, &width], vec![]);
    let start = g.const_i64("start", &[1], &[0]);
    let axis = g.const_i64("axis", &[1], &[1]);
    g.op("Slice", &[mask_i32, &start, &end, &axis], vec![])
}

/// One encoder layer with ONNX Runtime's fused ops. The weights are taken in
/// the same order as the standard-op layer, so both graphs list the same
/// parameters in the same order.
fn fused_layer(
    cx: &mut Ctx<'_>,
    cfg: &BertConfig,
    x: &str,
    mask_i32: &str,
    p: &str,
) -> Result<String> {
    let h = cfg.hidden_size;
    let eps = cfg.layer_norm_eps;
    // One packed projection: Wqkv = [Wqᵀ Wkᵀ Wvᵀ] ([hidden, 3·hidden]) and
    // the three biases, built from the checkpoint's tensors by ops that ONNX
    // Runtime folds into constants when it loads the model. `Attention` then
    // runs one GEMM for q, k and v, splits heads, scales by 1/√head_dim and
    // masks padded keys with the same bias as the standard graph.
    let mut ws = Vec::with_capacity(3);
    let mut bs = Vec::with_capacity(3);
    for part in ["query", "key", "value"] {
        let name = format!("{p}.attention.self.{part}");
        let w = cx.weight(&format!("{name}.weight"), &[], &[h, h])?;
        ws.push(cx.g.op("Transpose", &[&w], vec![("perm", Attr::Ints(vec![1, 0]))]));
        bs.push(cx.weight(&format!("{name}.bias"), &[], &[h])?);
    }
    let w_qkv = cx.g.op(
        "Concat",
        &[&ws[0], &ws[1], &ws[2]],
        vec![("axis", Attr::Int(1))],
    );
    let b_qkv = cx.g.op(
        "Concat",
        &[&bs[0], &bs[1], &bs[2]],
        vec![("axis", Attr::Int(0))],
    );
    let ctx = cx.g.op_ms(
        "Attention",
        &[x, &w_qkv, &b_qkv, mask_i32],
        vec![
            ("num_heads", Attr::Int(cfg.num_attention_heads as i64)),
            ("mask_filter_value", Attr::Float(MASK_BIAS)),
        ],
    );
    let (attn, b) = cx.matmul_bias(&ctx, &format!("{p}.attention.output.dense"), h, h)?;
    let x = cx.skip_layer_norm(
        &attn,
        x,
        &b,
        &format!("{p}.attention.output.LayerNorm"),
        h,
        eps,
    )?;
    let (inter, b) = cx.matmul_bias(
        &x,
        &format!("{p}.intermediate.dense"),
        h,
        cfg.intermediate_size,
    )?;
    let inter = match cfg.hidden_act {
        Activation::Gelu => cx.g.op_ms("BiasGelu", &[&inter, &b], vec![]),
        Activation::GeluTanh => cx.g.op_ms("FastGelu", &[&inter, &b], vec![]),
        Activation::Relu => {
            let y = cx.g.op("Add", &[&inter, &b], vec![]);
            cx.g.op("Relu", &[&y], vec![])
        }
    };
    let (out, b) = cx.matmul_bias(
        &inter,
        &format!("{p}.output.dense"),
        cfg.intermediate_size,
        h,
    )?;
    cx.skip_layer_norm(&out, &x, &b, &format!("{p}.output.LayerNorm"), h, eps)
}

/// Build the reward model graph for a BERT-family backbone.
///
/// Inputs: `input_ids`, `attention_mask` and (when the config has token types)
/// `token_type_ids`, all int64 `[batch, sequence]`. Output: `scores`, float
/// `[batch, n_outputs]`.
pub fn build_reward_model(
    cfg: &BertConfig,
    weights: &mut Weights,
    head: &RewardHead,
    opts: BuildOptions,
) -> Result<ModelProto> {
    Ok(build_reward_model_graph(cfg, weights, head, opts)?.0)
}

/// Like [`build_reward_model`], also returning the names of the weight
/// initializers (backbone and head) in the order they were added.
pub fn build_reward_model_graph(
    cfg: &BertConfig,
    weights: &mut Weights,
    head: &RewardHead,
    opts: BuildOptions,
) -> Result<(ModelProto, Vec<String>)> {
    let prefix = if weights.names().any(|n| n.starts_with("bert.")) {
        "bert."
    } else {
        ""
    };
    let mut cx = Ctx {
        g: GraphBuilder::new(),
        w: weights,
        prefix,
        params: Vec::new(),
        dt: opts.precision.elem_type(),
    };
    if opts.precision == Precision::BF16 {
        return Err(Error::InvalidArgument(
            "BERT-family bundles are written in fp32 or fp16 (bf16 is for decoders)".into(),
        ));
    }
    let h = cfg.hidden_size;
    let nh = cfg.num_attention_heads as i64;
    let hd = cfg.head_dim() as i64;
    let bs: [Dim; 2] = ["batch".into(), "sequence".into()];

    let ids = cx.g.input(INPUT_IDS, INT64, &bs);
    let mask = cx.g.input(ATTENTION_MASK, INT64, &bs);
    let types = if cfg.type_vocab_size > 0 {
        Some(cx.g.input(TOKEN_TYPE_IDS, INT64, &bs))
    } else {
        None
    };

    // Embeddings: word + position + token type, then LayerNorm.
    cx.g.set_scope("embeddings");
    let word = cx.weight(
        "embeddings.word_embeddings.weight",
        &[],
        &[cfg.vocab_size, h],
    )?;
    let pos = cx.weight(
        "embeddings.position_embeddings.weight",
        &[],
        &[cfg.max_position_embeddings, h],
    )?;
    let mut x =
        cx.g.op("Gather", &[&word, &ids], vec![("axis", Attr::Int(0))]);
    let shape = cx.g.op("Shape", &[&ids], vec![]);
    let one_idx = cx.g.const_i64("seq_axis", &[], &[1]);
    let seq_len =
        cx.g.op("Gather", &[&shape, &one_idx], vec![("axis", Attr::Int(0))]);
    let zero = cx.g.const_i64("zero", &[], &[0]);
    let step = cx.g.const_i64("step", &[], &[1]);
    let positions = cx.g.op("Range", &[&zero, &seq_len, &step], vec![]);
    let axes0 = cx.g.const_i64("axes0", &[1], &[0]);
    let positions = cx.g.op("Unsqueeze", &[&positions, &axes0], vec![]);
    let pos_emb =
        cx.g.op("Gather", &[&pos, &positions], vec![("axis", Attr::Int(0))]);
    x = cx.g.op("Add", &[&x, &pos_emb], vec![]);
    if let Some(types) = &types {
        let tt = cx.weight(
            "embeddings.token_type_embeddings.weight",
            &[],
            &[cfg.type_vocab_size, h],
        )?;
        let t_emb =
            cx.g.op("Gather", &[&tt, types], vec![("axis", Attr::Int(0))]);
        x = cx.g.op("Add", &[&x, &t_emb], vec![]);
    }
    x = cx.layer_norm(&x, "embeddings.LayerNorm", h, cfg.layer_norm_eps)?;

    // The fused attention takes the padding mask itself, as int32
    // [batch, sequence]; the standard graph adds a bias of MASK_BIAS at padded
    // keys, [batch, 1, 1, sequence].
    cx.g.set_scope("mask");
    let attn_mask = if opts.fused {
        let mask_i32 =
            cx.g.op("Cast", &[&mask], vec![("to", Attr::Int(INT32 as i64))]);
        unpadded_as_no_mask(&mut cx.g, &mask, &mask_i32)
    } else {
        let mask_f =
            cx.g.op("Cast", &[&mask], vec![("to", Attr::Int(cx.dt as i64))]);
        let axes12 = cx.g.const_i64("axes12", &[2], &[1, 2]);
        let mask4 = cx.g.op("Unsqueeze", &[&mask_f, &axes12], vec![]);
        let one = cx.constant("one", 1.0);
        let big = cx.constant("bias", -MASK_BIAS);
        let inv = cx.g.op("Sub", &[&mask4, &one], vec![]);
        cx.g.op("Mul", &[&inv, &big], vec![])
    };
    let shapes = (!opts.fused).then(|| AttentionShapes {
        heads: cx.g.const_i64("heads_shape", &[4], &[0, 0, nh, hd]),
        merge: cx.g.const_i64("merge_shape", &[3], &[0, 0, h as i64]),
        scale: cx.constant("scale", 1.0 / (hd as f32).sqrt()),
    });

    for l in 0..cfg.num_hidden_layers {
        cx.g.set_scope(&format!("layer{l}"));
        let p = format!("encoder.layer.{l}");
        x = match &shapes {
            None => fused_layer(&mut cx, cfg, &x, &attn_mask, &p)?,
            Some(shapes) => standard_layer(&mut cx, cfg, &x, &attn_mask, shapes, &p)?,
        };
    }

    cx.g.set_scope("pool");
    // Pooling and the head in float32, whatever the encoder ran in.
    if cx.dt != FLOAT {
        x =
            cx.g.op("Cast", &[&x], vec![("to", Attr::Int(FLOAT as i64))]);
        cx.dt = FLOAT;
    }
    let pooled = match opts.pooling {
        Pooling::Cls => {
            let first = cx.g.const_i64("first", &[], &[0]);
            cx.g.op("Gather", &[&x, &first], vec![("axis", Attr::Int(1))])
        }
        Pooling::Pooler => {
            let first = cx.g.const_i64("first", &[], &[0]);
            let cls =
                cx.g.op("Gather", &[&x, &first], vec![("axis", Attr::Int(1))]);
            let dense = cx.linear(&cls, "pooler.dense", h, h)?;
            cx.g.op("Tanh", &[&dense], vec![])
        }
        Pooling::Last => {
            let shape = cx.g.op("Shape", &[&mask], vec![]);
            let seq_idx = cx.g.const_i64("seq_idx", &[], &[1]);
            let n =
                cx.g.op("Gather", &[&shape, &seq_idx], vec![("axis", Attr::Int(0))]);
            let zero = cx.g.const_i64("zero_i", &[], &[0]);
            let step = cx.g.const_i64("step_i", &[], &[1]);
            let pos = cx.g.op("Range", &[&zero, &n, &step], vec![]);
            super::head::last_kept_token(&mut cx.g, &x, &mask, &pos, FLOAT)
        }
        Pooling::Mean => {
            let mask_f =
                cx.g.op("Cast", &[&mask], vec![("to", Attr::Int(FLOAT as i64))]);
            let axes2 = cx.g.const_i64("axes2", &[1], &[2]);
            let m = cx.g.op("Unsqueeze", &[&mask_f, &axes2], vec![]);
            let xm = cx.g.op("Mul", &[&x, &m], vec![]);
            let axes1 = cx.g.const_i64("axes1", &[1], &[1]);
            let sum = cx.g.op(
                "ReduceSum",
                &[&xm, &axes1],
                vec![("keepdims", Attr::Int(0))],
            );
            let count =
                cx.g.op("ReduceSum", &[&m, &axes1], vec![("keepdims", Attr::Int(0))]);
            let tiny = cx.g.const_f32("tiny", 1e-9);
            let count = cx.g.op("Max", &[&count, &tiny], vec![]);
            cx.g.op("Div", &[&sum, &count], vec![])
        }
    };

    super::head::append_head(&mut cx.g, &pooled, head, &mut cx.params, opts.expose_pooled);
    let params = std::mem::take(&mut cx.params);
    let graph = cx.g.build("rewardkit_bert_reward_model");
    cx.params = params;
    Ok((
        model(graph, "BERT-family reward model built by rewardkit"),
        cx.params,
    ))
}
