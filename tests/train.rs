//! Training end to end on a tiny model: it learns, resumes exactly, writes a
//! bundle that scores like the training forward pass.

mod common;

use std::path::Path;

use rewardkit::train::{Control, Examples, Init, Pair, Recipe, Trainer};
use rewardkit::{Scorer, ScorerOptions};

/// A learnable toy preference: chosen answers are helpful, rejected are not.
pub fn toy_pairs(n: usize) -> Vec<Pair> {
    let topics = [
        "water", "fire", "the sun", "the moon", "a cat", "a dog", "a river", "a city", "a tree",
        "a bird",
    ];
    (0..n)
        .map(|i| {
            let t = topics[i % topics.len()];
            let k = i / topics.len();
            Pair {
                prompt: format!("explain {t} please, question {k}"),
                chosen: format!(
                    "sure, {t} is good. here is a helpful and correct answer about {t}."
                ),
                rejected: format!("no. {t} is bad and i will not help, wrong answer."),
                strength: Some(((i % 3) + 1) as f32),
                subset: Some(if i % 2 == 0 { "even" } else { "odd" }.into()),
            }
        })
        .collect()
}

fn recipe(loss: &str, extra: &str) -> Recipe {
    let text = format!(
        "name = \"test\"\n[model]\nmax_length = 48\nhead_seed = 3\n[loss]\nkind = \"{loss}\"\n[optimizer]\nlr = 3e-3\nweight_decay = 0.01\nclip = 1.0\n[training]\nbatch_size = 4\nthreads = 1\n{extra}"
    );
    Recipe::parse(&text, "test recipe", &[]).expect("recipe")
}

fn trainer(dir: &Path, recipe: Recipe, n: usize) -> Trainer {
    let backbone = common::tiny_backbone(dir);
    let data = Examples::Pairs(toy_pairs(n));
    let eval = Examples::Pairs(toy_pairs(21));
    Trainer::new(
        recipe,
        &Init::Backbone(backbone),
        data,
        Some(eval),
        None,
        &dir.join("work"),
    )
    .expect("trainer")
}

#[test]
fn bt_learns_the_toy_preference_and_writes_a_consistent_bundle() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut t = trainer(dir.path(), recipe("bt", "epochs = 3\n"), 42);
    let before = t.evaluate(None).expect("eval").expect("metrics");
    let mut losses = Vec::new();
    let out = dir.path().join("out");
    let outcome = t
        .run(&out, |r| {
            losses.push(r.loss);
            Control::Continue
        })
        .expect("run");
    assert_eq!(outcome.steps, 33);
    let after = outcome.eval.expect("eval metrics");
    assert!(
        after.loss < before.loss * 0.5,
        "eval loss {} -> {}",
        before.loss,
        after.loss
    );
    assert_eq!(after.accuracy, Some(1.0), "{after:?}");
    let first: f64 = losses[..5].iter().sum::<f64>() / 5.0;
    let last: f64 = losses[losses.len() - 5..].iter().sum::<f64>() / 5.0;
    assert!(
        last < first,
        "training loss did not fall: {first} -> {last}"
    );

    // The bundle scores pairs as the training graph did.
    let scorer =
        Scorer::open(&out, ScorerOptions::default().with_threads(1)).expect("open trained bundle");
    let pairs = toy_pairs(20);
    let mut right = 0;
    for p in &pairs {
        let (c, r) = (
            scorer.score(&p.prompt, &p.chosen).expect("c"),
            scorer.score(&p.prompt, &p.rejected).expect("r"),
        );
        right += usize::from(c > r);
    }
    assert_eq!(right, 20);
    let m = scorer.bundle().manifest();
    assert_eq!(m.provenance.recipe, "test");
    assert!(out.join("checkpoint/state.json").exists());
    assert!(out.join("metrics.jsonl").exists());
}

#[test]
fn every_pairwise_loss_and_regression_run() {
    for loss in ["bt", "margin_bt", "scaled_bt"] {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut t = trainer(dir.path(), recipe(loss, "max_steps = 3\n"), 12);
        let outcome = t
            .run(&dir.path().join("out"), |_| Control::Continue)
            .expect("run");
        assert_eq!(outcome.steps, 3, "{loss}");
        assert!(outcome.last_loss.is_finite(), "{loss}");
    }
}

#[test]
fn resume_continues_exactly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let extra = "max_steps = 8\nseed = 5\n";
    // Uninterrupted.
    let mut a = trainer(&dir.path().join("a"), recipe("bt", extra), 18);
    let mut losses_a = Vec::new();
    a.run(&dir.path().join("a/out"), |r| {
        losses_a.push(r.loss);
        Control::Continue
    })
    .expect("run a");
    // Interrupted after 3 steps, then resumed in a new trainer.
    let mut b = trainer(&dir.path().join("b"), recipe("bt", extra), 18);
    let out_b = dir.path().join("b/out");
    let mut losses_b = Vec::new();
    let first = b
        .run(&out_b, |r| {
            losses_b.push(r.loss);
            if r.step == 3 {
                Control::Stop
            } else {
                Control::Continue
            }
        })
        .expect("run b");
    assert!(first.stopped_early);
    drop(b);
    let mut c = trainer(&dir.path().join("c"), recipe("bt", extra), 18);
    c.resume(&out_b).expect("resume");
    assert_eq!(c.step(), 3);
    c.run(&out_b, |r| {
        losses_b.push(r.loss);
        Control::Continue
    })
    .expect("run c");
    assert_eq!(losses_a.len(), 8);
    assert_eq!(losses_b.len(), 8);
    for (i, (x, y)) in losses_a.iter().zip(&losses_b).enumerate() {
        assert!(
            (x - y).abs() <= 1e-6 * x.abs().max(1e-12),
            "step {}: {x} vs {y}",
            i + 1
        );
    }
}

#[test]
fn bundle_scores_match_the_training_forward() {
    check_bundle_matches_training(false);
}

#[test]
fn portable_bundle_scores_match_the_training_forward() {
    check_bundle_matches_training(true);
}

/// The written bundle (fused by default, standard ops with
/// `model.portable`) scores like the training forward within 1e-5.
fn check_bundle_matches_training(portable: bool) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut r = recipe("bt", "max_steps = 4\n");
    r.model.portable = portable;
    let mut t = trainer(dir.path(), r, 12);
    let out = dir.path().join("out");
    t.run(&out, |_| Control::Continue).expect("run");
    let ops = common::contrib_ops(&out);
    if portable {
        assert!(ops.is_empty(), "a portable bundle uses contrib ops {ops:?}");
    } else {
        assert_eq!(
            ops,
            ["Attention", "BiasGelu"],
            "the bundle's graph should use ONNX Runtime's fused ops"
        );
    }
    let pairs = toy_pairs(9);
    let (c, r) = t.pair_rewards(&pairs).expect("rewards");
    let scorer = Scorer::open(&out, ScorerOptions::default().with_threads(1)).expect("open");
    for (i, p) in pairs.iter().enumerate() {
        let sc = scorer.score(&p.prompt, &p.chosen).expect("c");
        let sr = scorer.score(&p.prompt, &p.rejected).expect("r");
        assert!(
            (sc - c[i]).abs() <= 1e-5,
            "pair {i} chosen: bundle {sc} vs training {}",
            c[i]
        );
        assert!(
            (sr - r[i]).abs() <= 1e-5,
            "pair {i} rejected: bundle {sr} vs training {}",
            r[i]
        );
    }
}

#[test]
fn non_finite_loss_stops_and_keeps_the_last_checkpoint() {
    let dir = tempfile::tempdir().expect("tempdir");
    // An absurd learning rate without clipping blows the weights up.
    let mut t = trainer(
        dir.path(),
        recipe("bt", "max_steps = 50\ncheckpoint_every = 1\n").clone_with_lr(1e12),
        12,
    );
    let out = dir.path().join("out");
    let err = t
        .run(&out, |_| Control::Continue)
        .expect_err("training must stop on a non-finite loss");
    assert!(err.to_string().contains("loss became"), "{err}");
    let ck = rewardkit::train::checkpoint::load(&out).expect("the last good checkpoint loads");
    assert!(
        ck.params
            .iter()
            .all(|(_, v)| v.iter().all(|x| x.is_finite())),
        "checkpoint holds non-finite parameters"
    );
}

trait WithLr {
    fn clone_with_lr(&self, lr: f64) -> Recipe;
}

impl WithLr for Recipe {
    fn clone_with_lr(&self, lr: f64) -> Recipe {
        let mut r = self.clone();
        r.optimizer.lr = lr;
        r.optimizer.clip = None;
        r
    }
}

#[test]
fn helpsteer2_regression_learns_ratings() {
    use rewardkit::train::Rating;
    let dir = tempfile::tempdir().expect("tempdir");
    let backbone = common::tiny_backbone(dir.path());
    let rows: Vec<Rating> = toy_pairs(24)
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
    let text = "[model]\noutputs = \"helpsteer2\"\nmax_length = 48\n[loss]\nkind = \"regression\"\n[optimizer]\nlr = 5e-2\n[training]\nbatch_size = 8\nepochs = 30\nthreads = 1\nhead_only = true\n";
    let recipe = Recipe::parse(text, "regression", &[]).expect("recipe");
    let data = Examples::Ratings(rows.clone());
    let mut t = Trainer::new(
        recipe,
        &Init::Backbone(backbone),
        data.clone(),
        Some(data),
        None,
        &dir.path().join("work"),
    )
    .expect("trainer");
    let before = t.evaluate(None).expect("eval").expect("metrics").loss;
    let out = dir.path().join("out");
    let outcome = t
        .run(&out, |r| {
            if r.step % 12 == 0 {
                eprintln!("step {} loss {:.3}", r.step, r.loss);
            }
            Control::Continue
        })
        .expect("run");
    let after = outcome.eval.expect("metrics").loss;
    assert!(after < before * 0.25, "masked MSE {before} -> {after}");
    let scorer = Scorer::open(&out, ScorerOptions::default()).expect("open");
    assert_eq!(scorer.output_names().len(), 5);
    let good = scorer
        .score(&rows[0].prompt, &rows[0].response)
        .expect("good");
    let bad = scorer
        .score(&rows[1].prompt, &rows[1].response)
        .expect("bad");
    assert!(good > bad + 2.0, "helpfulness good {good} vs bad {bad}");
}

/// (loss, gradient norm) of each of 5 BT steps on 20 pairs, in order, with
/// `extra` lines in the recipe's training section.
fn five_bt_steps(extra: &str) -> Vec<(f64, f64)> {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut t = trainer(
        dir.path(),
        recipe("bt", &format!("max_steps = 5\nshuffle = false\n{extra}")),
        20,
    );
    let mut out = Vec::new();
    t.run(&dir.path().join("out"), |r| {
        out.push((r.loss, r.grad_norm));
        Control::Continue
    })
    .expect("run");
    out
}

#[test]
fn optimizer_pieces_update_like_whole_tensors() {
    // Pieces of 50 elements cut every matrix of the tiny model; the trained
    // values must not depend on it (only the norm's summation order does).
    let run = five_bt_steps;
    for accum in ["", "grad_accum = 2\n"] {
        let whole = run(&format!("{accum}optimizer_piece = 0\n"));
        let cut = run(&format!("{accum}optimizer_piece = 50\n"));
        assert_eq!(whole.len(), 5);
        for (i, (w, c)) in whole.iter().zip(&cut).enumerate() {
            assert!(
                (w.0 - c.0).abs() <= 1e-5 * w.0.abs() && (w.1 - c.1).abs() <= 1e-5 * w.1.abs(),
                "{accum:?} step {}: (loss, norm) whole {w:?}, in pieces {c:?}",
                i + 1
            );
        }
        // Training moved: the comparison is not between two frozen runs.
        assert!((whole[0].0 - whole[4].0).abs() > 1e-4, "{whole:?}");
    }
}

/// rewardkit's CPU kernels (on by default) against the standard-op graphs
/// (`fused_kernels = false`): the same 5 steps give the same losses and
/// gradient norms, up to the GELU kernel's erf (within 1.5e-7) and the
/// order of the LayerNorm gradient's sums. The AdamW kernel alone is exact.
#[test]
fn cpu_kernels_train_like_the_standard_op_graphs() {
    use rewardkit::onnx::builder::RK_DOMAIN;
    let run = |extra: &str| -> (Vec<(f64, f64)>, usize) {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut t = trainer(
            dir.path(),
            recipe("bt", &format!("max_steps = 5\nshuffle = false\n{extra}")),
            20,
        );
        // The kernels' nodes in the graphs the trainer built.
        let mut kernels = 0;
        for g in ["train.onnx", "optimizer.onnx"] {
            let m = rewardkit::onnx::io::read_model(&dir.path().join("work/graphs").join(g))
                .expect("graph");
            let nodes = &m.graph.as_ref().expect("graph").node;
            kernels += nodes.iter().filter(|n| n.domain() == RK_DOMAIN).count();
        }
        let mut out = Vec::new();
        t.run(&dir.path().join("out"), |r| {
            out.push((r.loss, r.grad_norm));
            Control::Continue
        })
        .expect("run");
        (out, kernels)
    };
    let (fused, n_fused) = run("");
    let (standard, n_standard) = run("fused_kernels = false\n");
    assert_eq!(n_standard, 0);
    // The tiny model: 2 layers, so 2 GELU and 5 LayerNorm gradients, and an
    // AdamW node per parameter.
    assert!(n_fused > 2 + 5, "{n_fused} kernel nodes");
    assert_eq!(fused.len(), 5);
    for (i, (f, s)) in fused.iter().zip(&standard).enumerate() {
        assert!(
            (f.0 - s.0).abs() <= 1e-5 * s.0.abs() && (f.1 - s.1).abs() <= 1e-5 * s.1.abs(),
            "step {}: (loss, norm) with kernels {f:?}, standard ops {s:?}",
            i + 1
        );
    }
    assert!((fused[0].0 - fused[4].0).abs() > 1e-4, "{fused:?}");
}

#[test]
fn gradient_accumulation_equals_the_larger_batch() {
    let run = |extra: &str| -> (Vec<f64>, Vec<f64>) { five_bt_steps(extra).into_iter().unzip() };
    // recipe() uses batch_size = 4.
    let (big, big_norms) = run("");
    let (acc, acc_norms) = run("grad_accum = 2\n");
    let (acc4, _) = run("grad_accum = 4\n");
    assert_eq!(big.len(), 5);
    assert_eq!(acc.len(), 5);
    // Same 4 pairs per step either way when batch_size·grad_accum matches.
    let dir = tempfile::tempdir().expect("tempdir");
    let mut small = trainer(
        dir.path(),
        recipe("bt", "max_steps = 5\nshuffle = false\ngrad_accum = 2\n").with_batch(2),
        20,
    );
    let mut small_losses = Vec::new();
    let mut small_norms = Vec::new();
    small
        .run(&dir.path().join("out"), |r| {
            small_losses.push(r.loss);
            small_norms.push(r.grad_norm);
            Control::Continue
        })
        .expect("run");
    for i in 0..5 {
        assert!(
            (big[i] - small_losses[i]).abs() <= 1e-5 * big[i].abs(),
            "step {}: loss {} vs {}",
            i + 1,
            big[i],
            small_losses[i]
        );
        assert!(
            (big_norms[i] - small_norms[i]).abs() <= 1e-4 * big_norms[i].abs(),
            "step {}: grad norm {} vs {}",
            i + 1,
            big_norms[i],
            small_norms[i]
        );
    }
    // A larger effective batch is a different run, but a sane one.
    assert!(acc.iter().chain(&acc4).all(|l| l.is_finite()));
    assert!(acc_norms.iter().all(|n| n.is_finite() && *n > 0.0));
}

trait WithBatch {
    fn with_batch(&self, batch: usize) -> Recipe;
}

impl WithBatch for Recipe {
    fn with_batch(&self, batch: usize) -> Recipe {
        let mut r = self.clone();
        r.training.batch_size = batch;
        r
    }
}

/// Without a GPU (CI, and the CPU build of ONNX Runtime that `make setup`
/// installs) asking for CUDA is a clear error naming the provider. Where the
/// CUDA provider works, the same steps run there and match the CPU's losses.
#[test]
fn cuda_training_is_a_clear_error_without_a_gpu_or_matches_the_cpu() {
    let dir = tempfile::tempdir().expect("tempdir");
    let extra = "max_steps = 3\nshuffle = false\n";
    let backbone = common::tiny_backbone(dir.path());
    let make = |recipe: Recipe, sub: &str| {
        Trainer::new(
            recipe,
            &Init::Backbone(backbone.clone()),
            Examples::Pairs(toy_pairs(12)),
            None,
            None,
            &dir.path().join(sub),
        )
    };
    let mut on_gpu = recipe("bt", extra);
    on_gpu.training.device = rewardkit::Device::Cuda(0);
    match make(on_gpu, "gpu") {
        Err(e) => {
            assert_eq!(e.code(), rewardkit::ErrorCode::ProviderUnavailable, "{e}");
            assert!(e.to_string().contains("CUDA"), "{e}");
        }
        Ok(mut gpu) => {
            let mut cpu = make(recipe("bt", extra), "cpu").expect("cpu trainer");
            let losses = |t: &mut Trainer, out: &str| {
                let mut l = Vec::new();
                t.run(&dir.path().join(out), |r| {
                    l.push(r.loss);
                    Control::Continue
                })
                .expect("run");
                l
            };
            let (a, b) = (losses(&mut cpu, "cpu/out"), losses(&mut gpu, "gpu/out"));
            assert_eq!(a.len(), 3);
            for (x, y) in a.iter().zip(&b) {
                assert!((x - y).abs() <= 1e-4 * x.abs().max(1e-6), "{a:?} vs {b:?}");
            }
        }
    }
}
