//! The `rewardkit` command line. The binary's `main` only calls [`main`].

mod data;
mod eval;
mod import;
mod score;
mod train;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::bundle::{init_from_backbone, InitOptions, OutputPreset};
use crate::error::Result;
use crate::model::Pooling;

#[derive(Parser)]
#[command(
    name = "rewardkit",
    version,
    about = "Embedded reward models: make, train, evaluate and score reward-model bundles"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Make an untrained reward-model bundle from a pretrained backbone.
    Init {
        /// Backbone directory with config.json, model.safetensors and tokenizer.json.
        #[arg(long)]
        backbone: PathBuf,
        /// Where to write the bundle.
        #[arg(long)]
        out: PathBuf,
        /// `reward` (one scalar) or `helpsteer2` (five attributes; reward = helpfulness).
        #[arg(long, default_value = "reward")]
        outputs: OutputPreset,
        /// Seed for the head's initial weights.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// `mean` or `cls`.
        #[arg(long, default_value = "mean")]
        pooling: Pooling,
        /// Longest encoded pair in tokens (default: the backbone's limit, at most 512).
        #[arg(long)]
        max_length: Option<usize>,
        /// Replace an existing bundle at --out.
        #[arg(long)]
        force: bool,
        /// Write model.onnx with standard ONNX ops only (no ONNX Runtime
        /// contrib ops), for runtimes other than ONNX Runtime.
        #[arg(long)]
        portable: bool,
        /// Weights' and activations' type: fp32, or fp16 (half the size and
        /// the fast path on GPUs; pooling and the head stay fp32). Bundles in
        /// fp16 are for scoring: training and merging take fp32 ones.
        #[arg(long, default_value = "fp32")]
        dtype: String,
    },
    /// Score (prompt, response) pairs.
    Score(score::ScoreArgs),
    /// Train a reward model from a recipe.
    Train(train::TrainArgs),
    /// Evaluate a bundle on preference pairs (strict r_chosen > r_rejected).
    Eval(eval::EvalArgs),
    /// ExPO: extrapolate from a weak to a strong bundle, θ = θ_w + α(θ_s − θ_w).
    Merge {
        /// The weaker bundle (e.g. an earlier checkpoint or the SFT-stage model).
        #[arg(long)]
        weak: PathBuf,
        /// The stronger bundle (same architecture).
        #[arg(long)]
        strong: PathBuf,
        /// Extrapolation factor (1 = strong; the ExPO paper uses about 1.5).
        #[arg(long, default_value_t = 1.5)]
        alpha: f32,
        #[arg(long)]
        out: PathBuf,
        /// Replace an existing bundle at --out.
        #[arg(long)]
        force: bool,
    },
    /// Make, convert and describe data files.
    Data {
        #[command(subcommand)]
        command: data::DataCommand,
    },
    /// Make a bundle from a Hugging Face checkpoint (encoder or decoder
    /// `*ForSequenceClassification`, or a bare backbone with --outputs).
    Import(import::ImportArgs),
    /// Show the exact text and tokens a model gets for a (prompt, response) pair.
    Render(import::RenderArgs),
    /// Quantize a bundle's weight matmuls to dynamic int8 (DynamicQuantizeLinear and
    /// MatMulInteger; the int8 model uses standard ONNX ops only).
    Quantize {
        /// The float bundle.
        #[arg(long)]
        model: PathBuf,
        /// Where to write the int8 bundle.
        #[arg(long)]
        out: PathBuf,
        /// Replace an existing bundle at --out.
        #[arg(long)]
        force: bool,
        /// 8-bit weights (±127) instead of 7-bit (±63): one more bit of
        /// precision, but x86 CPUs without VNNI (AVX2-only, AVX-512F without
        /// VNNI) saturate in ONNX Runtime's int8 kernel and lose accuracy.
        /// Only for machines with VNNI or AMX.
        #[arg(long)]
        full_range: bool,
    },
    /// Show a bundle's manifest.
    Info {
        /// The bundle directory.
        #[arg(long)]
        model: PathBuf,
    },
    /// Developer tools (fixtures for tests).
    #[command(hide = true)]
    Dev {
        #[command(subcommand)]
        command: DevCommand,
    },
}

#[derive(Subcommand)]
enum DevCommand {
    /// Write a tiny random BERT backbone (for tests).
    TinyBackbone {
        out: PathBuf,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

/// Run the command line; errors are printed with their code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rewardkit: error [{}]: {e}", e.code().as_u32());
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Init {
            backbone,
            out,
            outputs,
            seed,
            pooling,
            max_length,
            force,
            portable,
            dtype,
        } => {
            let mut opts = InitOptions::default()
                .with_outputs(outputs)
                .with_seed(seed)
                .with_pooling(pooling)
                .with_overwrite(force)
                .with_portable(portable)
                .with_precision(dtype.parse()?);
            if let Some(n) = max_length {
                opts = opts.with_max_length(n);
            }
            let bundle = init_from_backbone(&backbone, &out, &opts)?;
            let m = bundle.manifest();
            println!(
                "wrote {} (outputs: {}; reward: {}; pooling: {:?}; max_length: {})",
                out.display(),
                m.outputs.join(", "),
                m.reward_output,
                m.pooling,
                m.max_length
            );
            Ok(())
        }
        Command::Score(args) => score::run(args),
        Command::Train(args) => train::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Data { command } => data::run(command),
        Command::Import(args) => import::run_import(args),
        Command::Render(args) => import::run_render(args),
        Command::Merge {
            weak,
            strong,
            alpha,
            out,
            force,
        } => {
            let b = crate::bundle::merge_expo(&weak, &strong, alpha, &out, force)?;
            println!(
                "wrote {} = {} + {alpha}·({} − {})",
                b.dir().display(),
                weak.display(),
                strong.display(),
                weak.display()
            );
            Ok(())
        }
        Command::Quantize {
            model,
            out,
            force,
            full_range,
        } => {
            let range = if full_range {
                crate::bundle::WeightRange::Full
            } else {
                crate::bundle::WeightRange::Reduced
            };
            let (_, s) = crate::bundle::quantize_int8_with(&model, &out, force, range)?;
            println!(
                "wrote {} ({} matmuls, {} weights in int8; the reward head stays float)",
                out.display(),
                s.matmuls,
                s.weights
            );
            Ok(())
        }
        Command::Info { model } => {
            let bundle = crate::bundle::Bundle::open(&model)?;
            println!("{}", bundle.manifest().to_json());
            Ok(())
        }
        Command::Dev { command } => match command {
            DevCommand::TinyBackbone { out, seed } => {
                let spec = crate::testing::TinyBert {
                    seed,
                    ..Default::default()
                };
                crate::testing::write_tiny_bert(&out, spec)?;
                println!("wrote a tiny backbone to {}", out.display());
                Ok(())
            }
        },
    }
}
