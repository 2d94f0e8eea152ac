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
    let eval = Examples::Pairs(toy_pairs(20));
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
    let mut t = trainer(dir.path(), recipe("bt", "epochs = 3\n"), 40);
    let before = t.evaluate(None).expect("eval").expect("metrics");
    let mut losses = Vec::new();
    let out = dir.path().join("out");
    let outcome = t
        .run(&out, |r| {
            losses.push(r.loss);
            Control::Continue
        })
        .expect("run");
    assert_eq!(outcome.steps, 30);
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
