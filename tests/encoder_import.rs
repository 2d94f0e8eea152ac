//! Encoder classification checkpoints end to end: `import` of the tiny
//! `BertForSequenceClassification` in tests/fixtures/encoder/bert (with a
//! small word-level BERT tokenizer written here) against transformers'
//! logits, scoring through the bundle, a fresh head, and a checkpoint
//! without a head.

mod common;

use std::path::{Path, PathBuf};

use ndarray::{Array2, Axis};
use rewardkit::bundle::{import_hf, ImportOptions, TextFormat};
use rewardkit::model::weights::{write_safetensors, SINGLE_FILE};
use rewardkit::model::{Pooling, Weights};
use rewardkit::runtime::{ModelRunner, RunnerOptions, TensorInput};
use rewardkit::{Scorer, ScorerOptions};

/// BERT's special tokens, at the ids the fixture uses (`[PAD]` 0, `[CLS]` 2,
/// `[SEP]` 3).
const SPECIALS: &[&str] = &["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];

/// A word-level tokenizer over [`SPECIALS`] and the test words (ids below the
/// fixture's vocabulary of 100), lower-casing, splitting BERT's way, and
/// encoding pairs as `[CLS] a [SEP] b [SEP]` with token types 0 then 1.
fn tokenizer_json() -> String {
    common::word_tokenizer_json(
        SPECIALS,
        "[UNK]",
        serde_json::json!({"type": "BertPreTokenizer"}),
        serde_json::json!({
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                       {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": "[SEP]", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}},
                     {"SpecialToken": {"id": "[SEP]", "type_id": 1}}],
            "special_tokens": {
                "[CLS]": {"id": "[CLS]", "ids": [2], "tokens": ["[CLS]"]},
                "[SEP]": {"id": "[SEP]", "ids": [3], "tokens": ["[SEP]"]}
            }
        }),
        99,
    )
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A copy of the fixture checkpoint with the tokenizer beside it.
fn checkpoint(dir: &Path) -> PathBuf {
    let src = root().join("tests/fixtures/encoder/bert");
    assert!(
        src.join("config.json").is_file(),
        "missing fixture {}",
        src.display()
    );
    let dst = dir.join("bert-hf");
    std::fs::create_dir_all(&dst).expect("mkdir");
    for e in std::fs::read_dir(&src).expect("fixture dir") {
        let e = e.expect("entry");
        std::fs::copy(e.path(), dst.join(e.file_name())).expect("copy");
    }
    std::fs::write(dst.join("tokenizer.json"), tokenizer_json()).expect("tokenizer");
    dst
}

fn expected(hf: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(hf.join("expected.json")).expect("expected"))
        .expect("json")
}

fn ids_of(v: &serde_json::Value) -> Array2<i64> {
    let rows: Vec<Vec<i64>> = serde_json::from_value(v.clone()).expect("ids");
    let n = rows.len();
    let m = rows[0].len();
    Array2::from_shape_vec((n, m), rows.into_iter().flatten().collect()).expect("shape")
}

/// The bundle's `scores` for one of the fixture's batches; `types` replaces
/// its token type ids when given.
fn run_batch(
    runner: &ModelRunner,
    batch: &serde_json::Value,
    types: Option<Array2<i64>>,
) -> Array2<f32> {
    let types = types.unwrap_or_else(|| ids_of(&batch["token_type_ids"]));
    let out = runner
        .run(
            vec![
                TensorInput::new("input_ids", ids_of(&batch["input_ids"])),
                TensorInput::new("attention_mask", ids_of(&batch["attention_mask"])),
                TensorInput::new("token_type_ids", types),
            ],
            &["scores"],
        )
        .expect("run");
    out.into_iter()
        .next()
        .expect("scores")
        .into_dimensionality()
        .expect("2-d scores")
}

/// The imported bundle's model.onnx reproduces transformers' logits for the
/// fixture's batches: config, weights, the pooler, the head from
/// `classifier.*`, token types and the `id2label` names.
#[test]
fn imported_bert_reproduces_transformers_logits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hf = checkpoint(dir.path());
    let bundle =
        import_hf(&hf, &dir.path().join("bundle"), &ImportOptions::default()).expect("import");
    let m = bundle.manifest();
    assert_eq!(m.architecture.family, "bert");
    assert_eq!(m.pooling, Pooling::Pooler);
    assert_eq!(m.format_version, 2);
    assert_eq!(m.inputs, ["input_ids", "attention_mask", "token_type_ids"]);
    assert_eq!(m.outputs, ["helpful", "harmless"]);
    assert_eq!(m.reward_output, "helpful");
    assert_eq!(m.text, TextFormat::Pair);
    // The position limit (64) is below the encoder default (512).
    assert_eq!(m.max_length, 64);

    let expected = expected(&hf);
    let labels: Vec<String> = serde_json::from_value(expected["labels"].clone()).expect("labels");
    assert_eq!(m.outputs, labels);
    let runner =
        ModelRunner::open(&bundle.model_path(), RunnerOptions::default()).expect("open model");
    let mut worst = 0f32;
    for b in expected["batches"].as_array().expect("batches") {
        let logits: Vec<Vec<f32>> = serde_json::from_value(b["logits"].clone()).expect("logits");
        let got = run_batch(&runner, b, None);
        assert_eq!(got.dim(), (logits.len(), labels.len()), "{}", b["name"]);
        for (row, want) in got.axis_iter(Axis(0)).zip(&logits) {
            for (g, w) in row.iter().zip(want) {
                worst = worst.max((g - w).abs());
            }
        }
        // Token types reach the model: all-zero types change the scores.
        let zeros = Array2::zeros(ids_of(&b["token_type_ids"]).dim());
        let untyped = run_batch(&runner, b, Some(zeros));
        let moved = (&untyped - &got).iter().fold(0f32, |a, d| a.max(d.abs()));
        assert!(moved > 1e-3, "{}: token types ignored ({moved})", b["name"]);
    }
    assert!(worst < 1e-4, "max |bundle - transformers| = {worst}");
    eprintln!("max |bundle - transformers| = {worst:e}");
}

fn pairs() -> Vec<(String, String)> {
    vec![
        (
            "explain water please".into(),
            "sure , water is good .".into(),
        ),
        (
            "why is the sun good ? explain it to the user , please .".into(),
            "the sun is good and helpful , here is a correct answer about it .".into(),
        ),
        ("what".into(), "no".into()),
        ("how do you help a cat ?".into(), "".into()),
    ]
}

#[test]
fn scorer_gives_the_same_scores_alone_and_in_padded_batches() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hf = checkpoint(dir.path());
    let out = dir.path().join("bundle");
    import_hf(&hf, &out, &ImportOptions::default()).expect("import");
    let scorer = Scorer::open(&out, ScorerOptions::default()).expect("scorer");
    assert_eq!(scorer.output_names(), ["helpful", "harmless"]);

    // Pairs are BERT segments: [CLS] prompt [SEP] response [SEP], types 0 then 1.
    let enc = scorer
        .tokenizer()
        .encode_pair("why", "yes")
        .expect("encode");
    let id = |t: &str| i64::from(scorer.tokenizer().inner().token_to_id(t).expect("known"));
    assert_eq!(enc.ids, [2, id("why"), 3, id("yes"), 3]);
    assert_eq!(enc.type_ids, [0, 0, 0, 1, 1]);

    let (p, r): (Vec<String>, Vec<String>) = pairs().into_iter().unzip();
    let all = scorer.score_batch_outputs(&p, &r).expect("batch");
    assert_eq!(all.dim(), (pairs().len(), 2));
    for (i, (p, r)) in pairs().iter().enumerate() {
        let one = scorer.score_batch_outputs(&[p], &[r]).expect("one");
        for (a, b) in one.row(0).iter().zip(all.row(i)) {
            assert!(a.is_finite());
            assert!((a - b).abs() < 1e-4, "pair {i}: {a} alone, {b} batched");
        }
        // The reward is the first output, `helpful`.
        let s = scorer.score(p, r).expect("score");
        assert!(
            (s - one[[0, 0]]).abs() < 1e-6,
            "pair {i}: {s} vs {}",
            one[[0, 0]]
        );
    }
    // The rows differ: the model reads the text.
    assert!((all[[0, 0]] - all[[1, 0]]).abs() > 1e-6);
}

#[test]
fn outputs_option_gives_a_fresh_head() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hf = checkpoint(dir.path());
    let out = dir.path().join("fresh");
    let b = import_hf(
        &hf,
        &out,
        &ImportOptions::default().with_outputs(vec!["reward".into()]),
    )
    .expect("fresh head");
    let m = b.manifest();
    assert_eq!(m.outputs, ["reward"]);
    assert_eq!(m.reward_output, "reward");
    assert_eq!(m.architecture.family, "bert");
    // A fresh encoder head reads the mean of the token states.
    assert_eq!(m.pooling, Pooling::Mean);
    assert_eq!(m.provenance.seed, Some(0));

    let expected = expected(&hf);
    let runner = ModelRunner::open(&b.model_path(), RunnerOptions::default()).expect("open model");
    let batch = &expected["batches"][0];
    let scores = run_batch(&runner, batch, None);
    assert_eq!(scores.dim(), (ids_of(&batch["input_ids"]).nrows(), 1));
    assert!(scores.iter().all(|s| s.is_finite()), "{scores:?}");
    let scorer = Scorer::open(&out, ScorerOptions::default()).expect("scorer");
    let s = scorer.score("explain water please", "sure").expect("score");
    assert!(s.is_finite());
}

#[test]
fn a_checkpoint_without_a_classifier_needs_outputs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hf = checkpoint(dir.path());
    // Drop classifier.* from the weights: a bare backbone with a pooler.
    let mut weights = Weights::from_dir(&hf).expect("weights");
    let mut names: Vec<String> = weights
        .names()
        .filter(|n| !n.starts_with("classifier."))
        .map(str::to_string)
        .collect();
    names.sort();
    assert!(weights.has("classifier.weight"));
    let mut kept = Vec::new();
    for n in names {
        let shape = weights.shape(&n).expect("shape").to_vec();
        kept.push(weights.take(&[n], &shape).expect("take"));
    }
    write_safetensors(&hf.join(SINGLE_FILE), &kept).expect("write");

    let out = dir.path().join("bundle");
    let err = import_hf(&hf, &out, &ImportOptions::default()).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("--outputs"), "{msg}");
    assert!(msg.contains("classifier.weight"), "{msg}");
    assert!(!out.exists(), "nothing written on error");

    let b = import_hf(
        &hf,
        &out,
        &ImportOptions::default().with_outputs(vec!["reward".into()]),
    )
    .expect("fresh head on a bare backbone");
    assert_eq!(b.manifest().outputs, ["reward"]);
}
