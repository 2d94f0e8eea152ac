//! Parity of rewardkit's Llama / Mistral / Qwen2 reward-model graphs with
//! Hugging Face transformers, without PyTorch: `tests/fixtures/decoder/<family>/`
//! (made by `tests/fixtures/make_decoder_parity.py`) holds a tiny random
//! `*ForSequenceClassification` checkpoint and the logits transformers
//! computed for a few padded batches; these tests build the ONNX graph from
//! the same checkpoint and compare. Missing fixtures fail the tests (they
//! never pass silently).
//!
//! Also here: errors for bad checkpoints, and a finite-difference check of the
//! gradients of the decoder graph's parameters through rewardkit's autodiff.

use std::path::{Path, PathBuf};

use ndarray::{Array2, ArrayD};
use rewardkit::autodiff::differentiate;
use rewardkit::model::bert::{ATTENTION_MASK, INPUT_IDS, POOLED, SCORES};
use rewardkit::model::decoder::{ROTARY_COS, ROTARY_SIN};
use rewardkit::model::init::SeededRng;
use rewardkit::model::{
    build_decoder_reward_model_graph, DecoderBuildOptions, DecoderConfig, RewardHead, RopeScaling,
    Weight, Weights,
};
use rewardkit::onnx::builder::{model, tensor_f32, Attr, Dim};
use rewardkit::onnx::io::{tensor_to_f32, write_model, DEFAULT_EXTERNAL_THRESHOLD};
use rewardkit::onnx::proto::data_type::FLOAT;
use rewardkit::onnx::{GraphBuilder, ModelProto};
use rewardkit::runtime::{ModelRunner, RunnerOptions, TensorInput};

/// Largest allowed |rewardkit - transformers| of any logit.
const TOLERANCE: f32 = 1e-4;

const FAMILIES: &[&str] = &["llama", "mistral", "qwen2"];

struct Batch {
    name: String,
    input_ids: Array2<i64>,
    attention_mask: Array2<i64>,
    logits: Array2<f32>,
}

struct Expected {
    pad_token_id: i64,
    num_labels: usize,
    inv_freq: Vec<f64>,
    batches: Vec<Batch>,
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The fixture directory of a family; fails the test when a file is missing.
fn fixture_dir(family: &str) -> PathBuf {
    let dir = root().join("tests/fixtures/decoder").join(family);
    let has_weights = dir.join("model.safetensors").is_file()
        || dir.join("model.safetensors.index.json").is_file();
    assert!(
        dir.join("config.json").is_file() && dir.join("expected.json").is_file() && has_weights,
        "the decoder parity fixture {} is missing or incomplete: regenerate it with \
         `python tests/fixtures/make_decoder_parity.py` (needs torch and transformers)",
        dir.display()
    );
    dir
}

fn matrix<T>(v: &serde_json::Value, what: &str, f: impl Fn(&serde_json::Value) -> T) -> Array2<T> {
    let rows = v
        .as_array()
        .unwrap_or_else(|| panic!("{what}: expected rows"));
    let n = rows.len();
    let m = rows[0].as_array().map_or(0, Vec::len);
    let flat: Vec<T> = rows
        .iter()
        .flat_map(|r| r.as_array().unwrap_or_else(|| panic!("{what}: row")))
        .map(&f)
        .collect();
    Array2::from_shape_vec((n, m), flat).unwrap_or_else(|e| panic!("{what}: ragged rows: {e}"))
}

fn expected(dir: &Path) -> Expected {
    let path = dir.join("expected.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let doc: serde_json::Value = serde_json::from_str(&text).expect("expected.json is JSON");
    let int = |x: &serde_json::Value| x.as_i64().expect("integer");
    let float = |x: &serde_json::Value| x.as_f64().expect("number") as f32;
    let batches: Vec<Batch> = doc["batches"]
        .as_array()
        .expect("batches")
        .iter()
        .map(|b| {
            let name = b["name"].as_str().expect("name").to_string();
            Batch {
                input_ids: matrix(&b["input_ids"], &name, int),
                attention_mask: matrix(&b["attention_mask"], &name, int),
                logits: matrix(&b["logits"], &name, float),
                name,
            }
        })
        .collect();
    assert!(batches.len() >= 2, "the fixture needs several batches");
    Expected {
        pad_token_id: doc["pad_token_id"].as_i64().expect("pad_token_id"),
        num_labels: doc["num_labels"].as_u64().expect("num_labels") as usize,
        inv_freq: doc["rotary_inv_freq"]
            .as_array()
            .expect("rotary_inv_freq")
            .iter()
            .map(|x| x.as_f64().expect("number"))
            .collect(),
        batches,
    }
}

/// Config, weights (without `score.weight`) and the head made from the
/// checkpoint's `score.weight` with a zero bias (transformers' score layer
/// has none).
fn load(dir: &Path, num_labels: usize) -> (DecoderConfig, Weights, RewardHead) {
    let cfg = DecoderConfig::from_file(&dir.join("config.json")).expect("config");
    let mut weights = Weights::from_dir(dir).expect("weights");
    let (_, score) = weights
        .take(
            &["score.weight".to_string()],
            &[num_labels, cfg.hidden_size],
        )
        .expect("score.weight");
    let head =
        RewardHead::from_parts(score.data, vec![0.0; num_labels], cfg.hidden_size).expect("head");
    (cfg, weights, head)
}

fn open(model: &ModelProto, dir: &Path, name: &str) -> ModelRunner {
    let path = dir.join(format!("{name}.onnx"));
    write_model(&path, model, DEFAULT_EXTERNAL_THRESHOLD).expect("write model");
    ModelRunner::open(
        &path,
        RunnerOptions {
            threads: 1,
            ..Default::default()
        },
    )
    .unwrap_or_else(|e| panic!("{name}: ONNX Runtime rejected the graph: {e}"))
}

fn run(runner: &ModelRunner, ids: &Array2<i64>, mask: &Array2<i64>, out: &str) -> Array2<f32> {
    let inputs = vec![
        TensorInput::new(INPUT_IDS, ids.clone()),
        TensorInput::new(ATTENTION_MASK, mask.clone()),
    ];
    let y: ArrayD<f32> = runner
        .run(inputs, &[out])
        .expect("run")
        .pop()
        .expect("output");
    y.into_dimensionality().expect("rank 2")
}

fn max_abs_diff(a: &Array2<f32>, b: &Array2<f32>) -> f32 {
    assert_eq!(a.shape(), b.shape());
    a.iter()
        .zip(b.iter())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Build the family's graph, run every fixture batch, and compare the logits.
fn check_family(family: &str, opts: DecoderBuildOptions) -> f32 {
    let dir = fixture_dir(family);
    let fx = expected(&dir);
    let (cfg, mut weights, head) = load(&dir, fx.num_labels);
    let (model, params) =
        build_decoder_reward_model_graph(&cfg, &mut weights, &head, opts).expect("build");
    assert!(
        !params.iter().any(|p| p == ROTARY_COS || p == ROTARY_SIN),
        "the rotary tables must not be trainable parameters"
    );
    let leftover: Vec<&str> = weights.names().collect();
    assert!(
        leftover.is_empty(),
        "{family}: checkpoint tensors the graph did not use: {leftover:?}"
    );
    let tmp = tempfile::tempdir().expect("tempdir");
    let runner = open(&model, tmp.path(), family);
    let mut worst = 0.0f32;
    let mut failures = Vec::new();
    for b in &fx.batches {
        let got = run(&runner, &b.input_ids, &b.attention_mask, SCORES);
        let d = max_abs_diff(&got, &b.logits);
        println!(
            "{family}: batch {} {:?}: max |diff| {d:.3e}",
            b.name,
            b.input_ids.shape()
        );
        worst = worst.max(d);
        if d.is_nan() || d > TOLERANCE {
            failures.push(format!(
                "batch {}: max |diff| {d:.3e}\n  rewardkit    {got:?}\n  transformers {:?}",
                b.name, b.logits
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{family}: logits differ from transformers by more than {TOLERANCE:e}:\n{}",
        failures.join("\n")
    );
    println!("{family}: max |diff| vs transformers {worst:.3e} (tolerance {TOLERANCE:e})");
    worst
}

#[test]
fn llama_matches_transformers() {
    let cfg = DecoderConfig::from_file(&fixture_dir("llama").join("config.json")).expect("config");
    assert!(
        matches!(cfg.rope_scaling, Some(RopeScaling::Llama3 { .. })),
        "the llama fixture should use llama3 rope scaling, found {:?}",
        cfg.rope_scaling
    );
    check_family("llama", DecoderBuildOptions::default());
}

#[test]
fn mistral_matches_transformers() {
    let cfg =
        DecoderConfig::from_file(&fixture_dir("mistral").join("config.json")).expect("config");
    assert_eq!(
        cfg.layer_window(0),
        Some(5),
        "mistral fixture: sliding window"
    );
    assert_ne!(cfg.head_dim * cfg.num_attention_heads, cfg.hidden_size);
    check_family("mistral", DecoderBuildOptions::default());
}

#[test]
fn qwen2_matches_transformers() {
    let dir = fixture_dir("qwen2");
    assert!(
        !dir.join("model.safetensors").exists()
            && dir.join("model.safetensors.index.json").is_file(),
        "the qwen2 fixture should be sharded"
    );
    let cfg = DecoderConfig::from_file(&dir.join("config.json")).expect("config");
    assert!(cfg.qkv_bias && !cfg.o_bias);
    check_family("qwen2", DecoderBuildOptions::default());
}

/// Pooling at the last non-pad id (transformers' rule) gives the same logits
/// when pad ids occur only as padding, as in the fixtures.
#[test]
fn pad_token_pooling_matches_mask_pooling() {
    for family in FAMILIES {
        let fx = expected(&fixture_dir(family));
        check_family(
            family,
            DecoderBuildOptions::default().with_pool_pad_token_id(fx.pad_token_id),
        );
    }
}

/// The rotary inverse frequencies (llama3 scaling included) equal the ones
/// transformers computed.
#[test]
fn rotary_frequencies_match_transformers() {
    for family in FAMILIES {
        let dir = fixture_dir(family);
        let fx = expected(&dir);
        let cfg = DecoderConfig::from_file(&dir.join("config.json")).expect("config");
        let got = cfg.rope_inv_freq();
        assert_eq!(got.len(), fx.inv_freq.len(), "{family}");
        for (i, (g, w)) in got.iter().zip(&fx.inv_freq).enumerate() {
            assert!(
                ((g - w) / w).abs() < 1e-6,
                "{family}: inverse frequency {i}: rewardkit {g}, transformers {w}"
            );
        }
    }
}

/// A row the mask hides entirely, and a batch of one token, give finite scores.
#[test]
fn fully_masked_rows_stay_finite() {
    let dir = fixture_dir("mistral");
    let fx = expected(&dir);
    let (cfg, mut weights, head) = load(&dir, fx.num_labels);
    let (model, _) = build_decoder_reward_model_graph(
        &cfg,
        &mut weights,
        &head,
        DecoderBuildOptions::default().with_expose_pooled(true),
    )
    .expect("build");
    let tmp = tempfile::tempdir().expect("tempdir");
    let runner = open(&model, tmp.path(), "masked");
    let ids = Array2::from_shape_vec((2, 4), vec![5, 6, 7, 8, 0, 0, 0, 0]).expect("ids");
    let mask = Array2::from_shape_vec((2, 4), vec![1, 1, 1, 1, 0, 0, 0, 0]).expect("mask");
    for out in [SCORES, POOLED] {
        let y = run(&runner, &ids, &mask, out);
        assert!(y.iter().all(|v| v.is_finite()), "{out}: {y:?}");
    }
    let one = Array2::from_shape_vec((1, 1), vec![5]).expect("ids");
    let y = run(&runner, &one, &Array2::ones((1, 1)), SCORES);
    assert!(y.iter().all(|v| v.is_finite()), "{y:?}");
}

/// The graph's inputs can be capped to fewer positions than the config allows.
#[test]
fn max_positions_bounds_the_rotary_tables() {
    let dir = fixture_dir("llama");
    let fx = expected(&dir);
    let (cfg, mut weights, head) = load(&dir, fx.num_labels);
    let (model, _) = build_decoder_reward_model_graph(
        &cfg,
        &mut weights,
        &head,
        DecoderBuildOptions::default().with_max_positions(16),
    )
    .expect("build");
    let graph = model.graph.as_ref().expect("graph");
    let cos = graph
        .initializer
        .iter()
        .find(|t| t.name() == ROTARY_COS)
        .expect("cos table");
    assert_eq!(cos.dims, vec![16, cfg.head_dim as i64]);
}

// ---------------------------------------------------------------- errors

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
    }
}

#[test]
fn unknown_model_type_is_named() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let text = std::fs::read_to_string(fixture_dir("llama").join("config.json")).expect("config");
    let path = tmp.path().join("config.json");
    std::fs::write(&path, text.replace("\"llama\"", "\"gpt_neox\"")).expect("write");
    let err = DecoderConfig::from_file(&path).unwrap_err().to_string();
    assert!(
        err.contains("gpt_neox") && err.contains("llama") && err.contains("qwen2"),
        "{err}"
    );
}

#[test]
fn unsupported_rope_type_is_named() {
    let path = fixture_dir("llama").join("config.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("config")).expect("json");
    v["rope_parameters"]["rope_type"] = "dynamic".into();
    let err = DecoderConfig::from_json(&v, &path).unwrap_err().to_string();
    assert!(err.contains("dynamic"), "{err}");
}

#[test]
fn missing_shard_is_named() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("qwen2");
    copy_dir(&fixture_dir("qwen2"), &dir);
    let shard = "model-00002-of-00003.safetensors";
    std::fs::remove_file(dir.join(shard)).expect("remove shard");
    let err = Weights::from_dir(&dir).unwrap_err().to_string();
    assert!(
        err.contains(shard) && err.contains("model.safetensors.index.json"),
        "{err}"
    );
}

#[test]
fn malformed_index_is_reported() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("qwen2");
    copy_dir(&fixture_dir("qwen2"), &dir);
    let index = dir.join("model.safetensors.index.json");
    std::fs::write(&index, r#"{"metadata": {}}"#).expect("write");
    let err = Weights::from_dir(&dir).unwrap_err().to_string();
    assert!(err.contains("weight_map"), "{err}");
    std::fs::write(&index, r#"{"weight_map": {"a": "../etc/passwd"}}"#).expect("write");
    let err = Weights::from_dir(&dir).unwrap_err().to_string();
    assert!(err.contains("../etc/passwd"), "{err}");
    std::fs::write(&index, "not json").expect("write");
    let err = Weights::from_dir(&dir).unwrap_err().to_string();
    assert!(err.contains("JSON"), "{err}");
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).expect("mkdir");
    let err = Weights::from_dir(&empty).unwrap_err().to_string();
    assert!(err.contains("model.safetensors"), "{err}");
}

#[test]
fn wrong_shape_is_named_with_both_shapes() {
    let dir = fixture_dir("llama");
    let cfg = DecoderConfig::from_file(&dir.join("config.json")).expect("config");
    let (v, h) = (cfg.vocab_size, cfg.hidden_size);
    let mut map = std::collections::HashMap::new();
    map.insert(
        "model.embed_tokens.weight".to_string(),
        Weight {
            shape: vec![v, h + 1],
            data: vec![0.0; v * (h + 1)],
        },
    );
    let mut weights = Weights::from_map(Path::new("bad.safetensors"), map);
    let head = RewardHead::init(1, h, 0.02, 0).expect("head");
    let err =
        build_decoder_reward_model_graph(&cfg, &mut weights, &head, DecoderBuildOptions::default())
            .unwrap_err()
            .to_string();
    assert!(
        err.contains("model.embed_tokens.weight")
            && err.contains(&format!("[{v}, {}]", h + 1))
            && err.contains(&format!("[{v}, {h}]")),
        "{err}"
    );
}

// ------------------------------------------------------------- gradients

/// Finite-difference check of d(Σ scores ⊙ R)/dθ for entries of every
/// trainable tensor of a fixture model, through rewardkit's autodiff (which
/// fails on any op without a gradient rule on the way to `scores`).
fn gradient_check(family: &str) {
    let dir = fixture_dir(family);
    let fx = expected(&dir);
    let (cfg, mut weights, head) = load(&dir, fx.num_labels);
    let mut head = head;
    head.bias = (0..fx.num_labels).map(|i| 0.1 * i as f32).collect();
    let (inference, params) =
        build_decoder_reward_model_graph(&cfg, &mut weights, &head, DecoderBuildOptions::default())
            .expect("build");
    let batch = &fx.batches[0];
    let (rows, n_out) = (batch.input_ids.nrows(), fx.num_labels);

    // Parameters become graph inputs, as in the training graphs.
    let mut g = GraphBuilder::from_graph(inference.graph.expect("graph"));
    g.clear_outputs();
    let mut values: Vec<(String, Vec<usize>, Vec<f32>)> = Vec::new();
    for name in &params {
        let t = g.take_initializer(name).expect("initializer");
        let dims: Vec<Dim> = t.dims.iter().map(|&d| Dim::Fixed(d)).collect();
        g.declare_input(name, FLOAT, &dims);
        let shape = t.dims.iter().map(|&d| d as usize).collect();
        values.push((name.clone(), shape, tensor_to_f32(&t).expect("values")));
    }
    let mut rng = SeededRng::new(7);
    let r = g.initializer(tensor_f32(
        "loss_weights",
        &[rows as i64, n_out as i64],
        &rng.normal_vec(rows * n_out, 1.0),
    ));
    let prod = g.op("Mul", &[SCORES, &r], vec![]);
    let loss = g.op("ReduceSum", &[&prod], vec![("keepdims", Attr::Int(0))]);
    let grads = differentiate(&mut g, &loss, &params)
        .unwrap_or_else(|e| panic!("{family}: differentiate failed: {e}"));
    g.output(&loss, "loss", FLOAT, &[]);
    let mut outs = vec!["loss".to_string()];
    for (k, (_, gname)) in grads.grads.iter().enumerate() {
        let out = format!("grad_{k}");
        let dims: Vec<Dim> = values[k].1.iter().map(|&d| Dim::Fixed(d as i64)).collect();
        g.output(gname, &out, FLOAT, &dims);
        outs.push(out);
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let runner = open(&model(g.build("grad"), ""), tmp.path(), "grad");

    let eval = |vals: &[(String, Vec<usize>, Vec<f32>)], outs: &[&str]| -> Vec<ArrayD<f32>> {
        let mut inputs = vec![
            TensorInput::new(INPUT_IDS, batch.input_ids.clone()),
            TensorInput::new(ATTENTION_MASK, batch.attention_mask.clone()),
        ];
        for (n, s, v) in vals {
            inputs.push(TensorInput::new(
                n,
                ArrayD::from_shape_vec(s.clone(), v.clone()).expect("shape"),
            ));
        }
        runner.run(inputs, outs).expect("run")
    };
    let out_refs: Vec<&str> = outs.iter().map(String::as_str).collect();
    let analytic = eval(&values, &out_refs);
    let eps = 1e-2f32;
    let mut checked = 0;
    let mut failures = Vec::new();
    for (k, (pname, _, v)) in values.iter().enumerate() {
        let grad = analytic[k + 1].as_slice().expect("contiguous").to_vec();
        assert_eq!(grad.len(), v.len(), "{family}: gradient of {pname}");
        assert!(grad.iter().all(|x| x.is_finite()), "{family}: {pname}");
        // The entry with the largest gradient, and two more spread out.
        let top = (0..grad.len())
            .max_by(|&a, &b| grad[a].abs().total_cmp(&grad[b].abs()))
            .unwrap_or(0);
        for i in [top, v.len() / 3, (2 * v.len()) / 3 + 1] {
            let i = i.min(v.len() - 1);
            let mut plus = values.clone();
            plus[k].2[i] += eps;
            let mut minus = values.clone();
            minus[k].2[i] -= eps;
            let lp = eval(&plus, &["loss"])[0]
                .iter()
                .copied()
                .next()
                .expect("loss");
            let lm = eval(&minus, &["loss"])[0]
                .iter()
                .copied()
                .next()
                .expect("loss");
            let fd = (lp - lm) / (2.0 * eps);
            let tol = 2e-2 * fd.abs().max(grad[i].abs()).max(1.0);
            checked += 1;
            if (grad[i] - fd).abs() > tol {
                failures.push(format!(
                    "d loss / d {pname}[{i}]: analytic {} vs finite difference {fd}",
                    grad[i]
                ));
            }
        }
    }
    println!(
        "{family}: {checked} gradient entries over {} tensors checked",
        values.len()
    );
    assert!(
        failures.is_empty(),
        "{family}: gradients differ from finite differences:\n{}",
        failures.join("\n")
    );
}

#[test]
fn qwen2_gradients_match_finite_differences() {
    gradient_check("qwen2");
}

#[test]
fn mistral_gradients_match_finite_differences() {
    gradient_check("mistral");
}
