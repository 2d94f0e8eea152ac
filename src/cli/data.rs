//! `rewardkit data`: generate the demo set, convert public datasets, and
//! describe a data file.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Subcommand;

use crate::error::{Error, Result};
use crate::text::PairTokenizer;
use crate::train::convert::{convert, SourceFormat};
use crate::train::synth::{generate, SynthOptions};
use crate::train::{read_pairs, read_ratings, BadLines};

#[derive(Subcommand)]
pub(super) enum DataCommand {
    /// Write the generated preference set (pairs and ratings, train and held-out).
    Generate {
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = SynthOptions::default().seed)]
        seed: u64,
        /// Training pairs.
        #[arg(long, default_value_t = SynthOptions::default().train_pairs)]
        train_pairs: usize,
        /// Held-out pairs.
        #[arg(long, default_value_t = SynthOptions::default().heldout_pairs)]
        heldout_pairs: usize,
    },
    /// Convert HelpSteer2, HelpSteer2-Preference, TRL or hh-rlhf rows into rewardkit JSONL.
    Convert {
        /// helpsteer2 | helpsteer2-pref | trl | hh-rlhf
        #[arg(long)]
        from: String,
        #[arg(long)]
        input: PathBuf,
        #[arg(long)]
        output: PathBuf,
        /// Skip bad rows (counted) instead of stopping at the first.
        #[arg(long)]
        skip_bad: bool,
    },
    /// Rows, subsets, token-length percentiles, strengths, and rows that would be truncated.
    Stats {
        /// Pairs or ratings (JSONL).
        #[arg(long)]
        data: PathBuf,
        /// A bundle or backbone directory whose tokenizer.json measures lengths
        /// (default: whitespace-separated words).
        #[arg(long)]
        tokenizer: Option<PathBuf>,
        /// The length limit for the truncation count.
        #[arg(long, default_value_t = 512)]
        max_length: usize,
        /// Also write the statistics as JSON here.
        #[arg(long)]
        report: Option<PathBuf>,
    },
}

pub(super) fn run(cmd: DataCommand) -> Result<()> {
    match cmd {
        DataCommand::Generate {
            out,
            seed,
            train_pairs,
            heldout_pairs,
        } => {
            let s = generate(
                &out,
                &SynthOptions {
                    seed,
                    train_pairs,
                    heldout_pairs,
                },
            )?;
            println!(
                "wrote {}: {} training pairs, {} held-out pairs, {} + {} rating rows",
                out.display(),
                s.train_pairs,
                s.heldout_pairs,
                s.train_ratings,
                s.heldout_ratings
            );
            Ok(())
        }
        DataCommand::Convert {
            from,
            input,
            output,
            skip_bad,
        } => {
            let format: SourceFormat = from.parse()?;
            let s = convert(format, &input, &output, skip_bad)?;
            println!(
                "wrote {} rows to {} ({} lines read, {} skipped, {} ties)",
                s.written,
                output.display(),
                s.lines,
                s.skipped.len(),
                s.ties
            );
            for (line, why) in s.skipped.iter().take(5) {
                eprintln!("  skipped {}:{line}: {why}", input.display());
            }
            Ok(())
        }
        DataCommand::Stats {
            data,
            tokenizer,
            max_length,
            report,
        } => stats(&data, tokenizer.as_deref(), max_length, report.as_deref()),
    }
}

/// The value at quantile `q` of sorted `v` (nearest rank).
fn percentile(v: &[usize], q: f64) -> usize {
    if v.is_empty() {
        return 0;
    }
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

/// One example's texts, subset and strength, pairs or ratings alike.
struct Row {
    prompt: String,
    responses: Vec<String>,
    subset: Option<String>,
    strength: Option<f32>,
}

fn read_rows(path: &std::path::Path) -> Result<(Vec<Row>, &'static str)> {
    match read_pairs(path, BadLines::Error) {
        Ok((pairs, _)) => Ok((
            pairs
                .into_iter()
                .map(|p| Row {
                    prompt: p.prompt,
                    responses: vec![p.chosen, p.rejected],
                    subset: p.subset,
                    strength: p.strength,
                })
                .collect(),
            "pairs",
        )),
        Err(pair_err) => {
            let names = crate::bundle::OutputPreset::HelpSteer2.names();
            let (ratings, _) = read_ratings(path, &names, BadLines::Error).map_err(|_| pair_err)?;
            Ok((
                ratings
                    .into_iter()
                    .map(|r| Row {
                        prompt: r.prompt,
                        responses: vec![r.response],
                        subset: None,
                        strength: None,
                    })
                    .collect(),
                "ratings",
            ))
        }
    }
}

fn stats(
    path: &std::path::Path,
    tokenizer: Option<&std::path::Path>,
    max_length: usize,
    report: Option<&std::path::Path>,
) -> Result<()> {
    let (rows, kind) = read_rows(path)?;
    let tok = match tokenizer {
        Some(dir) => Some(PairTokenizer::from_file(
            &dir.join("tokenizer.json"),
            usize::MAX / 4,
        )?),
        None => None,
    };
    let unit = if tok.is_some() { "tokens" } else { "words" };
    let mut lengths = Vec::new();
    let mut truncated_rows = 0usize;
    for row in &rows {
        let mut over = false;
        for r in &row.responses {
            let n = match &tok {
                Some(t) => t.encode_pair(&row.prompt, r)?.len(),
                None => row.prompt.split_whitespace().count() + r.split_whitespace().count(),
            };
            over |= n > max_length;
            lengths.push(n);
        }
        truncated_rows += usize::from(over);
    }
    lengths.sort_unstable();
    let mut subsets: BTreeMap<String, usize> = BTreeMap::new();
    let mut strengths: BTreeMap<String, usize> = BTreeMap::new();
    for row in &rows {
        *subsets
            .entry(row.subset.clone().unwrap_or_else(|| "(none)".into()))
            .or_default() += 1;
        if kind == "pairs" {
            let key = row.strength.map_or("(none)".into(), |s| format!("{s}"));
            *strengths.entry(key).or_default() += 1;
        }
    }
    let pct: Vec<(&str, usize)> = [("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1.0)]
        .iter()
        .map(|&(n, q)| (n, percentile(&lengths, q)))
        .collect();
    println!("{}: {} {kind}", path.display(), rows.len());
    println!(
        "length in {unit} per encoded pair: {}",
        pct.iter()
            .map(|(n, v)| format!("{n} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "rows with a pair over {max_length} {unit} (would be truncated): {truncated_rows} ({:.1}%)",
        100.0 * truncated_rows as f64 / rows.len() as f64
    );
    println!("subsets:");
    for (k, v) in &subsets {
        println!("  {k:<36} {v:>7}");
    }
    if kind == "pairs" {
        println!("strength:");
        for (k, v) in &strengths {
            println!("  {k:<36} {v:>7}");
        }
    }
    if let Some(out) = report {
        let json = serde_json::json!({
            "data": path.display().to_string(),
            "kind": kind,
            "rows": rows.len(),
            "length_unit": unit,
            "length_percentiles": pct.iter().map(|(n, v)| (n.to_string(), serde_json::json!(v))).collect::<serde_json::Map<_, _>>(),
            "max_length": max_length,
            "truncated_rows": truncated_rows,
            "subsets": subsets,
            "strengths": strengths,
        });
        let text =
            serde_json::to_string_pretty(&json).map_err(|e| Error::Internal(e.to_string()))?;
        std::fs::write(out, text).map_err(|e| Error::io(out, e))?;
    }
    Ok(())
}
