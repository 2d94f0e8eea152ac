//! Scorer behaviour on tiny bundles: batching, ordering, options, threads.

mod common;

use std::sync::Arc;

use rewardkit::{Device, ErrorCode, Scorer, ScorerOptions};

fn split(pairs: &[(String, String)]) -> (Vec<&str>, Vec<&str>) {
    pairs.iter().map(|(p, r)| (p.as_str(), r.as_str())).unzip()
}

/// The scores of `bundle` (default options) for the pairs, in one call.
fn scores_of(bundle: &std::path::Path, prompts: &[&str], responses: &[&str]) -> Vec<f32> {
    Scorer::open(bundle, ScorerOptions::default())
        .expect("open")
        .score_batch(prompts, responses)
        .expect("scores")
}

#[test]
fn batch_scores_equal_single_scores_in_input_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bundle = common::reward_bundle(dir.path());
    let pairs = common::pairs();
    let (prompts, responses) = split(&pairs);
    for max_batch in [1, 2, 3, 32] {
        let scorer = Scorer::open(&bundle, ScorerOptions::default().with_max_batch(max_batch))
            .expect("open");
        let batch = scorer.score_batch(&prompts, &responses).expect("batch");
        assert_eq!(batch.len(), pairs.len());
        for (i, (p, r)) in pairs.iter().enumerate() {
            let single = scorer.score(p, r).expect("single");
            assert!(
                (single - batch[i]).abs() < 1e-5,
                "max_batch {max_batch}, pair {i}: {single} vs {}",
                batch[i]
            );
        }
    }
}

#[test]
fn different_inputs_get_different_scores() {
    let dir = tempfile::tempdir().expect("tempdir");
    let scorer =
        Scorer::open(common::reward_bundle(dir.path()), ScorerOptions::default()).expect("open");
    let pairs = common::pairs();
    let (prompts, responses) = split(&pairs);
    let scores = scorer.score_batch(&prompts, &responses).expect("batch");
    assert!(scores.iter().all(|s| s.is_finite()));
    let spread = scores.iter().cloned().fold(f32::MIN, f32::max)
        - scores.iter().cloned().fold(f32::MAX, f32::min);
    assert!(
        spread > 1e-3,
        "a random model should not give (nearly) equal scores: {scores:?}"
    );
}

#[test]
fn compare_is_the_sigmoid_of_the_margin() {
    let dir = tempfile::tempdir().expect("tempdir");
    let scorer =
        Scorer::open(common::reward_bundle(dir.path()), ScorerOptions::default()).expect("open");
    let (p, a, b) = (
        "what is the moon?",
        "the moon is a star.",
        "the moon is not a star, it is a moon.",
    );
    let (ra, rb) = (
        scorer.score(p, a).expect("a"),
        scorer.score(p, b).expect("b"),
    );
    let prob = scorer.compare(p, a, b).expect("compare");
    assert!((prob - 1.0 / (1.0 + (rb - ra).exp())).abs() < 1e-5);
    let back = scorer.compare(p, b, a).expect("compare");
    assert!((prob + back - 1.0).abs() < 1e-5);
}

#[test]
fn helpsteer_bundle_returns_five_outputs_and_helpfulness_as_reward() {
    let dir = tempfile::tempdir().expect("tempdir");
    let scorer = Scorer::open(
        common::helpsteer_bundle(dir.path()),
        ScorerOptions::default(),
    )
    .expect("open");
    assert_eq!(
        scorer.output_names(),
        [
            "helpfulness",
            "correctness",
            "coherence",
            "complexity",
            "verbosity"
        ]
    );
    assert_eq!(scorer.reward_index(), 0);
    let all = scorer
        .score_batch_outputs(&["say yes"], &["yes"])
        .expect("outputs");
    assert_eq!(all.shape(), &[1, 5]);
    assert_eq!(scorer.score("say yes", "yes").expect("score"), all[[0, 0]]);
}

#[test]
fn long_inputs_are_truncated_not_rejected() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bundle = common::reward_bundle(dir.path());
    let scorer = Scorer::open(&bundle, ScorerOptions::default().with_max_length(32)).expect("open");
    let long = "the cat and the dog and the bird ".repeat(500);
    let enc = scorer
        .tokenizer()
        .encode_pair(&long, &long)
        .expect("encode");
    assert_eq!(enc.len(), 32);
    let s = scorer.score(&long, &long).expect("score");
    assert!(s.is_finite());
    // Only the start of the response and the end of the prompt are kept,
    // so changing the far end of a long response does not change the score.
    let altered = format!("{long} water water water");
    assert_eq!(scorer.score(&long, &altered).expect("score"), s);
}

#[test]
fn options_are_validated() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bundle = common::reward_bundle(dir.path());
    let too_long =
        Scorer::open(&bundle, ScorerOptions::default().with_max_length(100_000)).unwrap_err();
    assert_eq!(too_long.code(), ErrorCode::InvalidArgument);
    assert!(too_long.to_string().contains("max_length"), "{too_long}");
    let zero = Scorer::open(&bundle, ScorerOptions::default().with_max_batch(0)).unwrap_err();
    assert_eq!(zero.code(), ErrorCode::InvalidArgument);
    let sessions =
        Scorer::open(&bundle, ScorerOptions::default().with_max_sessions(0)).unwrap_err();
    assert_eq!(sessions.code(), ErrorCode::InvalidArgument);
}

#[test]
fn cuda_without_a_gpu_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bundle = common::reward_bundle(dir.path());
    match Scorer::open(
        &bundle,
        ScorerOptions::default().with_device(Device::Cuda(0)),
    ) {
        // A machine with a GPU and the CUDA provider installed may succeed.
        Ok(s) => assert!(s.score("a", "b").expect("score").is_finite()),
        Err(e) => {
            assert!(
                matches!(
                    e.code(),
                    ErrorCode::ProviderUnavailable | ErrorCode::Runtime
                ),
                "{e}"
            );
            assert!(e.to_string().contains("CUDA"), "{e}");
        }
    }
}

#[test]
fn mismatched_lengths_and_empty_batches() {
    let dir = tempfile::tempdir().expect("tempdir");
    let scorer =
        Scorer::open(common::reward_bundle(dir.path()), ScorerOptions::default()).expect("open");
    let err = scorer.score_batch(&["a", "b"], &["c"]).unwrap_err();
    assert_eq!(err.code(), ErrorCode::LengthMismatch);
    let empty: [&str; 0] = [];
    assert!(scorer
        .score_batch(&empty, &empty)
        .expect("empty")
        .is_empty());
}

#[test]
fn many_threads_get_the_sequential_results() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bundle = common::reward_bundle(dir.path());
    for max_sessions in [1, 3] {
        let scorer = Arc::new(
            Scorer::open(
                &bundle,
                ScorerOptions::default()
                    .with_threads(1)
                    .with_max_sessions(max_sessions),
            )
            .expect("open"),
        );
        let pairs = common::pairs();
        let expected: Vec<f32> = pairs
            .iter()
            .map(|(p, r)| scorer.score(p, r).expect("score"))
            .collect();
        let handles: Vec<_> = (0..6)
            .map(|t| {
                let scorer = Arc::clone(&scorer);
                let pairs = pairs.clone();
                std::thread::spawn(move || {
                    let mut out = Vec::new();
                    for round in 0..5 {
                        // Vary batch composition between threads and rounds.
                        let k = (t + round) % pairs.len() + 1;
                        let (p, r): (Vec<&str>, Vec<&str>) = pairs[..k]
                            .iter()
                            .map(|(p, r)| (p.as_str(), r.as_str()))
                            .unzip();
                        out.push((k, scorer.score_batch(&p, &r).expect("score")));
                    }
                    out
                })
            })
            .collect();
        for h in handles {
            for (k, got) in h.join().expect("thread") {
                for (i, v) in got.iter().enumerate() {
                    assert!(
                        (v - expected[i]).abs() < 1e-5,
                        "sessions {max_sessions}, batch {k}, pair {i}"
                    );
                }
            }
        }
    }
}

#[test]
fn same_seed_same_model_other_seed_other_head() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = rewardkit::InitOptions::default().with_seed(11);
    let a = common::tiny_bundle(dir.path(), "a", &opts);
    let b = common::tiny_bundle(dir.path(), "b", &opts);
    let c = common::tiny_bundle(
        dir.path(),
        "c",
        &rewardkit::InitOptions::default().with_seed(12),
    );
    let bytes = |p: &std::path::Path| std::fs::read(p.join("model.onnx")).expect("read");
    assert_eq!(bytes(&a), bytes(&b));
    let sa = Scorer::open(&a, ScorerOptions::default())
        .expect("a")
        .score("x", "y")
        .expect("score");
    let sc = Scorer::open(&c, ScorerOptions::default())
        .expect("c")
        .score("x", "y")
        .expect("score");
    assert_ne!(sa, sc);
}

#[test]
fn fused_and_portable_bundles_score_alike() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = rewardkit::bundle::InitOptions::default().with_seed(5);
    let fused = common::tiny_bundle(dir.path(), "fused", &opts);
    let portable = common::tiny_bundle(dir.path(), "portable", &opts.clone().with_portable(true));
    assert_eq!(common::contrib_ops(&fused), ["Attention", "BiasGelu"]);
    assert!(common::contrib_ops(&portable).is_empty());
    let pairs = common::pairs();
    let (prompts, responses) = split(&pairs);
    let a = Scorer::open(&fused, ScorerOptions::default()).expect("open fused");
    let b = Scorer::open(&portable, ScorerOptions::default()).expect("open portable");
    // One padded batch, then each pair alone.
    let sa = a.score_batch(&prompts, &responses).expect("fused batch");
    let sb = b.score_batch(&prompts, &responses).expect("portable batch");
    for (i, (p, r)) in pairs.iter().enumerate() {
        let single = a.score(p, r).expect("fused single");
        for (what, x) in [("batched", sa[i]), ("alone", single)] {
            assert!(
                (x - sb[i]).abs() <= 1e-5,
                "pair {i} {what}: fused {x} vs portable {}",
                sb[i]
            );
        }
    }
}

/// The fused graph gives ONNX Runtime's `Attention` a `[batch, 1]` mask (the
/// kernel's form of "no mask", which skips the per-head mask copies) when no
/// position of the batch is padding, and the whole mask otherwise. The mask
/// each `Attention` node reads is exposed as an extra output to check which.
#[test]
fn fused_attention_skips_the_mask_only_for_unpadded_batches() {
    use ndarray::Array2;
    use rewardkit::onnx::{data_type::FLOAT, io, Attr, Dim, GraphBuilder};
    use rewardkit::runtime::{ModelRunner, RunnerOptions, TensorInput};

    let dir = tempfile::tempdir().expect("tempdir");
    let opts = rewardkit::bundle::InitOptions::default().with_seed(5);
    let bundle = common::tiny_bundle(dir.path(), "fused", &opts);
    let mut model = io::read_model(&bundle.join("model.onnx")).expect("read model");
    let graph = model.graph.take().expect("graph");
    let masks: Vec<String> = graph
        .node
        .iter()
        .filter(|n| n.op_type() == "Attention")
        .map(|n| n.input.get(3).cloned().expect("Attention has a mask input"))
        .collect();
    assert!(!masks.is_empty(), "the fused graph has Attention nodes");
    assert!(
        masks.iter().all(|m| m == &masks[0]),
        "every Attention node reads the same mask: {masks:?}"
    );
    let mut g = GraphBuilder::from_graph(graph);
    let probe = g.op("Cast", &[&masks[0]], vec![("to", Attr::Int(FLOAT as i64))]);
    g.output(
        &probe,
        "attention_mask_seen",
        FLOAT,
        &[Dim::Named("b".into()), Dim::Named("w".into())],
    );
    let probed = dir.path().join("probed.onnx");
    io::write_model(
        &probed,
        &rewardkit::onnx::builder::model(g.build("probed"), "probe"),
        usize::MAX,
    )
    .expect("write");
    let runner = ModelRunner::open(&probed, RunnerOptions::default()).expect("open");

    let run = |mask: Array2<i64>| {
        let (b, s) = mask.dim();
        let mut inputs = vec![
            TensorInput::new("input_ids", Array2::<i64>::from_elem((b, s), 5)),
            TensorInput::new("attention_mask", mask),
        ];
        if runner.input_names().iter().any(|n| n == "token_type_ids") {
            inputs.push(TensorInput::new(
                "token_type_ids",
                Array2::<i64>::zeros((b, s)),
            ));
        }
        runner
            .run(inputs, &["attention_mask_seen"])
            .expect("run")
            .remove(0)
    };
    let full = run(Array2::ones((3, 7)));
    assert_eq!(
        full.shape(),
        &[3, 1],
        "no padding: the [batch, 1] no-mask form"
    );
    assert!(full.iter().all(|&v| v == 1.0));
    let mut padded = Array2::<i64>::ones((3, 7));
    padded[[1, 5]] = 0;
    padded[[1, 6]] = 0;
    let seen = run(padded.clone());
    assert_eq!(seen.shape(), &[3, 7], "padding: the whole mask");
    assert_eq!(seen, padded.mapv(|v| v as f32).into_dyn());
}

#[test]
fn token_budget_splits_runs_without_changing_scores() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bundle = common::reward_bundle(dir.path());
    let pairs = common::pairs();
    let (prompts, responses) = split(&pairs);
    let unlimited = Scorer::open(&bundle, ScorerOptions::default().with_max_tokens(0))
        .expect("open")
        .score_batch(&prompts, &responses)
        .expect("score");
    // Budgets below, at and above the longest pair: long pairs run alone or
    // in small runs, and every score stays where it was.
    for budget in [1, 16, 64, 256, 100_000] {
        let scorer =
            Scorer::open(&bundle, ScorerOptions::default().with_max_tokens(budget)).expect("open");
        let scores = scorer.score_batch(&prompts, &responses).expect("score");
        for (i, (a, b)) in scores.iter().zip(&unlimited).enumerate() {
            assert!(
                (a - b).abs() < 1e-5,
                "budget {budget}, pair {i}: {a} vs {b}"
            );
        }
    }
}

#[test]
fn last_token_pooling_on_an_encoder_is_padding_invariant() {
    use rewardkit::model::Pooling;
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = rewardkit::bundle::InitOptions::default().with_seed(6);
    let last = common::tiny_bundle(
        dir.path(),
        "last",
        &opts.clone().with_pooling(Pooling::Last),
    );
    let mean = common::tiny_bundle(dir.path(), "mean", &opts.with_pooling(Pooling::Mean));
    let pairs = common::pairs();
    let (prompts, responses) = split(&pairs);
    let a = Scorer::open(&last, ScorerOptions::default()).expect("open last");
    let b = Scorer::open(&mean, ScorerOptions::default()).expect("open mean");
    let batched = a.score_batch(&prompts, &responses).expect("batch");
    let means = b.score_batch(&prompts, &responses).expect("mean batch");
    for (i, (p, r)) in pairs.iter().enumerate() {
        let alone = a.score(p, r).expect("alone");
        assert!(
            (alone - batched[i]).abs() <= 1e-5,
            "pair {i}: alone {alone} vs batched {}",
            batched[i]
        );
        // The pooled state is a different one from mean pooling's.
        assert!(
            (batched[i] - means[i]).abs() > 1e-6,
            "pair {i}: last equals mean"
        );
    }
}

/// A fused encoder bundle quantizes every backbone matmul (its packed
/// attention is quantized in standard-op form) and scores close to float.
#[test]
fn fused_encoder_bundles_quantize_every_matmul() {
    let dir = tempfile::tempdir().expect("tempdir");
    let float = common::reward_bundle(dir.path());
    assert!(!common::contrib_ops(&float).is_empty());
    let q = dir.path().join("int8");
    let (_, summary) = rewardkit::bundle::quantize_int8(&float, &q, false).expect("quantize");
    // Two layers of q, k, v, attention output, intermediate and output.
    assert_eq!(summary.matmuls, 12, "{summary:?}");
    assert!(
        common::contrib_ops(&q).is_empty(),
        "{:?}",
        common::contrib_ops(&q)
    );
    let pairs = common::pairs();
    let (prompts, responses) = split(&pairs);
    let a = scores_of(&float, &prompts, &responses);
    let b = scores_of(&q, &prompts, &responses);
    let spread = a.iter().fold(0f32, |m, v| m.max(v.abs()));
    for (x, y) in a.iter().zip(&b) {
        assert!(
            (x - y).abs() < 0.05 * spread.max(0.1),
            "float {x} vs int8 {y}"
        );
    }
}

/// `--dtype fp16` for BERT-family bundles: half-size weights, scores within
/// half precision of the fp32 bundle's (fused and portable forms), and the
/// fp32-only operations refuse the bundle clearly.
#[test]
fn fp16_bundles_score_like_fp32_within_half_precision() {
    use rewardkit::model::Precision;
    let dir = tempfile::tempdir().expect("tempdir");
    let pairs = common::pairs();
    let (prompts, responses) = split(&pairs);
    for portable in [false, true] {
        let opts = rewardkit::bundle::InitOptions::default()
            .with_seed(5)
            .with_portable(portable);
        let tag = if portable { "portable" } else { "fused" };
        let full = common::tiny_bundle(dir.path(), &format!("{tag}32"), &opts);
        let half = common::tiny_bundle(
            dir.path(),
            &format!("{tag}16"),
            &opts.clone().with_precision(Precision::F16),
        );
        let size = |b: &std::path::Path| {
            std::fs::metadata(b.join("model.onnx"))
                .expect("model")
                .len()
        };
        assert!(
            size(&half) * 10 < size(&full) * 6,
            "{tag}: fp16 model.onnx is {} bytes, fp32 {}",
            size(&half),
            size(&full)
        );
        let a = scores_of(&full, &prompts, &responses);
        let b = scores_of(&half, &prompts, &responses);
        let largest = a.iter().fold(1.0f32, |m, x| m.max(x.abs()));
        let worst = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0f32, f32::max);
        eprintln!("{tag}: max |fp16 - fp32| = {worst:.2e} (scores up to {largest:.2})");
        assert!(worst <= 1e-2 * largest, "{tag}: {a:?} vs {b:?}");
        assert!(worst > 0.0, "{tag}: fp16 scores equal fp32 bit for bit");
        // Training and int8 start from fp32 weights, and say so.
        let err =
            rewardkit::bundle::quantize_int8(&half, &dir.path().join(format!("{tag}q")), false)
                .unwrap_err()
                .to_string();
        assert!(err.contains("half precision"), "{err}");
    }
}
