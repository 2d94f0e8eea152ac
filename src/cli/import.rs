//! `rewardkit import` (a Hugging Face checkpoint to a bundle) and
//! `rewardkit render` (the exact text and tokens a model sees for a pair).

use std::path::PathBuf;

use clap::Args;

use crate::bundle::{import_hf, Bundle, ImportOptions};
use crate::error::{Error, Result};
use crate::text::{ChatTemplate, PairTokenizer, TextMode};

#[derive(Args)]
pub struct ImportArgs {
    /// A Hugging Face model directory: config.json, model.safetensors (or
    /// sharded with model.safetensors.index.json), tokenizer.json and, for
    /// chat models, tokenizer_config.json.
    #[arg(long)]
    hf: PathBuf,
    /// Where to write the bundle.
    #[arg(long)]
    out: PathBuf,
    /// Add a fresh head with these comma-separated outputs (a bare backbone,
    /// or to replace the checkpoint's head): e.g. `reward`, or
    /// `helpfulness,correctness,coherence,complexity,verbosity`.
    #[arg(long, value_delimiter = ',')]
    outputs: Option<Vec<String>>,
    /// Which output is the reward (default: the first).
    #[arg(long)]
    reward_output: Option<String>,
    /// Longest input in tokens (default: the model's limit, at most 4096 for
    /// decoders and 512 for encoders).
    #[arg(long)]
    max_length: Option<usize>,
    /// Seed of a fresh head.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Ignore tokenizer_config.json's chat template (use `User:`/`Assistant:` text).
    #[arg(long)]
    no_chat_template: bool,
    /// Weights' and activations' type: fp32, fp16, or bf16 for decoders
    /// (normalisation statistics, softmax and the reward head stay fp32).
    /// bf16 models need an execution provider with bfloat16 kernels (CUDA;
    /// not the CPU).
    #[arg(long, default_value = "fp32")]
    dtype: String,
    /// Replace an existing bundle at --out.
    #[arg(long)]
    force: bool,
    /// Write model.onnx with standard ONNX ops only (encoders are otherwise
    /// written with ONNX Runtime's fused attention and layer-norm ops).
    #[arg(long)]
    portable: bool,
}

pub fn run_import(args: ImportArgs) -> Result<()> {
    let precision: crate::model::Precision = args.dtype.parse()?;
    let mut opts = ImportOptions::default()
        .with_precision(precision)
        .with_seed(args.seed)
        .with_no_chat_template(args.no_chat_template)
        .with_overwrite(args.force)
        .with_portable(args.portable);
    if let Some(o) = args.outputs {
        opts = opts.with_outputs(o);
    }
    if let Some(r) = args.reward_output {
        opts = opts.with_reward_output(r);
    }
    if let Some(n) = args.max_length {
        opts = opts.with_max_length(n);
    }
    let bundle = import_hf(&args.hf, &args.out, &opts)?;
    let m = bundle.manifest();
    let text = match &m.text {
        crate::bundle::TextFormat::Pair => "sentence pair",
        crate::bundle::TextFormat::Plain => "plain User:/Assistant: text",
        crate::bundle::TextFormat::Chat { .. } => "chat template",
    };
    println!(
        "wrote {} ({}; outputs: {}; reward: {}; pooling: {:?}; max_length: {}; text: {text})",
        args.out.display(),
        m.architecture.family,
        m.outputs.join(", "),
        m.reward_output,
        m.pooling,
        m.max_length
    );
    Ok(())
}

#[derive(Args)]
pub struct RenderArgs {
    /// A bundle.
    #[arg(long, conflicts_with = "hf", required_unless_present = "hf")]
    model: Option<PathBuf>,
    /// Or a Hugging Face model directory (tokenizer.json, tokenizer_config.json).
    #[arg(long)]
    hf: Option<PathBuf>,
    /// The prompt (multi-turn prompts as `User: …` / `Assistant: …` blocks).
    #[arg(long)]
    prompt: String,
    #[arg(long)]
    response: String,
    /// Also print the token ids the model gets (after truncation).
    #[arg(long)]
    tokens: bool,
    /// Token limit with --hf (a bundle has its own).
    #[arg(long, default_value_t = crate::bundle::import::DEFAULT_DECODER_MAX_LENGTH)]
    max_length: usize,
}

pub fn run_render(args: RenderArgs) -> Result<()> {
    let tokenizer = match (&args.model, &args.hf) {
        (Some(dir), _) => {
            let bundle = Bundle::open(dir)?;
            let m = bundle.manifest();
            PairTokenizer::from_file(&bundle.tokenizer_path(), m.max_length)?
                .with_mode(m.text.to_mode()?)?
        }
        (None, Some(dir)) => {
            let cfg = dir.join("tokenizer_config.json");
            let mode = if cfg.is_file() {
                match ChatTemplate::from_tokenizer_config(&cfg)? {
                    Some(t) => TextMode::Chat(Box::new(t)),
                    None => TextMode::Plain,
                }
            } else {
                TextMode::Plain
            };
            PairTokenizer::from_file(&dir.join("tokenizer.json"), args.max_length)?
                .with_mode(mode)?
        }
        (None, None) => {
            return Err(Error::InvalidArgument(
                "pass --model BUNDLE or --hf DIR".into(),
            ))
        }
    };
    match tokenizer.render(&args.prompt, &args.response)? {
        Some(r) => {
            print!("{}", r.text);
            if !r.text.ends_with('\n') {
                println!();
            }
            eprintln!(
                "-- {} bytes; the response's part starts at byte {}",
                r.text.len(),
                r.response_start
            );
        }
        None => {
            println!("[segment 1] {}", args.prompt);
            println!("[segment 2] {}", args.response);
        }
    }
    let enc = tokenizer.encode_pair(&args.prompt, &args.response)?;
    if args.tokens {
        let ids: Vec<String> = enc.ids.iter().map(|i| i.to_string()).collect();
        println!("{}", ids.join(" "));
    }
    eprintln!(
        "-- {} tokens (max_length {})",
        enc.len(),
        tokenizer.max_length()
    );
    Ok(())
}
