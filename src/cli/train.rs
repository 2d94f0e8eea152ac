use std::path::PathBuf;

use clap::Args;

use crate::error::{Error, Result};
use crate::train::{load_examples, Control, Init, Recipe, Trainer};

#[derive(Args)]
pub(super) struct TrainArgs {
    /// Recipe file (TOML), e.g. training/recipes/bt.toml.
    #[arg(long)]
    config: PathBuf,
    /// Training data (JSONL pairs, HelpSteer2-Preference rows, TRL pairs, or ratings for regression).
    #[arg(long)]
    data: PathBuf,
    /// Evaluation data, same format.
    #[arg(long)]
    eval_data: Option<PathBuf>,
    /// Start from a pretrained backbone directory (fresh head).
    #[arg(long, conflicts_with = "init")]
    backbone: Option<PathBuf>,
    /// Start from an existing bundle (its head included).
    #[arg(long)]
    init: Option<PathBuf>,
    /// Output directory: the bundle, checkpoint/ and metrics.jsonl.
    #[arg(long)]
    out: PathBuf,
    /// Continue the run whose checkpoint is in this directory.
    #[arg(long)]
    resume: Option<PathBuf>,
    /// Stop after this many steps (overrides training.max_steps).
    #[arg(long)]
    max_steps: Option<u64>,
    /// Override a recipe value, e.g. --set optimizer.lr=1e-5 (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
}

pub(super) fn run(args: TrainArgs) -> Result<()> {
    let mut overrides = args.overrides.clone();
    if let Some(n) = args.max_steps {
        overrides.push(format!("training.max_steps={n}"));
    }
    let recipe = Recipe::from_file(&args.config, &overrides)?;
    let init = match (&args.backbone, &args.init) {
        (Some(b), None) => Init::Backbone(b.clone()),
        (None, Some(i)) => Init::Bundle(i.clone()),
        _ => {
            return Err(Error::InvalidArgument(
                "give --backbone DIR or --init BUNDLE".into(),
            ))
        }
    };
    let outputs = match &init {
        Init::Bundle(dir) => crate::bundle::Bundle::open(dir)?.manifest().outputs.clone(),
        Init::Backbone(_) => recipe
            .model
            .outputs
            .parse::<crate::bundle::OutputPreset>()?
            .names(),
    };
    let (data, summary) = load_examples(&args.data, &recipe, &outputs)?;
    eprintln!(
        "{}: {} examples ({} lines, {} skipped, {} ties)",
        args.data.display(),
        data.len(),
        summary.lines,
        summary.skipped.len(),
        summary.ties
    );
    let (eval, eval_summary) = match &args.eval_data {
        Some(p) => {
            let (e, s) = load_examples(p, &recipe, &outputs)?;
            eprintln!("{}: {} eval examples", p.display(), e.len());
            (Some(e), Some(s))
        }
        None => (None, None),
    };
    let digest = crate::train::data::file_digest(&args.data).ok();
    let work = args.out.join("work");
    let mut trainer = Trainer::new(recipe, &init, data, eval, digest, &work)?;
    trainer.add_summary(summary);
    if let Some(s) = eval_summary {
        trainer.add_summary(s);
    }
    if let Some(dir) = &args.resume {
        trainer.resume(dir)?;
        eprintln!("resumed at step {}", trainer.step());
    }
    if let Some(e) = trainer.evaluate(None)? {
        eprintln!(
            "before training: eval loss {:.4}, accuracy {}",
            e.loss,
            e.accuracy
                .map_or("-".into(), |a| format!("{:.1}%", a * 100.0))
        );
    }
    let bar = indicatif::ProgressBar::new(trainer.total_steps());
    bar.set_position(trainer.step());
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} steps  {msg}  eta {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let outcome = trainer.run(&args.out, |r| {
        let acc = r
            .accuracy
            .map_or(String::new(), |a| format!(" acc {:.2}", a));
        let ev = r.eval.as_ref().map_or(String::new(), |e| {
            format!(
                " | eval loss {:.4} acc {}",
                e.loss,
                e.accuracy.map_or("-".into(), |a| format!("{:.3}", a))
            )
        });
        bar.set_message(format!(
            "loss {:.4}{acc} {:.1} ex/s{ev}",
            r.loss, r.examples_per_sec
        ));
        bar.set_position(r.step);
        Control::Continue
    })?;
    bar.finish_and_clear();
    eprintln!(
        "trained {} steps, last loss {:.4}",
        outcome.steps, outcome.last_loss
    );
    if let Some(e) = &outcome.eval {
        eprintln!(
            "after training: eval loss {:.4}, accuracy {}",
            e.loss,
            e.accuracy
                .map_or("-".into(), |a| format!("{:.1}%", a * 100.0))
        );
    }
    println!("wrote {}", args.out.display());
    Ok(())
}
