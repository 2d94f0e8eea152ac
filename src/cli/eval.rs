use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Args;

use crate::engine::{Scorer, ScorerOptions};
use crate::error::{Error, Result};
use crate::train::{read_pairs, BadLines};

#[derive(Args)]
pub(super) struct EvalArgs {
    /// The bundle to evaluate.
    #[arg(long)]
    model: PathBuf,
    /// Pairs (JSONL) with optional "subset" fields.
    #[arg(long)]
    data: PathBuf,
    /// Write a JSON report here.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Pairs per model run.
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// Intra-op threads (0 = one per core).
    #[arg(long, default_value_t = 0)]
    threads: usize,
}

#[derive(Default)]
struct Tally {
    pairs: usize,
    right: usize,
    margin: f64,
}

pub(super) fn run(args: EvalArgs) -> Result<()> {
    let scorer = Scorer::open(
        &args.model,
        ScorerOptions::default()
            .with_threads(args.threads)
            .with_max_batch(args.batch_size),
    )?;
    let (pairs, _) = read_pairs(&args.data, BadLines::Error)?;
    if pairs
        .iter()
        .all(|p| p.chosen.trim().is_empty() && p.rejected.trim().is_empty())
    {
        return Err(Error::InvalidArgument(format!(
            "{}: the pairs have no response text",
            args.data.display()
        )));
    }
    let mut prompts = Vec::with_capacity(pairs.len() * 2);
    let mut responses = Vec::with_capacity(pairs.len() * 2);
    for p in &pairs {
        prompts.extend([p.prompt.as_str(), p.prompt.as_str()]);
        responses.extend([p.chosen.as_str(), p.rejected.as_str()]);
    }
    let rewards = scorer.score_batch(&prompts, &responses)?;
    let mut subsets: BTreeMap<String, Tally> = BTreeMap::new();
    let mut all = Tally::default();
    for (i, p) in pairs.iter().enumerate() {
        let (c, r) = (rewards[2 * i], rewards[2 * i + 1]);
        let right = usize::from(c > r);
        let name = p.subset.clone().unwrap_or_else(|| "(none)".into());
        for t in [subsets.entry(name).or_default(), &mut all] {
            t.pairs += 1;
            t.right += right;
            t.margin += (c - r) as f64;
        }
    }
    let acc = |t: &Tally| t.right as f64 / t.pairs.max(1) as f64;
    println!(
        "{:<32} {:>7} {:>9} {:>12}",
        "subset", "pairs", "accuracy", "mean margin"
    );
    for (name, t) in &subsets {
        println!(
            "{:<32} {:>7} {:>8.1}% {:>12.4}",
            name,
            t.pairs,
            acc(t) * 100.0,
            t.margin / t.pairs as f64
        );
    }
    println!(
        "{:<32} {:>7} {:>8.1}% {:>12.4}",
        "overall",
        all.pairs,
        acc(&all) * 100.0,
        all.margin / all.pairs.max(1) as f64
    );
    if let Some(path) = &args.report {
        let subsets_json: serde_json::Map<String, serde_json::Value> = subsets
            .iter()
            .map(|(k, t)| (k.clone(), serde_json::json!({"pairs": t.pairs, "accuracy": acc(t), "mean_margin": t.margin / t.pairs as f64})))
            .collect();
        let report = serde_json::json!({
            "model": args.model.display().to_string(),
            "data": args.data.display().to_string(),
            "pairs": all.pairs,
            "accuracy": acc(&all),
            "mean_margin": all.margin / all.pairs.max(1) as f64,
            "subsets": subsets_json,
        });
        let text =
            serde_json::to_string_pretty(&report).map_err(|e| Error::Internal(e.to_string()))?;
        std::fs::write(path, text).map_err(|e| Error::io(path, e))?;
    }
    Ok(())
}
