use std::path::{Path, PathBuf};

use clap::Args;

use crate::error::{Error, Result};
use crate::train::recipe::{Pipeline, StageData};
use crate::train::{load_examples, Control, Init, Recipe, Trainer};

#[derive(Args)]
pub(super) struct TrainArgs {
    /// Recipe file (TOML), e.g. training/recipes/bt.toml.
    #[arg(long)]
    config: PathBuf,
    /// Training data (JSONL pairs, HelpSteer2-Preference rows, TRL pairs, or ratings for regression).
    /// In a pipeline recipe: the data of the stages with `data = "pairs"`.
    #[arg(long)]
    data: PathBuf,
    /// Evaluation data, same format.
    #[arg(long)]
    eval_data: Option<PathBuf>,
    /// Pipeline recipes only: the ratings of the stages with `data = "ratings"`.
    #[arg(long)]
    ratings: Option<PathBuf>,
    /// Pipeline recipes only: evaluation ratings for those stages.
    #[arg(long)]
    eval_ratings: Option<PathBuf>,
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
    /// Where to train: cpu, cuda or cuda:N (overrides training.device).
    #[arg(long)]
    device: Option<String>,
    /// Override a recipe value, e.g. --set optimizer.lr=1e-5 (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
}

/// One training run: what `rewardkit train` does for a plain recipe, and
/// for each stage of a pipeline.
struct Stage<'a> {
    recipe: Recipe,
    init: Init,
    data: &'a Path,
    eval_data: Option<&'a Path>,
    out: PathBuf,
    resume: Option<PathBuf>,
}

pub(super) fn run(args: TrainArgs) -> Result<()> {
    let mut overrides = args.overrides.clone();
    if let Some(n) = args.max_steps {
        overrides.push(format!("training.max_steps={n}"));
    }
    if let Some(d) = &args.device {
        overrides.push(format!("training.device={d}"));
    }
    let init = match (&args.backbone, &args.init) {
        (Some(b), None) => Init::Backbone(b.clone()),
        (None, Some(i)) => Init::Bundle(i.clone()),
        _ => {
            return Err(Error::InvalidArgument(
                "give --backbone DIR or --init BUNDLE".into(),
            ))
        }
    };
    if let Some(pipeline) = Pipeline::from_file(&args.config)? {
        return run_pipeline(&args, pipeline, init, &overrides);
    }
    if args.ratings.is_some() || args.eval_ratings.is_some() {
        return Err(Error::InvalidArgument(format!(
            "--ratings and --eval-ratings are for pipeline recipes; {} is a single recipe (give its data with --data)",
            args.config.display()
        )));
    }
    let recipe = Recipe::from_file(&args.config, &overrides)?;
    train_stage(Stage {
        recipe,
        init,
        data: &args.data,
        eval_data: args.eval_data.as_deref(),
        out: args.out.clone(),
        resume: args.resume.clone(),
    })
}

/// Run each stage in order; stage k + 1 starts from stage k's bundle, and
/// the last stage writes into `--out`. With `--resume`, stages whose bundle
/// is already complete are skipped and the first unfinished one resumes
/// from its checkpoint.
fn run_pipeline(
    args: &TrainArgs,
    pipeline: Pipeline,
    init: Init,
    overrides: &[String],
) -> Result<()> {
    let n = pipeline.stages.len();
    let mut init = init;
    for (i, stage) in pipeline.stages.iter().enumerate() {
        let last = i + 1 == n;
        let out = if last {
            args.out.clone()
        } else {
            args.out
                .join("stages")
                .join(format!("{}-{}", i + 1, stage.name()))
        };
        let mut stage_overrides = stage.set.clone();
        stage_overrides.extend(overrides.iter().cloned());
        let recipe = Recipe::from_file(&stage.recipe, &stage_overrides)?;
        let (data, eval_data) = match stage.data {
            StageData::Pairs => (args.data.as_path(), args.eval_data.as_deref()),
            StageData::Ratings => (
                args.ratings.as_deref().ok_or_else(|| {
                    Error::InvalidArgument(format!(
                        "stage {} ({}) trains on ratings: give --ratings FILE",
                        i + 1,
                        stage.name()
                    ))
                })?,
                args.eval_ratings.as_deref(),
            ),
        };
        let done = out.join(crate::bundle::MANIFEST_FILE).exists() && !last;
        if args.resume.is_some() && done {
            eprintln!(
                "stage {}/{n} ({}): already complete in {}",
                i + 1,
                stage.name(),
                out.display()
            );
        } else {
            eprintln!(
                "stage {}/{n} ({}): {} on {}",
                i + 1,
                stage.name(),
                stage.recipe.display(),
                data.display()
            );
            let resume = args
                .resume
                .as_ref()
                .filter(|_| out.join("checkpoint").exists())
                .map(|_| out.clone());
            train_stage(Stage {
                recipe,
                init: init.clone(),
                data,
                eval_data,
                out: out.clone(),
                resume,
            })?;
        }
        init = Init::Bundle(out);
    }
    Ok(())
}

fn train_stage(stage: Stage) -> Result<()> {
    let Stage {
        recipe,
        init,
        data: data_path,
        eval_data: eval_path,
        out,
        resume,
    } = stage;
    let outputs = match &init {
        Init::Bundle(dir) => crate::bundle::Bundle::open(dir)?.manifest().outputs.clone(),
        Init::Backbone(_) => recipe
            .model
            .outputs
            .parse::<crate::bundle::OutputPreset>()?
            .names(),
    };
    let (data, summary) = load_examples(data_path, &recipe, &outputs)?;
    eprintln!(
        "{}: {} examples ({} lines, {} skipped, {} ties)",
        data_path.display(),
        data.len(),
        summary.lines,
        summary.skipped.len(),
        summary.ties
    );
    let (eval, eval_summary) = match eval_path {
        Some(p) => {
            let (e, s) = load_examples(p, &recipe, &outputs)?;
            eprintln!("{}: {} eval examples", p.display(), e.len());
            (Some(e), Some(s))
        }
        None => (None, None),
    };
    let digest = crate::train::data::file_digest(data_path).ok();
    let work = out.join("work");
    let mut trainer = Trainer::new(recipe, &init, data, eval, digest, &work)?;
    trainer.add_summary(summary);
    if let Some(s) = eval_summary {
        trainer.add_summary(s);
    }
    if let Some(dir) = &resume {
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
    let outcome = trainer.run(&out, |r| {
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
    println!("wrote {}", out.display());
    Ok(())
}
