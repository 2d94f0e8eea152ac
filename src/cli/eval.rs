//! `rewardkit eval`: RewardBench-style evaluation of a bundle on preference
//! pairs (accuracy per subset with the strict `r_c > r_r` rule, sections,
//! calibration, a length baseline), and regression metrics on ratings.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::Args;
use serde_json::{json, Value};

use crate::engine::{Scorer, ScorerOptions};
use crate::error::{Error, Result};
use crate::train::{read_pairs, read_ratings, BadLines, Pair};

#[derive(Args)]
pub(super) struct EvalArgs {
    /// The bundle to evaluate.
    #[arg(long)]
    model: PathBuf,
    /// Pairs (JSONL, optional "subset" fields) or ratings rows; several files may be given.
    #[arg(long, num_args = 1.., required = true)]
    data: Vec<PathBuf>,
    /// Write a JSON report here.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Section mapping: `rewardbench` (Chat, Chat Hard, Safety, Reasoning),
    /// `none`, or a JSON file {"Section": ["subset", ...], ...}.
    #[arg(long, default_value = "rewardbench")]
    sections: String,
    /// Also report a baseline on the same pairs: `length` (the longer response wins).
    #[arg(long)]
    baseline: Option<String>,
    /// Pairs per model run.
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// Intra-op threads (0 = one per core).
    #[arg(long, default_value_t = 0)]
    threads: usize,
}

/// RewardBench's sections and their subsets.
const REWARDBENCH: &[(&str, &[&str])] = &[
    (
        "Chat",
        &[
            "alpacaeval-easy",
            "alpacaeval-length",
            "alpacaeval-hard",
            "mt-bench-easy",
            "mt-bench-med",
        ],
    ),
    (
        "Chat Hard",
        &[
            "mt-bench-hard",
            "llmbar-natural",
            "llmbar-adver-neighbor",
            "llmbar-adver-GPTInst",
            "llmbar-adver-GPTOut",
            "llmbar-adver-manual",
        ],
    ),
    (
        "Safety",
        &[
            "refusals-dangerous",
            "refusals-offensive",
            "xstest-should-refuse",
            "xstest-should-respond",
            "donotanswer",
        ],
    ),
    (
        "Reasoning",
        &[
            "math-prm",
            "hep-cpp",
            "hep-go",
            "hep-java",
            "hep-js",
            "hep-python",
            "hep-rust",
        ],
    ),
];

/// Section name → its subsets, in the order given.
type Sections = Vec<(String, Vec<String>)>;

fn load_sections(spec: &str) -> Result<Sections> {
    match spec {
        "none" => Ok(Vec::new()),
        "rewardbench" => Ok(REWARDBENCH
            .iter()
            .map(|(s, subs)| (s.to_string(), subs.iter().map(|x| x.to_string()).collect()))
            .collect()),
        path => {
            let p = Path::new(path);
            let text = std::fs::read_to_string(p).map_err(|e| Error::io(p, e))?;
            let v: Value = serde_json::from_str(&text).map_err(|e| {
                Error::InvalidArgument(format!("{path}: section mapping is not valid JSON ({e})"))
            })?;
            let obj = v.as_object().ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "{path}: a section mapping is a JSON object {{\"Section\": [\"subset\", ...]}}"
                ))
            })?;
            obj.iter()
                .map(|(name, subs)| {
                    let list = subs
                        .as_array()
                        .and_then(|a| a.iter().map(|x| x.as_str().map(String::from)).collect())
                        .ok_or_else(|| {
                            Error::InvalidArgument(format!(
                                "{path}: section {name:?} must list subset names as strings"
                            ))
                        })?;
                    Ok((name.clone(), list))
                })
                .collect()
        }
    }
}

#[derive(Default, Clone)]
struct Tally {
    pairs: usize,
    right: usize,
    margin: f64,
    baseline_right: usize,
}

impl Tally {
    fn accuracy(&self) -> f64 {
        self.right as f64 / self.pairs.max(1) as f64
    }
    fn baseline_accuracy(&self) -> f64 {
        self.baseline_right as f64 / self.pairs.max(1) as f64
    }
    fn mean_margin(&self) -> f64 {
        self.margin / self.pairs.max(1) as f64
    }
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Expected calibration error of σ(r_c − r_r), 10 equal-width bins. Each
/// pair counts in both orders, (σ(d), preferred) and (σ(−d), not
/// preferred), so the outcome is not always 1 and the score is symmetric.
fn expected_calibration_error(margins: &[f64]) -> f64 {
    const BINS: usize = 10;
    let mut count = [0usize; BINS];
    let mut conf = [0f64; BINS];
    let mut hits = [0f64; BINS];
    for &d in margins {
        for (p, y) in [(sigmoid(d), 1.0), (sigmoid(-d), 0.0)] {
            let b = ((p * BINS as f64) as usize).min(BINS - 1);
            count[b] += 1;
            conf[b] += p;
            hits[b] += y;
        }
    }
    let n: usize = count.iter().sum();
    (0..BINS)
        .filter(|&b| count[b] > 0)
        .map(|b| {
            let c = count[b] as f64;
            (c / n as f64) * (hits[b] / c - conf[b] / c).abs()
        })
        .sum()
}

fn pearson(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len() as f64;
    let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        sxy += (a - mx) * (b - my);
        sxx += (a - mx) * (a - mx);
        syy += (b - my) * (b - my);
    }
    if sxx == 0.0 || syy == 0.0 {
        f64::NAN
    } else {
        sxy / (sxx * syy).sqrt()
    }
}

fn json_f64(x: f64) -> Value {
    if x.is_finite() {
        json!(x)
    } else {
        Value::Null
    }
}

enum Loaded {
    Pairs(Vec<Pair>),
    Ratings(Vec<crate::train::Rating>),
}

/// Read every file as pairs, or (all of them) as ratings for `outputs`.
fn load(paths: &[PathBuf], outputs: &[String]) -> Result<Loaded> {
    let mut pairs = Vec::new();
    let mut ratings = Vec::new();
    for path in paths {
        match read_pairs(path, BadLines::Error) {
            Ok((p, _)) => {
                if p.iter()
                    .all(|p| p.chosen.trim().is_empty() && p.rejected.trim().is_empty())
                {
                    return Err(Error::InvalidArgument(format!(
                        "{}: the pairs have no response text",
                        path.display()
                    )));
                }
                pairs.extend(p)
            }
            Err(pair_err) => match read_ratings(path, outputs, BadLines::Error) {
                Ok((r, _)) => ratings.extend(r),
                // Neither: report the error as pairs, the usual case.
                Err(_) => return Err(pair_err),
            },
        }
    }
    match (pairs.is_empty(), ratings.is_empty()) {
        (false, true) => Ok(Loaded::Pairs(pairs)),
        (true, false) => Ok(Loaded::Ratings(ratings)),
        _ => Err(Error::InvalidArgument(
            "give either pair files or ratings files to one eval, not both".into(),
        )),
    }
}

pub(super) fn run(args: EvalArgs) -> Result<()> {
    if let Some(b) = &args.baseline {
        if b != "length" {
            return Err(Error::InvalidArgument(format!(
                "unknown baseline {b:?} (expected length)"
            )));
        }
    }
    let sections = load_sections(&args.sections)?;
    let scorer = Scorer::open(
        &args.model,
        ScorerOptions::default()
            .with_threads(args.threads)
            .with_max_batch(args.batch_size),
    )?;
    let report = match load(&args.data, scorer.output_names())? {
        Loaded::Pairs(pairs) => eval_pairs(&scorer, &pairs, &sections, args.baseline.is_some())?,
        Loaded::Ratings(rows) => eval_ratings(&scorer, &rows)?,
    };
    if let Some(path) = &args.report {
        let mut report = report;
        report["model"] = json!(args.model.display().to_string());
        report["data"] = json!(args
            .data
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>());
        let text =
            serde_json::to_string_pretty(&report).map_err(|e| Error::Internal(e.to_string()))?;
        std::fs::write(path, text).map_err(|e| Error::io(path, e))?;
    }
    Ok(())
}

fn eval_pairs(
    scorer: &Scorer,
    pairs: &[Pair],
    sections: &Sections,
    baseline: bool,
) -> Result<Value> {
    let mut prompts = Vec::with_capacity(pairs.len() * 2);
    let mut responses = Vec::with_capacity(pairs.len() * 2);
    for p in pairs {
        prompts.extend([p.prompt.as_str(), p.prompt.as_str()]);
        responses.extend([p.chosen.as_str(), p.rejected.as_str()]);
    }
    let rewards = scorer.score_batch(&prompts, &responses)?;
    let mut subsets: BTreeMap<String, Tally> = BTreeMap::new();
    let mut all = Tally::default();
    let mut margins = Vec::with_capacity(pairs.len());
    for (i, p) in pairs.iter().enumerate() {
        let (c, r) = (rewards[2 * i], rewards[2 * i + 1]);
        let longer = p.chosen.chars().count() > p.rejected.chars().count();
        let name = p.subset.clone().unwrap_or_else(|| "(none)".into());
        margins.push(f64::from(c - r));
        for t in [subsets.entry(name).or_default(), &mut all] {
            t.pairs += 1;
            t.right += usize::from(c > r);
            t.margin += f64::from(c - r);
            t.baseline_right += usize::from(longer);
        }
    }
    let ece = expected_calibration_error(&margins);

    // Sections: the example-weighted mean of their subsets present here.
    let mut section_rows: Vec<(String, Tally, Vec<String>)> = Vec::new();
    for (name, subs) in sections {
        let mut t = Tally::default();
        let mut present = Vec::new();
        for s in subs {
            if let Some(st) = subsets.get(s) {
                t.pairs += st.pairs;
                t.right += st.right;
                t.margin += st.margin;
                t.baseline_right += st.baseline_right;
                present.push(s.clone());
            }
        }
        if t.pairs > 0 {
            section_rows.push((name.clone(), t, present));
        }
    }
    let mean_of = |f: &dyn Fn(&Tally) -> f64| {
        section_rows.iter().map(|(_, t, _)| f(t)).sum::<f64>() / section_rows.len() as f64
    };
    let (score, baseline_score) = if section_rows.is_empty() {
        (all.accuracy(), all.baseline_accuracy())
    } else {
        (
            mean_of(&Tally::accuracy),
            mean_of(&Tally::baseline_accuracy),
        )
    };

    let base_col = if baseline {
        format!(" {:>9}", "longer")
    } else {
        String::new()
    };
    println!(
        "{:<32} {:>7} {:>9} {:>12}{base_col}",
        "subset", "pairs", "accuracy", "mean margin"
    );
    let line = |name: &str, t: &Tally| {
        let b = if baseline {
            format!(" {:>8.1}%", t.baseline_accuracy() * 100.0)
        } else {
            String::new()
        };
        println!(
            "{:<32} {:>7} {:>8.1}% {:>12.4}{b}",
            name,
            t.pairs,
            t.accuracy() * 100.0,
            t.mean_margin()
        );
    };
    for (name, t) in &subsets {
        line(name, t);
    }
    if !section_rows.is_empty() {
        println!("{}", "-".repeat(62));
        for (name, t, _) in &section_rows {
            line(&format!("section {name}"), t);
        }
    }
    println!("{}", "-".repeat(62));
    line("overall", &all);
    let sections_note = if section_rows.is_empty() {
        "all pairs (no subset maps to a section)".to_string()
    } else {
        format!("mean of {} sections", section_rows.len())
    };
    print!("score ({sections_note}): {:.1}%", score * 100.0);
    if baseline {
        print!(
            "  | longer-response baseline: {:.1}%",
            baseline_score * 100.0
        );
    }
    println!();
    println!("calibration: ECE of sigmoid(r_c - r_r) = {ece:.4}");

    let tally_json = |t: &Tally| {
        let mut v = json!({
            "pairs": t.pairs,
            "accuracy": t.accuracy(),
            "mean_margin": t.mean_margin(),
        });
        if baseline {
            v["baseline_accuracy"] = json!(t.baseline_accuracy());
        }
        v
    };
    let mut report = json!({
        "pairs": all.pairs,
        "accuracy": all.accuracy(),
        "mean_margin": all.mean_margin(),
        "ece": ece,
        "score": score,
        "subsets": subsets.iter().map(|(k, t)| (k.clone(), tally_json(t))).collect::<serde_json::Map<_, _>>(),
        "sections": section_rows.iter().map(|(k, t, subs)| {
            let mut v = tally_json(t);
            v["subsets"] = json!(subs);
            (k.clone(), v)
        }).collect::<serde_json::Map<_, _>>(),
    });
    if baseline {
        report["baseline"] = json!({
            "kind": "length",
            "accuracy": all.baseline_accuracy(),
            "score": baseline_score,
        });
    }
    Ok(report)
}

fn eval_ratings(scorer: &Scorer, rows: &[crate::train::Rating]) -> Result<Value> {
    let prompts: Vec<&str> = rows.iter().map(|r| r.prompt.as_str()).collect();
    let responses: Vec<&str> = rows.iter().map(|r| r.response.as_str()).collect();
    let scores = scorer.score_batch_outputs(&prompts, &responses)?;
    println!(
        "{:<16} {:>7} {:>10} {:>10}",
        "attribute", "rows", "MSE", "Pearson r"
    );
    let mut out = serde_json::Map::new();
    for (j, name) in scorer.output_names().iter().enumerate() {
        let (mut pred, mut gold) = (Vec::new(), Vec::new());
        for (i, r) in rows.iter().enumerate() {
            if let Some(y) = r.values[j] {
                pred.push(f64::from(scores[[i, j]]));
                gold.push(f64::from(y));
            }
        }
        if pred.is_empty() {
            continue;
        }
        let mse = pred
            .iter()
            .zip(&gold)
            .map(|(a, b)| (a - b) * (a - b))
            .sum::<f64>()
            / pred.len() as f64;
        let r = pearson(&pred, &gold);
        println!("{:<16} {:>7} {:>10.4} {:>10.4}", name, pred.len(), mse, r);
        out.insert(
            name.clone(),
            json!({"rows": pred.len(), "mse": mse, "pearson": json_f64(r)}),
        );
    }
    Ok(json!({"rows": rows.len(), "regression": out}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calibration_error() {
        // σ(0) = 0.5 both ways: perfectly calibrated.
        assert!(expected_calibration_error(&[0.0, 0.0]) < 1e-12);
        // Very confident and right: near 0; confident and wrong: near 1.
        assert!(expected_calibration_error(&[20.0; 4]) < 1e-6);
        assert!(expected_calibration_error(&[-20.0; 4]) > 0.999);
        // d = ln 3: p = 0.75 and 0.25 in bins 7 and 2, outcomes 1 and 0 → 0.25.
        let e = expected_calibration_error(&[3f64.ln()]);
        assert!((e - 0.25).abs() < 1e-9, "{e}");
    }

    #[test]
    fn pearson_closed_form() {
        assert!((pearson(&[1.0, 2.0, 3.0], &[2.0, 4.0, 6.0]) - 1.0).abs() < 1e-12);
        assert!((pearson(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]) + 1.0).abs() < 1e-12);
        assert!(pearson(&[1.0, 1.0], &[1.0, 2.0]).is_nan());
    }

    #[test]
    fn rewardbench_sections_by_default() {
        let s = load_sections("rewardbench").unwrap();
        let names: Vec<_> = s.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["Chat", "Chat Hard", "Safety", "Reasoning"]);
        assert!(load_sections("none").unwrap().is_empty());
        let e = load_sections("/nonexistent/sections.json").unwrap_err();
        assert!(e.to_string().contains("sections.json"), "{e}");
    }
}
