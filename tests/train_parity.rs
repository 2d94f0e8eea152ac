//! Training parity with PyTorch on the real all-MiniLM-L6-v2 backbone, without
//! PyTorch: `tests/fixtures/train_parity.json` (made by
//! `tests/fixtures/make_train_parity.py`) records a 30-step AdamW run of the
//! same BT reward model in PyTorch (same data and order, same initial head,
//! no dropout) and the first step's gradients.
//!
//! What is checked:
//!
//! * tokenization: every fixture pair encodes to the ids transformers gave;
//! * step-1 gradients (`Trainer::gradients` on the first batch, before any
//!   update), per trained tensor:
//!   - tensors with at most 4096 elements (biases, LayerNorms, token-type
//!     embeddings, the head), stored in full: `‖g − g_ref‖ / ‖g_ref‖ ≤ 1e-4`;
//!   - larger tensors: `|‖g‖ − ‖g_ref‖| / ‖g_ref‖ ≤ 1e-4`, and the same
//!     relative bound on the 16 random ±1 projections taken as a vector,
//!     `‖P g − P g_ref‖ / ‖P g_ref‖ ≤ 1e-4` (a random sketch: it estimates
//!     `‖g − g_ref‖ / ‖g_ref‖`, so a difference in any direction shows);
//!   - tensors whose exact gradient is zero by symmetry (see [`exactly_zero`])
//!     hold only rounding noise on both sides; for them both gradients must
//!     be tiny next to the whole gradient instead;
//!   - and the global norm over all tensors within 1e-4 relative;
//! * determinism: a second `Trainer::gradients` on the same batch gives the
//!   same loss and gradients bit for bit (with 2 intra-op threads; ONNX
//!   Runtime's multi-threaded `ScatterND` add once made the embedding
//!   gradients vary from run to run);
//! * the loss trajectory: 30 steps of `Trainer::run`, each step's loss (of the
//!   forward pass before that step's update) within 1e-3 relative of PyTorch's,
//!   and each step's global gradient norm before clipping (`StepReport::grad_norm`)
//!   within the same 1e-3 relative of `clip_grad_norm_`'s.
//!
//! The backbone comes from `make setup`; without it the test fails (it never
//! passes silently).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rewardkit::bundle::{init_from_backbone, write_bundle, Bundle, InitOptions};
use rewardkit::model::bert::{build_reward_model, BuildOptions};
use rewardkit::model::{BertConfig, Pooling, RewardHead, Weights};
use rewardkit::text::PairTokenizer;
use rewardkit::train::{Control, Examples, Init, Pair, Recipe, Trainer};

/// Per-step relative tolerance of the loss.
const LOSS_TOLERANCE: f64 = 1e-3;
/// Relative tolerance of step-1 gradients (norms of differences, norms, projections).
const GRAD_TOLERANCE: f64 = 1e-4;
/// Bound on a gradient that is zero by symmetry (only rounding noise, about
/// 2e-7 of the global norm on either side), relative to the global norm.
const ZERO_GRAD_TOLERANCE: f64 = 1e-5;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The MiniLM backbone directory; fails the test when `make setup` has not run.
fn backbone() -> PathBuf {
    let dir = root().join(".rewardkit/models/all-MiniLM-L6-v2");
    for f in ["config.json", "model.safetensors", "tokenizer.json"] {
        assert!(
            dir.join(f).is_file(),
            "the training parity test needs the all-MiniLM-L6-v2 backbone, but {} is \
             missing: run `make setup` first",
            dir.join(f).display()
        );
    }
    dir
}

struct FixturePair {
    pair: Pair,
    chosen_ids: Vec<i64>,
    rejected_ids: Vec<i64>,
}

struct FixtureGrad {
    shape: Vec<usize>,
    norm: f64,
    projections: Vec<f64>,
    values: Option<Vec<f64>>,
}

struct Hyper {
    steps: u64,
    batch_pairs: usize,
    lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
    clip: f64,
}

struct Fixture {
    hyper: Hyper,
    head_weight: Vec<f32>,
    head_bias: Vec<f32>,
    pairs: Vec<FixturePair>,
    losses: Vec<f64>,
    grad_norms: Vec<f64>,
    step1_loss: f64,
    grads: Vec<(String, FixtureGrad)>,
}

fn floats(v: &serde_json::Value) -> Vec<f64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number"))
        .collect()
}

fn ints(v: &serde_json::Value) -> Vec<i64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_i64().expect("int"))
        .collect()
}

fn fixture() -> Fixture {
    let path = root().join("tests/fixtures/train_parity.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let doc: serde_json::Value = serde_json::from_str(&text).expect("fixture is JSON");
    assert_eq!(doc["projection_scheme"], "splitmix64-fnv1a-16");
    let h = &doc["hyperparameters"];
    let num = |k: &str| {
        h[k].as_f64()
            .unwrap_or_else(|| panic!("hyperparameter {k}"))
    };
    assert_eq!(h["schedule"], "constant");
    assert_eq!(h["warmup_steps"], 0);
    let hyper = Hyper {
        steps: h["steps"].as_u64().expect("steps"),
        batch_pairs: h["batch_pairs"].as_u64().expect("batch_pairs") as usize,
        lr: num("lr"),
        beta1: num("beta1"),
        beta2: num("beta2"),
        eps: num("eps"),
        weight_decay: num("weight_decay"),
        clip: num("clip"),
    };
    let pairs = doc["pairs"]
        .as_array()
        .expect("pairs")
        .iter()
        .map(|p| {
            let s = |k: &str| p[k].as_str().expect(k).to_string();
            FixturePair {
                pair: Pair {
                    prompt: s("prompt"),
                    chosen: s("chosen"),
                    rejected: s("rejected"),
                    strength: None,
                    subset: None,
                },
                chosen_ids: ints(&p["chosen_ids"]),
                rejected_ids: ints(&p["rejected_ids"]),
            }
        })
        .collect();
    let grads = doc["step1"]["params"]
        .as_array()
        .expect("step1.params")
        .iter()
        .map(|p| {
            let g = FixtureGrad {
                shape: ints(&p["shape"]).iter().map(|&d| d as usize).collect(),
                norm: p["norm"].as_f64().expect("norm"),
                projections: floats(&p["projections"]),
                values: p.get("values").map(floats),
            };
            assert_eq!(g.projections.len(), N_PROJECTIONS);
            (p["name"].as_str().expect("name").to_string(), g)
        })
        .collect();
    let to_f32 = |v: Vec<f64>| v.into_iter().map(|x| x as f32).collect::<Vec<f32>>();
    let fx = Fixture {
        hyper,
        head_weight: to_f32(floats(&doc["head"]["weight"])),
        head_bias: to_f32(floats(&doc["head"]["bias"])),
        pairs,
        losses: floats(&doc["losses"]),
        grad_norms: floats(&doc["grad_norms"]),
        step1_loss: doc["step1"]["loss"].as_f64().expect("step1.loss"),
        grads,
    };
    assert_eq!(fx.losses.len() as u64, fx.hyper.steps);
    assert_eq!(fx.grad_norms.len() as u64, fx.hyper.steps);
    fx
}

// ---- the fixed ±1 sign vectors (see make_train_parity.py) ----

const N_PROJECTIONS: usize = 16;

fn fnv1a64(s: &str) -> u64 {
    let mut h: u64 = 0xCBF2_9CE4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01B3);
    }
    h
}

/// Output number `e` (0-based) of SplitMix64 seeded with `seed`.
fn splitmix_output(seed: u64, e: u64) -> u64 {
    let mut z = seed.wrapping_add((e + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The 16 signed sums of `grad` (element `e` has sign −1 in projection `k`
/// when bit 63 − k of its draw is set), in f64.
fn projections(name: &str, grad: &[f32]) -> [f64; N_PROJECTIONS] {
    let seed = fnv1a64(name);
    let mut acc = [0.0f64; N_PROJECTIONS];
    for (e, &g) in grad.iter().enumerate() {
        if g == 0.0 {
            continue; // most word-embedding rows: nothing to add, skip the draw
        }
        let x = splitmix_output(seed, e as u64);
        let g = f64::from(g);
        for (k, a) in acc.iter_mut().enumerate() {
            if (x >> (63 - k)) & 1 == 1 {
                *a -= g;
            } else {
                *a += g;
            }
        }
    }
    acc
}

/// `x ≤ tol`, false for NaN.
fn within(x: f64, tol: f64) -> bool {
    x <= tol
}

fn norm(v: impl IntoIterator<Item = f64>) -> f64 {
    v.into_iter().map(|x| x * x).sum::<f64>().sqrt()
}

/// Tensors whose gradient is exactly zero in exact arithmetic, so both sides
/// hold only rounding noise (a relative comparison of them would compare
/// noise with noise):
///
/// * the head bias: it shifts r_c and r_r alike, and the BT loss sees only
///   r_c − r_r;
/// * the last LayerNorm's bias: it adds the same vector to every token, so
///   (through mean pooling and the linear head) the same amount to every
///   reward, which again cancels in r_c − r_r;
/// * the attention key biases: q·b_k is the same for every key of a query,
///   and softmax ignores a constant shift.
fn exactly_zero(name: &str, last_layer: usize) -> bool {
    name == "reward_head.bias"
        || name == format!("encoder.layer.{last_layer}.output.LayerNorm.bias")
        || name.ends_with(".attention.self.key.bias")
}

// ---- the model ----

/// An untrained bundle of the backbone whose head is the fixture's.
fn bundle_with_head(dir: &Path, backbone: &Path, fx: &Fixture) -> PathBuf {
    let out = dir.join("init");
    let init = init_from_backbone(backbone, &out, &InitOptions::default()).expect("init bundle");
    let manifest = init.manifest().clone();
    assert_eq!(manifest.pooling, Pooling::Mean);
    let cfg = BertConfig::from_file(&backbone.join("config.json")).expect("config");
    let mut weights =
        Weights::from_safetensors(&backbone.join("model.safetensors")).expect("weights");
    let head = RewardHead::from_parts(
        fx.head_weight.clone(),
        fx.head_bias.clone(),
        cfg.hidden_size,
    )
    .expect("head");
    let model = build_reward_model(
        &cfg,
        &mut weights,
        &head,
        BuildOptions {
            pooling: Pooling::Mean,
            expose_pooled: false,
            // Training starts from a fused bundle: the trainer takes the
            // weights by name, whatever ops sit between them.
            fused: true,
            ..Default::default()
        },
    )
    .expect("build");
    let tokenizer = std::fs::read(backbone.join("tokenizer.json")).expect("tokenizer");
    let bundle: Bundle = write_bundle(&out, &manifest, &model, &tokenizer, true).expect("write");
    bundle.dir().to_path_buf()
}

fn recipe(h: &Hyper) -> Recipe {
    let text = format!(
        "name = \"train-parity\"\n\
         [model]\nmax_length = 128\npooling = \"mean\"\n\
         [loss]\nkind = \"bt\"\n\
         [optimizer]\nname = \"adamw\"\nlr = {:e}\nbeta1 = {}\nbeta2 = {}\neps = {:e}\n\
         weight_decay = {}\nclip = {}\n\
         [schedule]\nkind = \"constant\"\nwarmup_steps = 0\n\
         [training]\nbatch_size = {}\nmax_steps = {}\nshuffle = false\nthreads = 2\n",
        h.lr, h.beta1, h.beta2, h.eps, h.weight_decay, h.clip, h.batch_pairs, h.steps
    );
    Recipe::parse(&text, "train parity recipe", &[]).expect("recipe")
}

fn check_tokenization(backbone: &Path, fx: &Fixture) {
    let tok = PairTokenizer::from_file(&backbone.join("tokenizer.json"), 128).expect("tokenizer");
    let mut bad = Vec::new();
    for (i, p) in fx.pairs.iter().enumerate() {
        let c = tok.encode_pair(&p.pair.prompt, &p.pair.chosen).expect("c");
        let r = tok
            .encode_pair(&p.pair.prompt, &p.pair.rejected)
            .expect("r");
        if c.ids != p.chosen_ids {
            bad.push(format!(
                "pair {i} chosen: {:?} vs {:?}",
                c.ids, p.chosen_ids
            ));
        }
        if r.ids != p.rejected_ids {
            bad.push(format!(
                "pair {i} rejected: {:?} vs {:?}",
                r.ids, p.rejected_ids
            ));
        }
    }
    assert!(
        bad.is_empty(),
        "rewardkit encodes the fixture's pairs differently from transformers:\n{}",
        bad.join("\n")
    );
}

fn check_gradients(fx: &Fixture, loss: f64, grads: &[(String, Vec<f32>)]) {
    let mine: HashMap<&str, &[f32]> = grads
        .iter()
        .map(|(n, g)| (n.as_str(), g.as_slice()))
        .collect();
    let mut names: Vec<&str> = mine.keys().copied().collect();
    names.sort_unstable();
    let mut theirs: Vec<&str> = fx.grads.iter().map(|(n, _)| n.as_str()).collect();
    theirs.sort_unstable();
    assert_eq!(names, theirs, "trained parameters differ from PyTorch's");

    let loss_rel = (loss - fx.step1_loss).abs() / fx.step1_loss.abs();
    println!(
        "step-1 loss: rewardkit {loss:.8}, PyTorch {:.8} (rel {loss_rel:.2e})",
        fx.step1_loss
    );
    assert!(
        loss_rel <= LOSS_TOLERANCE,
        "step-1 loss {loss} vs PyTorch {} (rel {loss_rel:.2e})",
        fx.step1_loss
    );

    let global_ref = norm(fx.grads.iter().map(|(_, g)| g.norm));
    let global = norm(
        grads
            .iter()
            .flat_map(|(_, g)| g.iter().map(|&x| f64::from(x))),
    );
    let global_rel = (global - global_ref).abs() / global_ref;
    println!(
        "global gradient norm: rewardkit {global:.8}, PyTorch {global_ref:.8} (rel {global_rel:.2e}); \
         PyTorch's clip_grad_norm_ said {:.8}",
        fx.grad_norms[0]
    );

    let last_layer = fx
        .grads
        .iter()
        .filter_map(|(n, _)| {
            n.strip_prefix("encoder.layer.")?
                .split('.')
                .next()?
                .parse()
                .ok()
        })
        .max()
        .expect("encoder layers");
    let mut failures = Vec::new();
    // (relative figure, name, what)
    let mut worst: Vec<(f64, String, &str)> = Vec::new();
    for (name, want) in &fx.grads {
        let got = mine[name.as_str()];
        let n: usize = want.shape.iter().product();
        assert_eq!(got.len(), n, "{name}: size");
        let got_norm = norm(got.iter().map(|&x| f64::from(x)));
        if exactly_zero(name, last_layer) {
            let (a, b) = (got_norm / global_ref, want.norm / global_ref);
            println!("{name}: exact gradient 0; |g|/|G| rewardkit {a:.2e}, PyTorch {b:.2e}");
            if !(within(a, ZERO_GRAD_TOLERANCE) && within(b, ZERO_GRAD_TOLERANCE)) {
                failures.push(format!(
                    "{name}: should be ~0, |g|/|G| rewardkit {a:.2e}, PyTorch {b:.2e}"
                ));
            }
            continue;
        }
        let norm_rel = (got_norm - want.norm).abs() / want.norm;
        let p = projections(name, got);
        let proj_rel = norm(p.iter().zip(&want.projections).map(|(a, b)| a - b))
            / norm(want.projections.iter().copied());
        let mut figures = vec![(norm_rel, "norm"), (proj_rel, "projections")];
        if let Some(values) = &want.values {
            let diff_rel = norm(got.iter().zip(values).map(|(&a, &b)| f64::from(a) - b))
                / norm(values.iter().copied());
            figures.push((diff_rel, "values"));
        }
        for (rel, what) in figures {
            if !within(rel, GRAD_TOLERANCE) {
                failures.push(format!(
                    "{name} {:?}: {what} rel {rel:.3e} (norm rewardkit {got_norm:.6e}, PyTorch {:.6e})",
                    want.shape, want.norm
                ));
            }
            worst.push((rel, name.clone(), what));
        }
    }
    worst.sort_by(|a, b| b.0.total_cmp(&a.0));
    println!("step-1 gradients, worst relative figures:");
    for (rel, name, what) in worst.iter().take(8) {
        println!("  {rel:.3e}  {name} ({what})");
    }
    if !within(global_rel, GRAD_TOLERANCE) {
        failures.push(format!(
            "global gradient norm {global} vs {global_ref} (rel {global_rel:.2e})"
        ));
    }
    assert!(
        failures.is_empty(),
        "step-1 gradients differ from PyTorch by more than {GRAD_TOLERANCE:e} relative:\n{}",
        failures.join("\n")
    );
}

#[test]
fn training_matches_pytorch() {
    let backbone = backbone();
    let fx = fixture();
    let started = Instant::now();
    check_tokenization(&backbone, &fx);

    let tmp = tempfile::tempdir().expect("tempdir");
    let bundle = bundle_with_head(tmp.path(), &backbone, &fx);
    let pairs: Vec<Pair> = fx.pairs.iter().map(|p| p.pair.clone()).collect();
    let mut trainer = Trainer::new(
        recipe(&fx.hyper),
        &Init::Bundle(bundle),
        Examples::Pairs(pairs.clone()),
        None,
        None,
        &tmp.path().join("work"),
    )
    .expect("trainer");
    assert_eq!(trainer.total_steps(), fx.hyper.steps);
    let ready = started.elapsed().as_secs_f64();

    // Step-1 gradients (no update).
    let t0 = Instant::now();
    let (loss, grads) = trainer
        .gradients(&pairs[..fx.hyper.batch_pairs])
        .expect("gradients");
    check_gradients(&fx, loss, &grads);
    let grads_secs = t0.elapsed().as_secs_f64();

    // The same batch again: the very same numbers.
    let (loss2, grads2) = trainer
        .gradients(&pairs[..fx.hyper.batch_pairs])
        .expect("gradients");
    assert_eq!(
        loss.to_bits(),
        loss2.to_bits(),
        "the loss changed on a rerun"
    );
    for ((name, a), (_, b)) in grads.iter().zip(&grads2) {
        let diff = a
            .iter()
            .zip(b)
            .map(|(x, y)| f64::from((x - y).abs()))
            .fold(0.0, f64::max);
        let same = a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits());
        assert!(
            same,
            "{name}: a second run on the same batch gives other gradients (max |diff| {diff:.3e})"
        );
    }

    // The 30-step loss trajectory.
    let t0 = Instant::now();
    let mut losses = Vec::new();
    let mut norms = Vec::new();
    let outcome = trainer
        .run(&tmp.path().join("out"), |r| {
            losses.push(r.loss);
            norms.push(r.grad_norm);
            Control::Continue
        })
        .expect("run");
    let run_secs = t0.elapsed().as_secs_f64();
    assert_eq!(outcome.steps, fx.hyper.steps);
    assert_eq!(losses.len(), fx.losses.len());
    let mut worst = 0.0f64;
    let mut worst_norm = 0.0f64;
    let mut failures = Vec::new();
    for (i, ((&got, &want), (&gn, &gn_ref))) in losses
        .iter()
        .zip(&fx.losses)
        .zip(norms.iter().zip(&fx.grad_norms))
        .enumerate()
    {
        let rel = (got - want).abs() / want.abs();
        worst = worst.max(rel);
        println!(
            "step {:2}: loss rewardkit {got:.7}, PyTorch {want:.7} (rel {rel:.2e}); \
             grad norm {gn:.5} vs {gn_ref:.5}",
            i + 1
        );
        if !within(rel, LOSS_TOLERANCE) {
            failures.push(format!(
                "step {}: loss {got} vs {want} (rel {rel:.2e})",
                i + 1
            ));
        }
        let gn_rel = (gn - gn_ref).abs() / gn_ref;
        worst_norm = worst_norm.max(gn_rel);
        if !within(gn_rel, LOSS_TOLERANCE) {
            failures.push(format!(
                "step {}: gradient norm {gn} vs {gn_ref} (rel {gn_rel:.2e})",
                i + 1
            ));
        }
    }
    println!(
        "max relative difference over {} steps: loss {worst:.3e}, gradient norm \
         {worst_norm:.3e} (tolerance {LOSS_TOLERANCE:e})",
        losses.len()
    );
    println!(
        "timing: setup {ready:.1}s, gradients + check {grads_secs:.1}s, {} steps {run_secs:.1}s",
        losses.len()
    );
    assert!(
        failures.is_empty(),
        "the training trajectory differs from PyTorch's by more than {LOSS_TOLERANCE:e} relative:\n{}",
        failures.join("\n")
    );
}
