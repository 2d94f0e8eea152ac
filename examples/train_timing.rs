//! Time training steps on MiniLM: `cargo run --release --example train_timing -- [max_length] [steps]`.
use std::time::Instant;

use rewardkit::train::{Control, Examples, Init, Pair, Recipe, Trainer};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let max_len: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(128);
    let steps: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(6);
    let freeze = args.get(3).map(|s| s == "freeze").unwrap_or(false);
    let words = "the of and to in is that for it as was with be by on not he this are or his from at which but have an they you were her she there been one all we their";
    let w: Vec<&str> = words.split(' ').collect();
    let text = |seed: usize, n: usize| {
        (0..n)
            .map(|i| w[(seed * 7 + i * 13) % w.len()])
            .collect::<Vec<_>>()
            .join(" ")
    };
    let pairs: Vec<Pair> = (0..64)
        .map(|i| Pair {
            prompt: text(i, 200),
            chosen: text(i + 1, 300),
            rejected: text(i + 2, 300),
            strength: None,
            subset: None,
        })
        .collect();
    let recipe = Recipe::parse(
        &format!("[model]\nmax_length = {max_len}\n[loss]\nkind = \"bt\"\n[optimizer]\nlr = 1e-5\nweight_decay = 0.1\nclip = 1.0\n[training]\nbatch_size = 8\nmax_steps = {steps}\nthreads = 2\nshuffle = false\nfreeze_embeddings = {freeze}\n"),
        "timing",
        &[],
    )
    .expect("recipe");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().expect("tmp");
    let t0 = Instant::now();
    let mut t = Trainer::new(
        recipe,
        &Init::Backbone(root.join(".rewardkit/models/all-MiniLM-L6-v2")),
        Examples::Pairs(pairs),
        None,
        None,
        dir.path(),
    )
    .expect("trainer");
    eprintln!("setup {:.2}s", t0.elapsed().as_secs_f64());
    let mut last = Instant::now();
    t.run(&dir.path().join("out"), |r| {
        eprintln!(
            "step {} loss {:.4} {:.3}s",
            r.step,
            r.loss,
            last.elapsed().as_secs_f64()
        );
        last = Instant::now();
        Control::Continue
    })
    .expect("run");
}
