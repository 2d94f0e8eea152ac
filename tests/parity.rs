//! Parity with Hugging Face transformers on the real all-MiniLM-L6-v2
//! backbone, without PyTorch: `tests/fixtures/minilm_parity.json` (made by
//! `tests/fixtures/make_minilm_parity.py`) records what `AutoTokenizer` and
//! `AutoModel` produce for a few (prompt, response) pairs, and these tests
//! check rewardkit's tokenizer and ONNX graph against it.
//!
//! The backbone comes from `make setup`; without it these tests fail (they
//! never pass silently).

use std::path::{Path, PathBuf};

use ndarray::{Array2, ArrayD, Axis};
use rewardkit::model::bert::{
    build_reward_model, BuildOptions, ATTENTION_MASK, INPUT_IDS, POOLED, TOKEN_TYPE_IDS,
};
use rewardkit::model::{BertConfig, Pooling, Precision, RewardHead, Weights};
use rewardkit::onnx::io::{write_model, DEFAULT_EXTERNAL_THRESHOLD};
use rewardkit::runtime::{ModelRunner, RunnerOptions, TensorInput};
use rewardkit::text::{pad_batch, EncodedPair, PairTokenizer};

/// Largest allowed |rewardkit - transformers| of any pooled value.
const TOLERANCE: f32 = 1e-4;

struct FixturePair {
    prompt: String,
    response: String,
    input_ids: Vec<i64>,
    token_type_ids: Vec<i64>,
    cls: Vec<f32>,
    mean: Vec<f32>,
}

struct Fixture {
    hidden_size: usize,
    pairs: Vec<FixturePair>,
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The MiniLM backbone directory; fails the test when `make setup` has not run.
fn backbone() -> PathBuf {
    let dir = root().join(".rewardkit/models/all-MiniLM-L6-v2");
    for f in ["config.json", "model.safetensors", "tokenizer.json"] {
        assert!(
            dir.join(f).is_file(),
            "the parity tests need the all-MiniLM-L6-v2 backbone, but {} is missing: \
             run `make setup` first",
            dir.join(f).display()
        );
    }
    dir
}

fn fixture() -> Fixture {
    let path = root().join("tests/fixtures/minilm_parity.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let doc: serde_json::Value = serde_json::from_str(&text).expect("fixture is JSON");
    let ints = |v: &serde_json::Value| -> Vec<i64> {
        v.as_array()
            .expect("array")
            .iter()
            .map(|x| x.as_i64().expect("int"))
            .collect()
    };
    let floats = |v: &serde_json::Value| -> Vec<f32> {
        v.as_array()
            .expect("array")
            .iter()
            .map(|x| x.as_f64().expect("number") as f32)
            .collect()
    };
    let hidden_size = doc["hidden_size"].as_u64().expect("hidden_size") as usize;
    let pairs: Vec<FixturePair> = doc["pairs"]
        .as_array()
        .expect("pairs")
        .iter()
        .map(|p| FixturePair {
            prompt: p["prompt"].as_str().expect("prompt").to_string(),
            response: p["response"].as_str().expect("response").to_string(),
            input_ids: ints(&p["input_ids"]),
            token_type_ids: ints(&p["token_type_ids"]),
            cls: floats(&p["cls"]),
            mean: floats(&p["mean"]),
        })
        .collect();
    assert!(pairs.len() >= 2, "the fixture needs several pairs");
    for p in &pairs {
        assert_eq!(p.input_ids.len(), p.token_type_ids.len());
        assert_eq!(p.cls.len(), hidden_size);
        assert_eq!(p.mean.len(), hidden_size);
    }
    Fixture { hidden_size, pairs }
}

/// The fixture's own ids, as rewardkit would encode them (checked equal by
/// `tokenizer_matches_transformers`).
fn encoded(p: &FixturePair) -> EncodedPair {
    EncodedPair {
        ids: p.input_ids.clone(),
        type_ids: p.token_type_ids.clone(),
    }
}

#[test]
fn tokenizer_matches_transformers() {
    let dir = backbone();
    let fx = fixture();
    let tok = PairTokenizer::from_file(&dir.join("tokenizer.json"), 512).expect("tokenizer");
    let mut mismatches = Vec::new();
    for (i, p) in fx.pairs.iter().enumerate() {
        let got = tok.encode_pair(&p.prompt, &p.response).expect("encode");
        if got.ids != p.input_ids || got.type_ids != p.token_type_ids {
            mismatches.push(format!(
                "pair {i} ({:?}, {:?}):\n  rewardkit ids   {:?}\n  transformers    {:?}\n  \
                 rewardkit types {:?}\n  transformers    {:?}",
                p.prompt, p.response, got.ids, p.input_ids, got.type_ids, p.token_type_ids
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "rewardkit's pair encoding differs from transformers':\n{}",
        mismatches.join("\n")
    );
    assert_eq!(tok.pad_id(), 0, "MiniLM pads with [PAD] = 0");
    println!(
        "tokenizer: {} pairs identical to transformers",
        fx.pairs.len()
    );
}

/// Build the backbone's graph with the `pooled` output and open it.
fn pooled_runner(
    dir: &Path,
    pooling: Pooling,
    fused: bool,
    precision: Precision,
    tmp: &Path,
) -> ModelRunner {
    let cfg = BertConfig::from_file(&dir.join("config.json")).expect("config");
    let mut weights = Weights::from_safetensors(&dir.join("model.safetensors")).expect("weights");
    let head = RewardHead::init(1, cfg.hidden_size, cfg.initializer_range, 0).expect("head");
    let model = build_reward_model(
        &cfg,
        &mut weights,
        &head,
        BuildOptions {
            pooling,
            expose_pooled: true,
            fused,
            precision,
        },
    )
    .expect("build");
    let path = tmp.join(format!("minilm-{pooling:?}-{fused}-{precision:?}.onnx"));
    write_model(&path, &model, DEFAULT_EXTERNAL_THRESHOLD).expect("write model");
    ModelRunner::open(&path, RunnerOptions::default()).expect("open model")
}

fn run_pooled(runner: &ModelRunner, pairs: &[&EncodedPair]) -> Array2<f32> {
    let batch = pad_batch(pairs, 0);
    let mut inputs = vec![
        TensorInput::new(INPUT_IDS, batch.input_ids),
        TensorInput::new(ATTENTION_MASK, batch.attention_mask),
    ];
    if runner.input_names().iter().any(|n| n == TOKEN_TYPE_IDS) {
        inputs.push(TensorInput::new(TOKEN_TYPE_IDS, batch.token_type_ids));
    }
    let out: ArrayD<f32> = runner
        .run(inputs, &[POOLED])
        .expect("run")
        .pop()
        .expect("pooled");
    out.into_dimensionality().expect("[batch, hidden]")
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Run the fixture's pairs as one padded batch and one at a time, and compare
/// the pooled states with transformers'.
fn check_pooling(pooling: Pooling, fused: bool) {
    check_pooling_in(pooling, fused, Precision::F32, TOLERANCE);
}

fn check_pooling_in(pooling: Pooling, fused: bool, precision: Precision, tolerance: f32) {
    let dir = backbone();
    let fx = fixture();
    let tmp = tempfile::tempdir().expect("tempdir");
    let runner = pooled_runner(&dir, pooling, fused, precision, tmp.path());
    let expected = |p: &FixturePair| match pooling {
        Pooling::Cls => p.cls.clone(),
        Pooling::Mean => p.mean.clone(),
        other => panic!("the fixture has no transformers reference for {other:?} pooling"),
    };

    let encs: Vec<EncodedPair> = fx.pairs.iter().map(encoded).collect();
    let refs: Vec<&EncodedPair> = encs.iter().collect();
    let lengths: Vec<usize> = encs.iter().map(EncodedPair::len).collect();
    assert!(
        lengths.iter().min() < lengths.iter().max(),
        "the fixture's pairs should differ in length so padding matters"
    );
    let batched = run_pooled(&runner, &refs);
    assert_eq!(batched.shape(), &[fx.pairs.len(), fx.hidden_size]);

    let mut failures = Vec::new();
    let (mut worst_batched, mut worst_single) = (0.0f32, 0.0f32);
    for (i, p) in fx.pairs.iter().enumerate() {
        let want = expected(p);
        let b = max_abs_diff(
            batched.index_axis(Axis(0), i).as_slice().expect("row"),
            &want,
        );
        let single = run_pooled(&runner, &[&encs[i]]);
        let s = max_abs_diff(single.row(0).as_slice().expect("row"), &want);
        println!(
            "{pooling:?} pooling (fused {fused}, {precision:?}), pair {i} ({} tokens): max |diff| batched {b:.3e}, alone {s:.3e}",
            lengths[i]
        );
        worst_batched = worst_batched.max(b);
        worst_single = worst_single.max(s);
        if !(b <= tolerance && s <= tolerance) {
            failures.push(format!(
                "pair {i} ({} tokens): batched {b:.3e}, alone {s:.3e}",
                lengths[i]
            ));
        }
    }
    println!(
        "{pooling:?} pooling (fused {fused}, {precision:?}): max |diff| vs transformers: batched \
         {worst_batched:.3e}, alone {worst_single:.3e} (tolerance {tolerance:e})"
    );
    assert!(
        failures.is_empty(),
        "{pooling:?} pooled states ({precision:?}) differ from transformers by more than {tolerance:e}:\n{}",
        failures.join("\n")
    );
}

#[test]
fn cls_pooling_matches_transformers() {
    check_pooling(Pooling::Cls, false);
}

#[test]
fn mean_pooling_matches_transformers() {
    check_pooling(Pooling::Mean, false);
}

#[test]
fn fused_graph_matches_transformers() {
    check_pooling(Pooling::Cls, true);
    check_pooling(Pooling::Mean, true);
}

/// The fp16 graph (weights and encoder activations in float16, pooling in
/// float32) against transformers' fp32 states: within half precision
/// (measured: 1.1e-3 fused, 9.3e-4 portable, on pooled states of order 0.1–1).
#[test]
fn fp16_graph_matches_transformers_within_half_precision() {
    for fused in [true, false] {
        check_pooling_in(Pooling::Mean, fused, Precision::F16, 5e-3);
    }
}
