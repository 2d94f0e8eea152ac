//! Scoring benchmarks: rewardkit's own overhead next to a bare ONNX Runtime
//! session running the same model on the same tensors.
//!
//! Setup (untimed): a MiniLM reward bundle is initialised into a temp dir, a
//! `Scorer` is opened on it with 2 intra-op threads and max_length 256, and a
//! raw `ort` session is opened on the bundle's `model.onnx` with the settings
//! the library uses (optimisation level 3, 2 intra-op threads).
//!
//! Groups:
//! - `single_pair`: `rewardkit/score` (tokenize + pad + run + extract) vs
//!   `raw_ort/run` (`session.run` on pre-built tensors of the same pair).
//! - `batch32`: `rewardkit/score_batch` on 32 pairs vs `raw_ort/run` on the
//!   same 32 pairs as the library would pad them, plus
//!   `rewardkit/tokenize_only` (encoding the 32 pairs).
//!
//! Run with `cargo bench --bench scoring` (or `make bench`).

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use ndarray::Array2;
use ort::session::{builder::GraphOptimizationLevel, Session};
use ort::value::Tensor;
use rewardkit::model::bert::{ATTENTION_MASK, INPUT_IDS, SCORES, TOKEN_TYPE_IDS};
use rewardkit::text::{pad_batch, EncodedPair};
use rewardkit::{InitOptions, Scorer, ScorerOptions};

const THREADS: usize = 2;
const MAX_LENGTH: usize = 256;
const BATCH: usize = 32;
const SEED: u64 = 0x5eed_2024_b3c4_0001;

// ---------------------------------------------------------------------------
// Deterministic English-like text.

/// SplitMix64: tiny, seeded, good enough for picking words.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as usize
    }

    /// A random entry of a `|`-separated list.
    fn pick<'a>(&mut self, list: &'a str) -> &'a str {
        let n = list.split('|').count();
        let i = self.range(0, n - 1);
        list.split('|').nth(i).unwrap_or(list)
    }
}

// Word lists, `|`-separated (entries may hold spaces).
const OPENERS: &str = "Could you|Please|I would like you to|Can you|Help me|I need to";
const VERBS: &str = "\
    explain|describe|compare|summarize|outline|review|improve|check|write|plan|\
    analyze|evaluate|design|test|measure|build";
const NOUNS: &str = "\
    system|model|answer|question|problem|method|result|report|team|project|budget|\
    schedule|garden|recipe|engine|network|library|letter|story|experiment|database|\
    market|city|river|student|teacher|customer|product|policy|language|function|\
    error|memory|price|weather|history|process|design|choice|argument";
const ADJECTIVES: &str = "\
    simple|clear|large|small|careful|quick|slow|important|useful|common|difficult|\
    better|new|old|public|private|local|general|specific|reliable|cheap|expensive|\
    safe|modern|practical";
const ADVERBS: &str =
    "usually|often|rarely|clearly|quickly|carefully|probably|always|sometimes|mostly";
const FUNCTION_WORDS: &str = "the|a|this|that|every|each|some|our|their|your";
const PREPOSITIONS: &str = "in|on|for|with|about|from|after|before|under|between|during|without";
const CONNECTIVES: &str = "and|but|because|so|while|although|when|if";
const SUBJECTS: &str = "It|This|The answer|A good plan|Most people|We|You";
const AUX: &str = "can|should|will|may|must|might|does not";

fn noun_phrase(rng: &mut Rng, out: &mut Vec<String>) {
    out.push(rng.pick(FUNCTION_WORDS).into());
    if rng.range(0, 2) > 0 {
        out.push(rng.pick(ADJECTIVES).into());
    }
    out.push(rng.pick(NOUNS).into());
}

/// One clause of roughly 6-12 words.
fn clause(rng: &mut Rng, out: &mut Vec<String>) {
    noun_phrase(rng, out);
    if rng.range(0, 3) == 0 {
        out.push(rng.pick(ADVERBS).into());
    }
    out.push(rng.pick(AUX).into());
    out.push(rng.pick(VERBS).into());
    noun_phrase(rng, out);
    if rng.range(0, 1) == 0 {
        out.push(rng.pick(PREPOSITIONS).into());
        noun_phrase(rng, out);
    }
}

/// A sentence: capitalised, commas between clauses, ending punctuation.
fn sentence(rng: &mut Rng, question: bool) -> (String, usize) {
    let mut words: Vec<String> = Vec::new();
    if question {
        words.extend(rng.pick(OPENERS).split(' ').map(String::from));
        words.push(rng.pick(VERBS).into());
        noun_phrase(rng, &mut words);
        words.push(rng.pick(PREPOSITIONS).into());
        noun_phrase(rng, &mut words);
    } else {
        words.push(rng.pick(SUBJECTS).into());
        words.push(rng.pick(AUX).into());
        words.push(rng.pick(VERBS).into());
        noun_phrase(rng, &mut words);
    }
    let n_words = |w: &[String]| w.iter().map(|s| s.split(' ').count()).sum::<usize>();
    for _ in 0..rng.range(0, 2) {
        let last = words.len() - 1;
        words[last].push(',');
        words.push(rng.pick(CONNECTIVES).into());
        clause(rng, &mut words);
    }
    let first = &mut words[0];
    if let Some(c) = first.get(..1) {
        *first = c.to_uppercase() + &first[1..];
    }
    let end = if question {
        "?"
    } else {
        [".", ".", ".", "!"][rng.range(0, 3)]
    };
    let n = n_words(&words);
    (words.join(" ") + end, n)
}

/// Text of `lo..=hi` words (approximately: whole sentences, trimmed to `hi`).
fn passage(rng: &mut Rng, lo: usize, hi: usize, prompt: bool) -> String {
    let target = rng.range(lo, hi);
    let mut sentences = Vec::new();
    let mut words = 0;
    while words < target {
        // Prompts are mostly context statements ending with a question.
        let question = prompt && (words + 12 >= target || rng.range(0, 5) == 0);
        let (s, n) = sentence(rng, question);
        sentences.push(s);
        words += n;
    }
    let mut text = sentences.join(" ");
    // Trim overshoot so the word count stays within `hi`.
    if words > hi {
        let mut kept: Vec<&str> = text.split(' ').take(hi).collect();
        let last = kept.len() - 1;
        let fixed = format!("{}.", kept[last].trim_end_matches([',', '.', '?', '!']));
        kept[last] = &fixed;
        text = kept.join(" ");
    }
    text
}

fn generate_pairs(n: usize, seed: u64) -> Vec<(String, String)> {
    let mut rng = Rng(seed);
    (0..n)
        .map(|_| {
            (
                passage(&mut rng, 40, 80, true),
                passage(&mut rng, 40, 120, false),
            )
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Setup.

struct Fixture {
    _dir: tempfile::TempDir,
    scorer: Scorer,
    session: Session,
    uses_token_types: bool,
    pairs: Vec<(String, String)>,
    /// Index into `pairs` of the pair used for single-pair latency.
    single: usize,
}

fn backbone() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(".rewardkit")
        .join("models")
        .join("all-MiniLM-L6-v2");
    if !p.join("model.safetensors").exists() {
        panic!(
            "MiniLM backbone not found at {}: run `make setup` first",
            p.display()
        );
    }
    p
}

fn setup() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("minilm-reward");
    let bundle = rewardkit::bundle::init_from_backbone(&backbone(), &out, &InitOptions::default())
        .expect("init bundle from backbone");
    let scorer = Scorer::open(
        &out,
        ScorerOptions::default()
            .with_threads(THREADS)
            .with_max_length(MAX_LENGTH),
    )
    .expect("open scorer");
    // Same settings as the library's make_session for Device::Cpu, threads = 2.
    let env = rewardkit::runtime::environment().expect("ONNX Runtime: run `make setup` first");
    let session = Session::builder(env)
        .expect("session builder")
        .with_optimization_level(GraphOptimizationLevel::Level3)
        .expect("optimization level")
        .with_intra_threads(THREADS)
        .expect("intra threads")
        .commit_from_file(bundle.model_path())
        .expect("load model.onnx");
    let uses_token_types = session.inputs().iter().any(|i| i.name() == TOKEN_TYPE_IDS);

    let pairs = generate_pairs(BATCH, SEED);
    let lens: Vec<usize> = encode_all(&scorer, &pairs)
        .iter()
        .map(|e| e.len())
        .collect();
    let mut sorted = lens.clone();
    sorted.sort_unstable();
    let median = sorted[sorted.len() / 2];
    let single = lens
        .iter()
        .position(|&l| l == median)
        .expect("median is one of the lengths");
    eprintln!(
        "setup: {} pairs, encoded lengths min {} / median {} / max {} / mean {:.0} tokens \
         (max_length {MAX_LENGTH}); single_pair uses pair {single} ({median} tokens); \
         {THREADS} intra-op threads",
        pairs.len(),
        sorted[0],
        median,
        sorted[sorted.len() - 1],
        lens.iter().sum::<usize>() as f64 / lens.len() as f64,
    );
    eprintln!("setup: example prompt: {:?}", pairs[single].0);
    eprintln!("setup: example response: {:?}", pairs[single].1);
    Fixture {
        _dir: dir,
        scorer,
        session,
        uses_token_types,
        pairs,
        single,
    }
}

fn encode_all(scorer: &Scorer, pairs: &[(String, String)]) -> Vec<EncodedPair> {
    pairs
        .iter()
        .map(|(p, r)| scorer.tokenizer().encode_pair(p, r).expect("encode"))
        .collect()
}

/// The tensors the library would feed for these pairs: sorted by length (as
/// `score_batch_outputs` does; one chunk since there are at most max_batch
/// = 32 of them), padded with `pad_batch`.
fn build_inputs(
    scorer: &Scorer,
    encoded: &[EncodedPair],
    uses_token_types: bool,
) -> Vec<(&'static str, Tensor<i64>)> {
    let mut refs: Vec<&EncodedPair> = encoded.iter().collect();
    refs.sort_by_key(|e| e.len());
    let batch = pad_batch(&refs, scorer.tokenizer().pad_id());
    let tensor = |a: Array2<i64>| Tensor::from_array(a).expect("tensor");
    let mut inputs = vec![
        (INPUT_IDS, tensor(batch.input_ids)),
        (ATTENTION_MASK, tensor(batch.attention_mask)),
    ];
    if uses_token_types {
        inputs.push((TOKEN_TYPE_IDS, tensor(batch.token_type_ids)));
    }
    inputs
}

/// One `session.run` on pre-built tensors (borrowed, not copied), reading the
/// scores in place.
fn raw_run(session: &mut Session, inputs: &[(&'static str, Tensor<i64>)]) -> f32 {
    let feed: Vec<(&str, ort::session::SessionInputValue<'_>)> =
        inputs.iter().map(|(n, t)| (*n, t.into())).collect();
    let out = session.run(feed).expect("run");
    let (_, scores) = out[SCORES].try_extract_tensor::<f32>().expect("scores");
    scores[0]
}

// ---------------------------------------------------------------------------
// Benches.

fn benches(c: &mut Criterion) {
    let mut fx = setup();
    let (prompts, responses): (Vec<&str>, Vec<&str>) = fx
        .pairs
        .iter()
        .map(|(p, r)| (p.as_str(), r.as_str()))
        .unzip();
    let encoded = encode_all(&fx.scorer, &fx.pairs);

    // Sanity: the raw session and the scorer agree on the single pair.
    let single_inputs = build_inputs(
        &fx.scorer,
        std::slice::from_ref(&encoded[fx.single]),
        fx.uses_token_types,
    );
    let (sp, sr) = (prompts[fx.single], responses[fx.single]);
    let lib = fx.scorer.score(sp, sr).expect("score");
    let raw = raw_run(&mut fx.session, &single_inputs);
    assert!(
        (lib - raw).abs() < 1e-4,
        "scorer and raw session disagree: {lib} vs {raw}"
    );

    {
        let mut g = c.benchmark_group("single_pair");
        // One pair is tens of ms on 2 cores; flat sampling keeps 20 samples
        // within the 10 s budget even on a busy machine.
        g.sample_size(20)
            .sampling_mode(SamplingMode::Flat)
            .warm_up_time(Duration::from_secs(2))
            .measurement_time(Duration::from_secs(10))
            .throughput(Throughput::Elements(1));
        g.bench_function("rewardkit/score", |b| {
            b.iter(|| {
                fx.scorer
                    .score(black_box(sp), black_box(sr))
                    .expect("score")
            })
        });
        g.bench_function("raw_ort/run", |b| {
            b.iter(|| raw_run(&mut fx.session, black_box(&single_inputs)))
        });
        g.finish();
    }

    let batch_inputs = build_inputs(&fx.scorer, &encoded, fx.uses_token_types);
    {
        let mut g = c.benchmark_group("batch32");
        // One batch of 32 is ~1.3-2.5 s on 2 cores, so 20 samples would take
        // ~1 min per bench. Use criterion's minimum of 10 samples, flat
        // sampling (one or two iterations each), and a target time that fits.
        g.sample_size(10)
            .sampling_mode(SamplingMode::Flat)
            .warm_up_time(Duration::from_secs(3))
            .measurement_time(Duration::from_secs(25))
            .throughput(Throughput::Elements(BATCH as u64));
        g.bench_function("rewardkit/score_batch", |b| {
            b.iter(|| {
                fx.scorer
                    .score_batch(black_box(&prompts), black_box(&responses))
                    .expect("score_batch")
            })
        });
        g.bench_function("raw_ort/run", |b| {
            b.iter(|| raw_run(&mut fx.session, black_box(&batch_inputs)))
        });
        // Tokenization alone is milliseconds: back to the default sampling.
        g.sample_size(30)
            .sampling_mode(SamplingMode::Auto)
            .warm_up_time(Duration::from_secs(2))
            .measurement_time(Duration::from_secs(8));
        g.bench_function("rewardkit/tokenize_only", |b| {
            b.iter(|| encode_all(&fx.scorer, black_box(&fx.pairs)))
        });
        g.finish();
    }
}

criterion_group!(scoring, benches);
criterion_main!(scoring);
