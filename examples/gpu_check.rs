//! rewardkit's side of the GPU check (benches/gpu/run.sh): on a machine with
//! an NVIDIA GPU and ONNX Runtime's CUDA provider,
//!
//! 1. trains the same steps on the CPU and on CUDA from the same start and
//!    compares the losses, then scores the CUDA-trained bundle on both;
//! 2. times training steps on CUDA (BT, AdamW, 8 pairs per step, every
//!    sequence exactly L tokens, as benches/compare/train_speed.py);
//! 3. times scoring on CUDA at fixed shapes (B pairs of exactly L tokens per
//!    call), for each bundle precision asked for.
//!
//! Prints one JSON line per measurement, in the schema benches/gpu/report.py
//! reads (`impl`, `case`, `precision`, `device`, `seconds`, `pairs_per_iter`).
//!
//! `gpu_check BACKBONE_DIR [--device cuda:0] [--loss-steps 10] [--iters 20]
//!  [--warmup 3] [--train-lengths 128,256] [--score-cases 32x256,1x128]
//!  [--precisions fp32,fp32-portable,fp16]`
use std::path::{Path, PathBuf};
use std::time::Instant;

use rewardkit::bundle::{init_from_backbone, InitOptions};
use rewardkit::testing::filler_text;
use rewardkit::train::{Control, Examples, Init, Pair, Recipe, Trainer};
use rewardkit::{Device, Scorer, ScorerOptions};
use serde_json::json;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

struct Args {
    backbone: PathBuf,
    device: Device,
    loss_steps: u64,
    iters: usize,
    warmup: usize,
    train_lengths: Vec<usize>,
    score_cases: Vec<(usize, usize)>,
    precisions: Vec<String>,
}

fn parse_args() -> Res<Args> {
    let mut it = std::env::args().skip(1);
    let mut a = Args {
        backbone: PathBuf::new(),
        device: Device::Cuda(0),
        loss_steps: 10,
        iters: 20,
        warmup: 3,
        train_lengths: vec![128, 256],
        score_cases: vec![(32, 256), (1, 128)],
        precisions: vec!["fp32".into(), "fp32-portable".into(), "fp16".into()],
    };
    let list = |v: String| -> Vec<String> { v.split(',').map(str::to_string).collect() };
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--device" => a.device = value()?.parse()?,
            "--loss-steps" => a.loss_steps = value()?.parse()?,
            "--iters" => a.iters = value()?.parse()?,
            "--warmup" => a.warmup = value()?.parse()?,
            "--train-lengths" => {
                a.train_lengths = list(value()?)
                    .iter()
                    .map(|s| s.parse())
                    .collect::<Result<_, _>>()?
            }
            "--score-cases" => {
                a.score_cases = list(value()?)
                    .iter()
                    .map(|s| {
                        let (b, l) = s.split_once('x').ok_or(format!("case {s}: expected BxL"))?;
                        Ok::<_, Box<dyn std::error::Error>>((b.parse()?, l.parse()?))
                    })
                    .collect::<Result<_, _>>()?
            }
            "--precisions" => a.precisions = list(value()?),
            other if other.starts_with("--") => {
                return Err(format!("unknown option {other}").into())
            }
            other => a.backbone = PathBuf::from(other),
        }
    }
    if a.backbone.as_os_str().is_empty() {
        return Err("usage: gpu_check BACKBONE_DIR [options]".into());
    }
    Ok(a)
}

/// 64 pairs whose every sequence is truncated to exactly `max_len` tokens.
fn long_pairs(max_len: usize) -> Vec<Pair> {
    (0..64)
        .map(|i| Pair {
            prompt: filler_text(i, max_len * 2),
            chosen: filler_text(i + 100, max_len * 2),
            rejected: filler_text(i + 200, max_len * 2),
            strength: None,
            subset: None,
        })
        .collect()
}

/// The benches' training recipe: BT, AdamW (betas 0.9/0.98, weight decay
/// 0.1, clip 1.0), 8 pairs per step in file order.
fn recipe(max_len: usize, steps: u64, device: Device) -> Res<Recipe> {
    Ok(Recipe::parse(
        &format!(
            "[model]\nmax_length = {max_len}\n[loss]\nkind = \"bt\"\n[optimizer]\nlr = 1e-5\nbeta2 = 0.98\nweight_decay = 0.1\nclip = 1.0\n[training]\nbatch_size = 8\nmax_steps = {steps}\nshuffle = false\n"
        ),
        "gpu check",
        &[format!("training.device={device}")],
    )?)
}

/// Train `steps` steps; returns each step's loss and seconds, and the bundle.
fn train(
    backbone: &Path,
    work: &Path,
    max_len: usize,
    steps: u64,
    device: Device,
) -> Res<(Vec<f64>, Vec<f64>, PathBuf)> {
    let mut t = Trainer::new(
        recipe(max_len, steps, device)?,
        &Init::Backbone(backbone.to_path_buf()),
        Examples::Pairs(long_pairs(max_len)),
        None,
        None,
        &work.join("work"),
    )?;
    let out = work.join("out");
    let (mut losses, mut seconds) = (Vec::new(), Vec::new());
    let mut last = Instant::now();
    t.run(&out, |r| {
        losses.push(r.loss);
        seconds.push(last.elapsed().as_secs_f64());
        last = Instant::now();
        Control::Continue
    })?;
    Ok((losses, seconds, out))
}

fn score_pairs(n: usize, len: usize) -> (Vec<String>, Vec<String>) {
    (0..n)
        .map(|i| (filler_text(i, len * 2), filler_text(i + 100, len * 2)))
        .unzip()
}

fn main() -> Res<()> {
    let a = parse_args()?;
    let tmp = tempfile::tempdir()?;
    let dev = a.device.to_string();

    // 1. The same steps on the CPU and on the GPU.
    let (cpu, _, _) = train(
        &a.backbone,
        &tmp.path().join("cpu"),
        128,
        a.loss_steps,
        Device::Cpu,
    )?;
    let (gpu, _, gpu_bundle) = train(
        &a.backbone,
        &tmp.path().join("gpu"),
        128,
        a.loss_steps,
        a.device,
    )?;
    let rel = cpu
        .iter()
        .zip(&gpu)
        .map(|(c, g)| (c - g).abs() / c.abs().max(1e-12))
        .fold(0.0, f64::max);
    println!(
        "{}",
        json!({"impl": "rewardkit", "case": "losses-cpu-vs-cuda", "device": dev, "cpu": cpu, "cuda": gpu, "max_rel_diff": rel})
    );
    let (p, r) = score_pairs(64, 128);
    let on_cpu = Scorer::open(&gpu_bundle, ScorerOptions::default())?.score_batch(&p, &r)?;
    let on_gpu = Scorer::open(&gpu_bundle, ScorerOptions::default().with_device(a.device))?
        .score_batch(&p, &r)?;
    let diff = on_cpu
        .iter()
        .zip(&on_gpu)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max);
    println!(
        "{}",
        json!({"impl": "rewardkit", "case": "bundle-scores-cpu-vs-cuda", "device": dev, "pairs": p.len(), "max_abs_diff": diff})
    );

    // 2. Training steps on the GPU.
    for &len in &a.train_lengths {
        let steps = (a.warmup + a.iters) as u64;
        let (_, seconds, _) = train(
            &a.backbone,
            &tmp.path().join(format!("t{len}")),
            len,
            steps,
            a.device,
        )?;
        println!(
            "{}",
            json!({"impl": "rewardkit", "case": format!("train-{len}"), "precision": "fp32", "device": dev,
                   "seconds": seconds[a.warmup.min(seconds.len())..], "pairs_per_iter": 8, "peak_mem_mib": null})
        );
    }

    // 3. Scoring on the GPU, one bundle per precision and length; each
    // precision's scores are compared with fp32's on the same pairs.
    let mut reference: std::collections::HashMap<(usize, usize), Vec<f32>> = Default::default();
    for precision in &a.precisions {
        for &(batch, len) in &a.score_cases {
            let bundle = tmp.path().join(format!("b-{precision}-{len}"));
            let mut opts = InitOptions::default().with_max_length(len);
            match precision.as_str() {
                "fp32" => {}
                "fp32-portable" => opts = opts.with_portable(true),
                other => opts = opts.with_precision(other.parse()?),
            }
            if !bundle.exists() {
                init_from_backbone(&a.backbone, &bundle, &opts)?;
            }
            let scorer = Scorer::open(
                &bundle,
                ScorerOptions::default()
                    .with_device(a.device)
                    .with_max_batch(batch),
            )?;
            let (p, r) = score_pairs(batch, len);
            let mut seconds = Vec::new();
            let mut scores = Vec::new();
            for i in 0..a.warmup + a.iters {
                let start = Instant::now();
                scores = scorer.score_batch(&p, &r)?;
                if i >= a.warmup {
                    seconds.push(start.elapsed().as_secs_f64());
                }
                if scores.iter().any(|x| !x.is_finite()) {
                    return Err(format!("{precision} {batch}x{len}: a score is not finite").into());
                }
            }
            let vs_fp32 = reference.get(&(batch, len)).map(|f| {
                f.iter()
                    .zip(&scores)
                    .map(|(x, y)| (x - y).abs())
                    .fold(0.0f32, f32::max)
            });
            if precision == "fp32" {
                reference.insert((batch, len), scores);
            }
            println!(
                "{}",
                json!({"impl": "rewardkit", "case": format!("score-{batch}x{len}"), "precision": precision,
                       "device": dev, "seconds": seconds, "pairs_per_iter": batch, "peak_mem_mib": null,
                       "max_abs_diff_vs_fp32": vs_fp32})
            );
        }
    }
    Ok(())
}
