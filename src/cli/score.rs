use std::io::{BufRead, BufWriter, Write};
use std::path::PathBuf;

use clap::Args;

use crate::engine::{Device, Scorer, ScorerOptions};
use crate::error::{Error, Result};

#[derive(Args)]
pub(super) struct ScoreArgs {
    /// The bundle directory.
    #[arg(long)]
    model: PathBuf,
    /// One prompt (with --response).
    #[arg(long, requires = "response", conflicts_with = "input")]
    prompt: Option<String>,
    /// One response (with --prompt).
    #[arg(long, requires = "prompt")]
    response: Option<String>,
    /// JSONL file of {"prompt", "response"} or {"prompt", "chosen", "rejected"} rows.
    #[arg(long)]
    input: Option<PathBuf>,
    /// Where to write JSON lines (default: standard output).
    #[arg(long)]
    output: Option<PathBuf>,
    /// Most pairs per model run.
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// Most padded tokens (pairs × longest pair) per model run; 0 = no limit
    /// [default: 2048 on the CPU, 16384 on CUDA]
    #[arg(long)]
    max_tokens: Option<usize>,
    /// Intra-op threads (0 = one per core).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Longest encoded pair (default: the bundle's).
    #[arg(long)]
    max_length: Option<usize>,
    /// `cpu` or `cuda` (or `cuda:N`).
    #[arg(long, default_value = "cpu")]
    device: String,
}

/// One input row: a single response, or a chosen/rejected pair.
enum Row {
    Single {
        prompt: String,
        response: String,
    },
    Pair {
        prompt: String,
        chosen: String,
        rejected: String,
    },
}

fn parse_row(line: &str, path: &std::path::Path, lineno: usize) -> Result<Row> {
    let at = || format!("{}:{lineno}", path.display());
    let v: serde_json::Value = serde_json::from_str(line)
        .map_err(|e| Error::InvalidArgument(format!("{}: not valid JSON: {e}", at())))?;
    let field = |k: &str| -> Result<Option<String>> {
        match v.get(k) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(Error::InvalidArgument(format!(
                "{}: field {k:?} is not a string",
                at()
            ))),
        }
    };
    let prompt = field("prompt")?
        .ok_or_else(|| Error::InvalidArgument(format!("{}: missing field \"prompt\"", at())))?;
    if let Some(response) = field("response")? {
        return Ok(Row::Single { prompt, response });
    }
    match (field("chosen")?, field("rejected")?) {
        (Some(chosen), Some(rejected)) => Ok(Row::Pair {
            prompt,
            chosen,
            rejected,
        }),
        _ => Err(Error::InvalidArgument(format!(
            "{}: expected \"response\", or \"chosen\" and \"rejected\"",
            at()
        ))),
    }
}

fn row_json(scorer: &Scorer, outputs: &[f32]) -> serde_json::Map<String, serde_json::Value> {
    let mut m = serde_json::Map::new();
    m.insert(
        "reward".into(),
        serde_json::json!(scorer.reward_of(outputs)),
    );
    for (name, v) in scorer.output_names().iter().zip(outputs) {
        m.insert(name.clone(), serde_json::json!(v));
    }
    m
}

pub(super) fn run(args: ScoreArgs) -> Result<()> {
    let mut opts = ScorerOptions::default()
        .with_threads(args.threads)
        .with_max_batch(args.batch_size)
        .with_device(args.device.parse::<Device>()?);
    if let Some(n) = args.max_tokens {
        opts = opts.with_max_tokens(n);
    }
    if let Some(n) = args.max_length {
        opts = opts.with_max_length(n);
    }
    let scorer = Scorer::open(&args.model, opts)?;
    let mut out: Box<dyn Write> = match &args.output {
        Some(p) => Box::new(BufWriter::new(
            std::fs::File::create(p).map_err(|e| Error::io(p, e))?,
        )),
        None => Box::new(BufWriter::new(std::io::stdout().lock())),
    };
    let write_err =
        |e: std::io::Error| Error::io(args.output.clone().unwrap_or_else(|| "<stdout>".into()), e);

    if let (Some(p), Some(r)) = (&args.prompt, &args.response) {
        let all = scorer.score_batch_outputs(&[p.as_str()], &[r.as_str()])?;
        let row = all.row(0).to_vec();
        writeln!(
            out,
            "{}",
            serde_json::Value::Object(row_json(&scorer, &row))
        )
        .map_err(write_err)?;
        return out.flush().map_err(write_err);
    }
    let Some(path) = &args.input else {
        return Err(Error::InvalidArgument(
            "give --prompt and --response, or --input FILE".into(),
        ));
    };
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut rows = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| Error::io(path, e))?;
        if line.trim().is_empty() {
            continue;
        }
        rows.push(parse_row(&line, path, i + 1)?);
    }
    // Flatten every response to score into one list, so batching sorts across rows.
    let mut prompts: Vec<&str> = Vec::new();
    let mut responses: Vec<&str> = Vec::new();
    for row in &rows {
        match row {
            Row::Single { prompt, response } => {
                prompts.push(prompt);
                responses.push(response);
            }
            Row::Pair {
                prompt,
                chosen,
                rejected,
            } => {
                prompts.extend([prompt.as_str(), prompt.as_str()]);
                responses.extend([chosen.as_str(), rejected.as_str()]);
            }
        }
    }
    let bar = indicatif::ProgressBar::new(prompts.len() as u64);
    if prompts.len() < 256 {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} pairs  {per_sec}  eta {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let n_out = scorer.output_names().len();
    let mut scores = ndarray::Array2::<f32>::zeros((prompts.len(), n_out));
    // Score in slices so the bar moves; each slice is length-sorted internally.
    let slice = (args.batch_size * 8).max(1);
    for start in (0..prompts.len()).step_by(slice) {
        let end = (start + slice).min(prompts.len());
        let part = scorer.score_batch_outputs(&prompts[start..end], &responses[start..end])?;
        scores.slice_mut(ndarray::s![start..end, ..]).assign(&part);
        bar.set_position(end as u64);
    }
    bar.finish_and_clear();
    let mut k = 0;
    for row in &rows {
        let obj = match row {
            Row::Single { .. } => {
                k += 1;
                row_json(&scorer, &scores.row(k - 1).to_vec())
            }
            Row::Pair { .. } => {
                let c = scores.row(k).to_vec();
                let r = scores.row(k + 1).to_vec();
                k += 2;
                let (rc, rr) = (scorer.reward_of(&c), scorer.reward_of(&r));
                let mut m = serde_json::Map::new();
                m.insert(
                    "chosen".into(),
                    serde_json::Value::Object(row_json(&scorer, &c)),
                );
                m.insert(
                    "rejected".into(),
                    serde_json::Value::Object(row_json(&scorer, &r)),
                );
                m.insert("margin".into(), serde_json::json!(rc - rr));
                m.insert("correct".into(), serde_json::json!(rc > rr));
                m
            }
        };
        writeln!(out, "{}", serde_json::Value::Object(obj)).map_err(write_err)?;
    }
    out.flush().map_err(write_err)
}
