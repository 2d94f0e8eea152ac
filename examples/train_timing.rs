//! Time rewardkit training steps on MiniLM with every sequence exactly
//! `max_length` tokens (long texts, truncated), BT loss, AdamW, 8 pairs per
//! step, dropout off. Prints one JSON line: per-step seconds and peak RSS.
//!
//! `cargo run --release --example train_timing -- MAX_LENGTH STEPS [THREADS [FLAG...]]`
//! (flags: `planned`, `low_memory = false`, ONNX Runtime's pre-planned
//! memory; `standard-ops`, `fused_kernels = false`)
//! (used by benches/compare/train_speed.py).
use std::time::Instant;

use rewardkit::testing::filler_text;
use rewardkit::train::{Control, Examples, Init, Pair, Recipe, Trainer};

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let max_len: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(128);
    let steps: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(10);
    let threads: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(2);
    let flags = args.get(4..).unwrap_or_default();
    if let Some(f) = flags
        .iter()
        .find(|f| !["planned", "standard-ops"].contains(&f.as_str()))
    {
        eprintln!("unknown flag {f:?} (expected planned or standard-ops)");
        std::process::exit(2);
    }
    let low_memory = !flags.iter().any(|f| f == "planned");
    let fused = !flags.iter().any(|f| f == "standard-ops");
    // Long enough that every sequence is truncated to exactly max_len tokens.
    let n_words = max_len * 2;
    let pairs: Vec<Pair> = (0..64)
        .map(|i| Pair {
            prompt: filler_text(i, n_words),
            chosen: filler_text(i + 100, n_words),
            rejected: filler_text(i + 200, n_words),
            strength: None,
            subset: None,
        })
        .collect();
    let recipe = Recipe::parse(
        &format!(
            "[model]\nmax_length = {max_len}\n[loss]\nkind = \"bt\"\n[optimizer]\nlr = 1e-5\nbeta2 = 0.98\nweight_decay = 0.1\nclip = 1.0\n[training]\nbatch_size = 8\nmax_steps = {steps}\nthreads = {threads}\nshuffle = false\nlow_memory = {low_memory}\nfused_kernels = {fused}\n"
        ),
        "timing",
        &[],
    )
    .expect("recipe");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().expect("tmp");
    let mut t = Trainer::new(
        recipe,
        &Init::Backbone(root.join(".rewardkit/models/all-MiniLM-L6-v2")),
        Examples::Pairs(pairs),
        None,
        None,
        dir.path(),
    )
    .expect("trainer");
    let mut times = Vec::new();
    let mut rss = 0;
    let mut last = Instant::now();
    // Peak RSS is read at the last step, before run() writes the checkpoint
    // and bundle (which are not part of a training step).
    t.run(&dir.path().join("out"), |r| {
        times.push(last.elapsed().as_secs_f64());
        if r.step >= steps {
            rss = peak_rss_kib();
        }
        last = Instant::now();
        Control::Continue
    })
    .expect("run");
    let mut impl_name = String::from("rewardkit");
    if !low_memory {
        impl_name.push_str("-planned");
    }
    if !fused {
        impl_name.push_str("-standard-ops");
    }
    println!(
        "{}",
        serde_json::json!({"impl": impl_name, "max_length": max_len, "step_seconds": times, "peak_rss_kib": rss})
    );
}
