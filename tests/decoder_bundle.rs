//! Decoder reward models end to end: `import` of the tiny Llama, Mistral and
//! Qwen2 checkpoints in tests/fixtures/decoder (with a small word-level
//! tokenizer and a chat template written here), scoring through the bundle,
//! truncation that keeps the end of the turn, and training with the BT and
//! Scaled BT recipes.

mod common;

use std::path::{Path, PathBuf};

use ndarray::{Array2, Axis};
use rewardkit::bundle::{import_hf, Bundle, ImportOptions, TextFormat};
use rewardkit::model::Pooling;
use rewardkit::runtime::{ModelRunner, RunnerOptions, TensorInput};
use rewardkit::text::{ChatTemplate, ChatTemplateSpec, PairTokenizer, TextMode};
use rewardkit::train::{Control, Examples, Init, Pair, Recipe, Trainer};
use rewardkit::{Scorer, ScorerOptions};

const SPECIALS: &[&str] = &[
    "<pad>",
    "<s>",
    "</s>",
    "<unk>",
    "<|user|>",
    "<|assistant|>",
    "<|system|>",
    "<|end|>",
];

/// A word-level tokenizer over [`SPECIALS`] and the test words (ids below the
/// fixtures' vocabulary of 100), lower-casing, splitting on whitespace and
/// punctuation, and adding `<s>` in front of single sequences.
fn tokenizer_json() -> String {
    common::word_tokenizer_json(
        SPECIALS,
        "<unk>",
        serde_json::json!({"type": "Whitespace"}),
        serde_json::json!({
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"Sequence": {"id": "B", "type_id": 1}}],
            "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}
        }),
        100,
    )
}

const TEMPLATE: &str = "{{ bos_token }}{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] | trim }} <|end|>\n{% endfor %}{% if add_generation_prompt %}<|assistant|> {% endif %}";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A copy of a fixture checkpoint with the tokenizer (and, when `chat`, a
/// chat template) beside it.
fn checkpoint(dir: &Path, family: &str, chat: bool) -> PathBuf {
    let src = root().join("tests/fixtures/decoder").join(family);
    assert!(
        src.join("config.json").is_file(),
        "missing fixture {}",
        src.display()
    );
    let dst = dir.join(format!("{family}-hf"));
    std::fs::create_dir_all(&dst).expect("mkdir");
    for e in std::fs::read_dir(&src).expect("fixture dir") {
        let e = e.expect("entry");
        std::fs::copy(e.path(), dst.join(e.file_name())).expect("copy");
    }
    std::fs::write(dst.join("tokenizer.json"), tokenizer_json()).expect("tokenizer");
    if chat {
        let cfg =
            serde_json::json!({"chat_template": TEMPLATE, "bos_token": "<s>", "eos_token": "</s>"});
        std::fs::write(dst.join("tokenizer_config.json"), cfg.to_string()).expect("config");
    }
    dst
}

fn ids_of(v: &serde_json::Value) -> Array2<i64> {
    let rows: Vec<Vec<i64>> = serde_json::from_value(v.clone()).expect("ids");
    let n = rows.len();
    let m = rows[0].len();
    Array2::from_shape_vec((n, m), rows.into_iter().flatten().collect()).expect("shape")
}

/// The imported bundle's model.onnx reproduces transformers' logits for the
/// fixture's batches: the whole import path (config, weights, head from
/// `score.weight`, graph, writing) against the reference.
#[test]
fn imported_bundles_reproduce_transformers_logits() {
    for family in ["llama", "mistral", "qwen2"] {
        let dir = tempfile::tempdir().expect("tempdir");
        let hf = checkpoint(dir.path(), family, true);
        let out = dir.path().join("bundle");
        let bundle = import_hf(&hf, &out, &ImportOptions::default()).expect("import");
        let m = bundle.manifest();
        assert_eq!(m.architecture.family, family);
        assert_eq!(m.pooling, Pooling::Last);
        assert_eq!(m.format_version, 2);
        assert_eq!(m.inputs, ["input_ids", "attention_mask"]);
        assert!(matches!(m.text, TextFormat::Chat { .. }), "{:?}", m.text);

        let expected: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(hf.join("expected.json")).expect("expected.json"),
        )
        .expect("json");
        let n_labels = expected["num_labels"].as_u64().expect("num_labels") as usize;
        assert_eq!(m.outputs.len(), n_labels, "{family}: {:?}", m.outputs);
        let runner =
            ModelRunner::open(&bundle.model_path(), RunnerOptions::default()).expect("open model");
        let mut worst = 0f32;
        for b in expected["batches"].as_array().expect("batches") {
            let ids = ids_of(&b["input_ids"]);
            let mask = ids_of(&b["attention_mask"]);
            let logits: Vec<Vec<f32>> =
                serde_json::from_value(b["logits"].clone()).expect("logits");
            let out = runner
                .run(
                    vec![
                        TensorInput::new("input_ids", ids),
                        TensorInput::new("attention_mask", mask),
                    ],
                    &["scores"],
                )
                .expect("run");
            for (row, want) in out[0].axis_iter(Axis(0)).zip(&logits) {
                for (g, w) in row.iter().zip(want) {
                    worst = worst.max((g - w).abs());
                }
            }
        }
        assert!(
            worst < 1e-4,
            "{family}: max |bundle - transformers| = {worst}"
        );
    }
}

fn pairs() -> Vec<(String, String)> {
    vec![
        (
            "explain water please".into(),
            "sure , water is good .".into(),
        ),
        (
            "User: hello there\n\nAssistant: hello\n\nUser: why is the sun good ?".into(),
            "the sun is good and helpful , here is a correct answer about it .".into(),
        ),
        ("what".into(), "no".into()),
        ("how do you help a cat ?".into(), "".into()),
    ]
}

#[test]
fn scorer_gives_the_same_scores_alone_and_in_padded_batches() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (family, chat) in [("llama", true), ("qwen2", false)] {
        let hf = checkpoint(dir.path(), family, chat);
        let out = dir.path().join(format!("{family}-bundle"));
        import_hf(&hf, &out, &ImportOptions::default().with_max_length(64)).expect("import");
        let scorer = Scorer::open(&out, ScorerOptions::default()).expect("scorer");
        let (p, r): (Vec<String>, Vec<String>) = pairs().into_iter().unzip();
        let all = scorer.score_batch_outputs(&p, &r).expect("batch");
        for (i, (p, r)) in pairs().iter().enumerate() {
            let one = scorer.score_batch_outputs(&[p], &[r]).expect("one");
            for (a, b) in one.row(0).iter().zip(all.row(i)) {
                assert!(
                    (a - b).abs() < 1e-4,
                    "{family} pair {i}: {a} alone, {b} batched"
                );
                assert!(a.is_finite());
            }
        }
        // The rows differ: the model reads the text.
        assert!((all[[0, 0]] - all[[1, 0]]).abs() > 1e-6);
        let m = scorer.bundle().manifest();
        if chat {
            assert!(matches!(m.text, TextFormat::Chat { .. }));
        } else {
            assert_eq!(m.text, TextFormat::Plain);
        }
    }
}

#[test]
fn chat_encoding_truncates_the_prompt_and_keeps_the_turn_end() {
    let spec = ChatTemplateSpec::new(TEMPLATE)
        .with_special_token("bos_token", "<s>")
        .expect("token");
    let template = ChatTemplate::new(spec).expect("template");
    let tok = PairTokenizer::from_bytes(tokenizer_json().as_bytes(), 16, "test")
        .expect("tokenizer")
        .with_mode(TextMode::Chat(Box::new(template)))
        .expect("mode");
    let short = tok.encode_pair("why", "yes").expect("short");
    let id = |t: &str| i64::from(tok.inner().token_to_id(t).expect("in vocabulary"));
    assert_eq!(
        short.ids,
        [1, 4, id("why"), 7, 5, id("yes"), 7],
        "<s> <|user|> why <|end|> <|assistant|> yes <|end|>"
    );
    let long_prompt = "why ".repeat(40);
    let long_response = "yes ".repeat(40);
    let enc = tok.encode_pair(&long_prompt, &long_response).expect("long");
    assert_eq!(enc.len(), 16);
    assert_eq!(enc.ids[0], 1, "BOS kept: {:?}", enc.ids);
    assert_eq!(
        *enc.ids.last().expect("last"),
        7,
        "end of turn kept: {:?}",
        enc.ids
    );
    let assistant = enc
        .ids
        .iter()
        .position(|&i| i == 5)
        .expect("assistant marker kept");
    // Some prompt and mostly response.
    assert!((2..8).contains(&assistant), "{:?}", enc.ids);
    let plain = PairTokenizer::from_bytes(tokenizer_json().as_bytes(), 16, "test")
        .expect("tokenizer")
        .with_mode(TextMode::Plain)
        .expect("mode");
    let r = plain.render("why", "yes").expect("render").expect("text");
    assert_eq!(r.text, "User: why\n\nAssistant: yes");
    assert_eq!(&r.text[r.response_start..r.response_end], "yes");
    let enc = plain
        .encode_pair(&long_prompt, &long_response)
        .expect("plain long");
    assert_eq!(enc.len(), 16);
    assert_eq!(enc.ids[0], 1);
}

fn toy_pairs(n: usize) -> Vec<Pair> {
    let topics = [
        "water", "fire", "the sun", "the moon", "a cat", "a dog", "a river", "a tree",
    ];
    (0..n)
        .map(|i| {
            let t = topics[i % topics.len()];
            Pair {
                prompt: format!("explain {t} please"),
                chosen: format!(
                    "sure , {t} is good . here is a helpful and correct answer about {t} ."
                ),
                rejected: format!("no . {t} is bad and i will not help , wrong answer ."),
                strength: Some(((i % 3) + 1) as f32),
                subset: None,
            }
        })
        .collect()
}

fn recipe(loss: &str) -> Recipe {
    let text = format!(
        "name = \"decoder-test\"\n[model]\nmax_length = 48\nhead_seed = 3\n[loss]\nkind = \"{loss}\"\n\
         [optimizer]\nlr = 3e-3\nweight_decay = 0.01\nclip = 1.0\n[training]\nbatch_size = 4\nthreads = 1\nepochs = 2\n"
    );
    Recipe::parse(&text, "test recipe", &[]).expect("recipe")
}

/// A tiny decoder learns the toy preference with BT (from the imported
/// bundle) and Scaled BT (from the bare checkpoint directory), and the
/// written bundle scores like the trainer's own forward pass.
#[test]
fn tiny_decoders_train_with_bt_and_scaled_bt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hf = checkpoint(dir.path(), "llama", true);
    let imported = dir.path().join("imported");
    import_hf(
        &hf,
        &imported,
        &ImportOptions::default().with_max_length(64),
    )
    .expect("import");
    for (loss, init) in [
        ("bt", Init::Bundle(imported.clone())),
        ("scaled_bt", Init::Backbone(hf.clone())),
    ] {
        let work = dir.path().join(format!("work-{loss}"));
        let mut t = Trainer::new(
            recipe(loss),
            &init,
            Examples::Pairs(toy_pairs(32)),
            Some(Examples::Pairs(toy_pairs(16))),
            None,
            &work,
        )
        .expect("trainer");
        let before = t.evaluate(None).expect("eval").expect("metrics");
        let out = dir.path().join(format!("out-{loss}"));
        let outcome = t.run(&out, |_| Control::Continue).expect("train");
        let after = outcome.eval.expect("metrics");
        assert!(
            after.loss < before.loss,
            "{loss}: eval loss {} -> {}",
            before.loss,
            after.loss
        );
        assert!(after.accuracy >= Some(0.9), "{loss}: {after:?}");
        let bundle = Bundle::open(&out).expect("bundle");
        assert_eq!(bundle.manifest().architecture.family, "llama");
        assert_eq!(bundle.manifest().pooling, Pooling::Last);
        let pairs = toy_pairs(4);
        let (rc, rr) = t.pair_rewards(&pairs).expect("trainer rewards");
        let scorer = Scorer::open(&out, ScorerOptions::default()).expect("scorer");
        for (i, p) in pairs.iter().enumerate() {
            let c = scorer.score(&p.prompt, &p.chosen).expect("score");
            let r = scorer.score(&p.prompt, &p.rejected).expect("score");
            assert!(
                (c - rc[i]).abs() < 1e-3,
                "{loss}: chosen {c} vs trainer {}",
                rc[i]
            );
            assert!(
                (r - rr[i]).abs() < 1e-3,
                "{loss}: rejected {r} vs trainer {}",
                rr[i]
            );
        }
    }
}

#[test]
fn import_errors_name_what_is_wrong() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hf = checkpoint(dir.path(), "llama", true);
    // A bare backbone (no score.weight) needs --outputs.
    let mut cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(hf.join("config.json")).expect("cfg"))
            .expect("json");
    cfg["model_type"] = "gpt_neox".into();
    let bad = dir.path().join("neox");
    std::fs::create_dir_all(&bad).expect("mkdir");
    std::fs::write(bad.join("config.json"), cfg.to_string()).expect("write");
    let err = import_hf(&bad, &dir.path().join("x"), &ImportOptions::default()).unwrap_err();
    assert!(err.to_string().contains("gpt_neox"), "{err}");

    let broken = checkpoint(dir.path(), "mistral", false);
    let cfg = serde_json::json!({"chat_template": "{% for m in messages %}{{ m.content }", "bos_token": "<s>"});
    std::fs::write(broken.join("tokenizer_config.json"), cfg.to_string()).expect("write");
    let err = import_hf(&broken, &dir.path().join("y"), &ImportOptions::default()).unwrap_err();
    assert!(err.to_string().contains("line 1"), "{err}");
    assert!(!dir.path().join("y").exists(), "nothing written on error");

    let no_tok = checkpoint(dir.path(), "qwen2", false);
    std::fs::remove_file(no_tok.join("tokenizer.json")).expect("rm");
    let err = import_hf(&no_tok, &dir.path().join("z"), &ImportOptions::default()).unwrap_err();
    assert!(err.to_string().contains("tokenizer.json"), "{err}");

    // A fresh head replaces the checkpoint's; five named outputs.
    let names: Vec<String> = [
        "helpfulness",
        "correctness",
        "coherence",
        "complexity",
        "verbosity",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let b = import_hf(
        &hf,
        &dir.path().join("fresh"),
        &ImportOptions::default()
            .with_outputs(names.clone())
            .with_max_length(32),
    )
    .expect("fresh head");
    assert_eq!(b.manifest().outputs, names);
    assert_eq!(b.manifest().max_length, 32);
    let err = import_hf(
        &hf,
        &dir.path().join("too-long"),
        &ImportOptions::default().with_max_length(100_000),
    )
    .unwrap_err();
    assert!(err.to_string().contains("max_position_embeddings"), "{err}");
}

/// `rewardkit init --backbone` on a decoder checkpoint makes a fresh-head
/// bundle through the import path.
#[test]
fn init_from_a_decoder_backbone_adds_a_fresh_head() {
    use rewardkit::bundle::{init_from_backbone, InitOptions, OutputPreset};
    let dir = tempfile::tempdir().expect("tempdir");
    let hf = checkpoint(dir.path(), "mistral", false);
    let out = dir.path().join("init");
    let b = init_from_backbone(
        &hf,
        &out,
        &InitOptions::default()
            .with_outputs(OutputPreset::HelpSteer2)
            .with_max_length(40),
    )
    .expect("init");
    let m = b.manifest();
    assert_eq!(m.architecture.family, "mistral");
    assert_eq!(m.outputs.len(), 5);
    assert_eq!(m.reward_output, "helpfulness");
    assert_eq!(m.pooling, Pooling::Last);
    assert_eq!(m.text, TextFormat::Plain);
    let scorer = Scorer::open(&out, ScorerOptions::default()).expect("scorer");
    assert!(scorer.score("why", "yes").expect("score").is_finite());
}

/// SteerLM regression on a decoder: five outputs from ratings, written as a
/// bundle whose outputs are the HelpSteer2 attributes.
#[test]
fn a_tiny_decoder_trains_the_steerlm_regression() {
    use rewardkit::train::Rating;
    let dir = tempfile::tempdir().expect("tempdir");
    let hf = checkpoint(dir.path(), "qwen2", true);
    let rows: Vec<Rating> = toy_pairs(16)
        .into_iter()
        .flat_map(|p| {
            [
                Rating {
                    prompt: p.prompt.clone(),
                    response: p.chosen,
                    values: vec![Some(4.0), Some(4.0), Some(3.0), None, Some(2.0)],
                },
                Rating {
                    prompt: p.prompt,
                    response: p.rejected,
                    values: vec![Some(0.0), Some(1.0), Some(3.0), None, Some(1.0)],
                },
            ]
        })
        .collect();
    let text =
        "[model]\noutputs = \"helpsteer2\"\nmax_length = 48\n[loss]\nkind = \"regression\"\n\
                [optimizer]\nlr = 5e-3\n[training]\nbatch_size = 8\nepochs = 15\nthreads = 1\n";
    let recipe = Recipe::parse(text, "regression", &[]).expect("recipe");
    let mut t = Trainer::new(
        recipe,
        &Init::Backbone(hf),
        Examples::Ratings(rows.clone()),
        Some(Examples::Ratings(rows)),
        None,
        &dir.path().join("work"),
    )
    .expect("trainer");
    let before = t.evaluate(None).expect("eval").expect("metrics");
    let out = dir.path().join("out");
    let after = t
        .run(&out, |_| Control::Continue)
        .expect("train")
        .eval
        .expect("metrics");
    assert!(
        after.loss < before.loss * 0.5,
        "regression loss {} -> {}",
        before.loss,
        after.loss
    );
    let scorer = Scorer::open(&out, ScorerOptions::default()).expect("scorer");
    assert_eq!(scorer.output_names().len(), 5);
    assert_eq!(scorer.bundle().manifest().architecture.family, "qwen2");
    let helpful = scorer
        .score(
            "explain water please",
            "sure , water is good . here is a helpful and correct answer about water .",
        )
        .expect("score");
    let unhelpful = scorer
        .score(
            "explain water please",
            "no . water is bad and i will not help , wrong answer .",
        )
        .expect("score");
    assert!(
        helpful > unhelpful + 1.0,
        "helpfulness {helpful} vs {unhelpful}"
    );
}

/// `--dtype fp16`: float16 weights and activations (the head float32) give
/// transformers' fp32 logits within float16's precision, in half the size;
/// training from such a bundle is refused; bf16 is refused with a reason.
#[test]
fn fp16_imports_score_like_fp32_within_half_precision() {
    use rewardkit::model::Precision;
    use rewardkit::onnx::proto::data_type;
    for family in ["llama", "mistral", "qwen2"] {
        let dir = tempfile::tempdir().expect("tempdir");
        let hf = checkpoint(dir.path(), family, false);
        let out = dir.path().join("fp16");
        let bundle = import_hf(
            &hf,
            &out,
            &ImportOptions::default().with_precision(Precision::F16),
        )
        .expect("fp16 import");
        let model = rewardkit::onnx::io::read_model(&bundle.model_path()).expect("model");
        let inits = model.graph.expect("graph").initializer;
        for t in &inits {
            let want = if t.name().starts_with("reward_head.") {
                data_type::FLOAT
            } else if t.name().starts_with("model.") {
                data_type::FLOAT16
            } else {
                continue;
            };
            assert_eq!(t.data_type, Some(want), "{family}: {}", t.name());
        }
        let expected: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(hf.join("expected.json")).expect("expected.json"),
        )
        .expect("json");
        let runner = ModelRunner::open(&bundle.model_path(), RunnerOptions::default())
            .expect("open fp16 model");
        let (mut worst, mut largest) = (0f32, 0f32);
        for b in expected["batches"].as_array().expect("batches") {
            let logits: Vec<Vec<f32>> =
                serde_json::from_value(b["logits"].clone()).expect("logits");
            let out = runner
                .run(
                    vec![
                        TensorInput::new("input_ids", ids_of(&b["input_ids"])),
                        TensorInput::new("attention_mask", ids_of(&b["attention_mask"])),
                    ],
                    &["scores"],
                )
                .expect("run");
            for (row, want) in out[0].axis_iter(Axis(0)).zip(&logits) {
                for (g, w) in row.iter().zip(want) {
                    worst = worst.max((g - w).abs());
                    largest = largest.max(w.abs());
                }
            }
        }
        eprintln!("{family}: fp16 max |score - transformers fp32| = {worst:.2e} (logits up to {largest:.2})");
        // float16 keeps ~3 significant digits; the logits here are O(1).
        assert!(
            worst < 2e-2 * largest.max(1.0),
            "{family}: max |fp16 - transformers fp32| = {worst} (logits up to {largest})"
        );
        assert!(worst > 0.0, "{family}: fp16 equal to fp32 bit for bit?");
        let err = Trainer::new(
            recipe("bt"),
            &Init::Bundle(out.clone()),
            Examples::Pairs(toy_pairs(8)),
            None,
            None,
            &dir.path().join("work"),
        )
        .unwrap_err();
        assert!(err.to_string().contains("float16"), "{err}");
    }
}

/// `--dtype bf16` writes the same graph in bfloat16. ONNX Runtime's CPU
/// provider has no bfloat16 kernels for it, so here the check is the
/// model's types and a clean error (not a crash) when the CPU is asked to
/// run it.
#[test]
fn bf16_imports_are_typed_bfloat16_and_the_cpu_refuses_them_cleanly() {
    use rewardkit::model::Precision;
    use rewardkit::onnx::proto::data_type;
    let dir = tempfile::tempdir().expect("tempdir");
    let hf = checkpoint(dir.path(), "llama", false);
    let out = dir.path().join("bf16");
    let precision: Precision = "bf16".parse().expect("bf16");
    let bundle = import_hf(
        &hf,
        &out,
        &ImportOptions::default().with_precision(precision),
    )
    .expect("bf16 import");
    let model = rewardkit::onnx::io::read_model(&bundle.model_path()).expect("model");
    let graph = model.graph.expect("graph");
    for t in &graph.initializer {
        assert_ne!(t.data_type, Some(data_type::FLOAT16), "{}", t.name());
        if t.name().starts_with("model.") || t.name().starts_with("rotary_emb.") {
            assert_eq!(t.data_type, Some(data_type::BFLOAT16), "{}", t.name());
        }
        if t.name().starts_with("reward_head.") {
            assert_eq!(t.data_type, Some(data_type::FLOAT), "{}", t.name());
        }
    }
    let half_casts = graph
        .node
        .iter()
        .filter(|n| n.op_type() == "Cast")
        .filter(|n| {
            n.attribute
                .iter()
                .any(|a| a.name() == "to" && a.i == Some(data_type::BFLOAT16 as i64))
        })
        .count();
    assert!(half_casts > 0, "no Cast to bfloat16 in the graph");
    assert!(
        graph.node.iter().all(|n| n
            .attribute
            .iter()
            .all(|a| a.name() != "to" || a.i != Some(data_type::FLOAT16 as i64))),
        "a Cast to float16 in a bfloat16 graph"
    );
    match Scorer::open(&out, ScorerOptions::default()) {
        Ok(s) => {
            // A provider with bfloat16 kernels: then it must score.
            assert!(s.score("why", "yes").expect("score").is_finite());
        }
        Err(e) => {
            eprintln!("bf16 on this machine: {e}");
            assert!(!e.to_string().is_empty());
        }
    }
    assert!("bf17".parse::<Precision>().is_err());
}

/// Dynamic int8: every backbone matmul is quantized, scores stay close to
/// float, training and merging such a bundle are refused.
#[test]
fn int8_quantized_bundles_score_close_to_float() {
    use rewardkit::bundle::quantize_int8;
    let dir = tempfile::tempdir().expect("tempdir");
    let hf = checkpoint(dir.path(), "llama", true);
    let float = dir.path().join("float");
    import_hf(&hf, &float, &ImportOptions::default().with_max_length(64)).expect("import");
    let q = dir.path().join("int8");
    let (bundle, summary) = quantize_int8(&float, &q, false).expect("quantize");
    // Two layers of q, k, v, o, gate, up and down projections.
    assert_eq!(summary.matmuls, 14, "{summary:?}");
    assert_eq!(
        bundle.manifest().quantization.as_deref(),
        Some("int8-dynamic-7bit")
    );
    let model = rewardkit::onnx::io::read_model(&bundle.model_path()).expect("model");
    let ops: Vec<String> = model
        .graph
        .expect("graph")
        .node
        .iter()
        .map(|n| n.op_type().to_string())
        .collect();
    assert_eq!(ops.iter().filter(|o| *o == "MatMulInteger").count(), 14);
    let fs = Scorer::open(&float, ScorerOptions::default()).expect("float scorer");
    let qs = Scorer::open(&q, ScorerOptions::default()).expect("int8 scorer");
    let (p, r): (Vec<String>, Vec<String>) = pairs().into_iter().unzip();
    let a = fs.score_batch(&p, &r).expect("float");
    let b = qs.score_batch(&p, &r).expect("int8");
    let spread = a.iter().fold(0f32, |m, v| m.max(v.abs()));
    for (x, y) in a.iter().zip(&b) {
        assert!(
            (x - y).abs() < 0.05 * spread.max(0.1),
            "float {x} vs int8 {y} ({a:?} / {b:?})"
        );
    }
    assert!(a != b, "int8 scores equal float scores bit for bit");
    let err = quantize_int8(&q, &dir.path().join("again"), false).unwrap_err();
    assert!(err.to_string().contains("already quantized"), "{err}");
    let err =
        rewardkit::bundle::merge_expo(&float, &q, 1.5, &dir.path().join("m"), false).unwrap_err();
    assert!(err.to_string().contains("quantized"), "{err}");
    let err = Trainer::new(
        recipe("bt"),
        &Init::Bundle(q.clone()),
        Examples::Pairs(toy_pairs(8)),
        None,
        None,
        &dir.path().join("work"),
    )
    .unwrap_err();
    assert!(err.to_string().contains("quantized"), "{err}");
}

/// The command line: `import` (with `--dtype`), `render` of a bundle and of
/// a checkpoint directory, `quantize`, and `score` of the result.
#[test]
fn import_render_and_quantize_from_the_command_line() {
    use std::process::Command;
    let rk = env!("CARGO_BIN_EXE_rewardkit");
    let dir = tempfile::tempdir().expect("tempdir");
    let hf = checkpoint(dir.path(), "llama", true);
    let run = |args: &[&str]| {
        let out = Command::new(rk).args(args).output().expect("run rewardkit");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        (out.status.success(), text, err)
    };
    let b = dir.path().join("b");
    let b16 = dir.path().join("b16");
    let q = dir.path().join("q");
    let (ok, out, err) = run(&[
        "import",
        "--hf",
        hf.to_str().unwrap(),
        "--out",
        b.to_str().unwrap(),
        "--max-length",
        "64",
    ]);
    assert!(ok, "{err}");
    assert!(
        out.contains("llama") && out.contains("chat template"),
        "{out}"
    );
    let (ok, _, err) = run(&[
        "import",
        "--hf",
        hf.to_str().unwrap(),
        "--out",
        b16.to_str().unwrap(),
        "--dtype",
        "fp16",
    ]);
    assert!(ok, "{err}");
    let (ok, _, err) = run(&[
        "import",
        "--hf",
        hf.to_str().unwrap(),
        "--out",
        b16.to_str().unwrap(),
        "--dtype",
        "fp8",
    ]);
    assert!(!ok && err.contains("fp8"), "{err}");

    let (ok, out, err) = run(&[
        "render",
        "--model",
        b.to_str().unwrap(),
        "--prompt",
        "why",
        "--response",
        "yes",
        "--tokens",
    ]);
    assert!(ok, "{err}");
    assert!(
        out.starts_with("<s><|user|> why <|end|>\n<|assistant|> yes <|end|>"),
        "{out}"
    );
    assert!(
        out.lines().last().unwrap().starts_with("1 4 "),
        "token ids: {out}"
    );
    let (ok, out2, err) = run(&[
        "render",
        "--hf",
        hf.to_str().unwrap(),
        "--prompt",
        "why",
        "--response",
        "yes",
        "--tokens",
    ]);
    assert!(ok, "{err}");
    assert_eq!(out, out2, "bundle and checkpoint render alike");

    let (ok, out, err) = run(&[
        "quantize",
        "--model",
        b.to_str().unwrap(),
        "--out",
        q.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("14 matmuls"), "{out}");
    for m in [&b, &b16, &q] {
        let (ok, out, err) = run(&[
            "score",
            "--model",
            m.to_str().unwrap(),
            "--prompt",
            "why",
            "--response",
            "yes",
        ]);
        assert!(ok, "{}: {err}", m.display());
        assert!(
            out.trim().parse::<f32>().is_ok() || out.contains("reward"),
            "{out}"
        );
    }
}
