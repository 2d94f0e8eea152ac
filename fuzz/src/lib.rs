//! The checks behind rewardkit's fuzz targets.
//!
//! Each public function takes the raw fuzzer input, drives one public
//! rewardkit API with it and panics only when an invariant is broken: an
//! `Err` from rewardkit is a fine answer to bad input, a panic inside
//! rewardkit or a wrong `Ok` is a bug. The fuzz targets (`fuzz_targets/`)
//! are one-line wrappers around these, and `tests/replay.rs` runs the same
//! checks over the committed seeds and regressions with plain `cargo test`.
//!
//! The data readers and the bundle checks only take paths, so those inputs
//! go through a per-thread scratch directory.

use std::path::Path;
use std::sync::OnceLock;

use rewardkit::bundle::integrity::check_model;
use rewardkit::onnx::io::{
    check_external_location, decode_model, load_external_data, tensor_to_f32,
};
use rewardkit::onnx::proto::{data_type, DATA_LOCATION_EXTERNAL};
use rewardkit::onnx::TensorProto;
use rewardkit::model::DecoderConfig;
use rewardkit::text::{
    messages_from_prompt, truncation_split, ChatTemplate, ChatTemplateSpec, PairTokenizer,
};
use rewardkit::train::convert::{convert as convert_file, SourceFormat};
use rewardkit::train::{read_pairs, read_ratings, BadLines, DataSummary, Pair, Rating};
use rewardkit::{Bundle, Manifest};

/// The HelpSteer2 attributes, the outputs of a five-output bundle.
const HS2: [&str; 5] = [
    "helpfulness",
    "correctness",
    "coherence",
    "complexity",
    "verbosity",
];

thread_local! {
    static SCRATCH: tempfile::TempDir = tempfile::Builder::new()
        .prefix("rewardkit-fuzz-")
        .tempdir()
        .expect("a scratch directory under $TMPDIR");
}

/// Run `f` with this thread's scratch directory.
fn with_scratch<R>(f: impl FnOnce(&Path) -> R) -> R {
    SCRATCH.with(|dir| f(dir.path()))
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

fn remove(path: &Path) {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => panic!("removing {}: {e}", path.display()),
    }
}

/// Non-blank lines, as the readers count them (`BufRead::lines`, then `trim`).
fn non_blank_lines(text: &str) -> usize {
    text.lines().filter(|l| !l.trim().is_empty()).count()
}

/// What every successful read must say about the file it read.
fn check_summary(summary: &DataSummary, rows: usize, bytes: &[u8]) {
    let text = std::str::from_utf8(bytes).expect("a reader accepted a file that is not UTF-8");
    assert_eq!(summary.rows, rows, "summary.rows");
    assert!(rows > 0, "a reader returned Ok with no rows");
    assert_eq!(summary.lines, text.lines().count(), "summary.lines");
    assert_eq!(
        summary.rows + summary.skipped.len(),
        non_blank_lines(text),
        "every non-blank line is a row or a skipped line"
    );
    let numbers: Vec<usize> = summary.skipped.iter().map(|s| s.0).collect();
    assert!(
        numbers.windows(2).all(|w| w[0] < w[1])
            && numbers.iter().all(|&n| n >= 1 && n <= summary.lines),
        "skipped line numbers {numbers:?} out of order or outside 1..={}",
        summary.lines
    );
}

/// Strict and skipping reads of the same file must agree: strict succeeds
/// exactly when skipping succeeds and skips nothing, with the same rows.
fn check_modes<T: PartialEq + std::fmt::Debug>(
    strict: &rewardkit::Result<(Vec<T>, DataSummary)>,
    skip: &rewardkit::Result<(Vec<T>, DataSummary)>,
    file: &str,
) {
    match (strict, skip) {
        (Ok((a, sa)), Ok((b, sb))) => {
            assert_eq!(a, b, "strict and skipping reads differ");
            assert!(sa.skipped.is_empty() && sb.skipped.is_empty());
        }
        (Ok(_), Err(e)) => panic!("the strict read succeeded but the skipping read failed: {e}"),
        (Err(e), Ok((_, s))) => assert!(
            !s.skipped.is_empty(),
            "the skipping read skipped nothing but the strict read failed: {e}"
        ),
        (Err(_), Err(_)) => {}
    }
    for r in [strict, skip] {
        if let Err(e) = r {
            let msg = e.to_string();
            assert!(msg.contains(file), "the error does not name {file}: {msg}");
        }
    }
}

fn check_pair(p: &Pair) {
    assert_ne!(p.chosen, p.rejected, "a pair whose texts are equal: {p:?}");
    if let Some(s) = p.strength {
        assert!(
            s.is_finite() && s >= 0.0,
            "strength must be finite and not negative: {p:?}"
        );
    }
}

/// `read_pairs` over the input as a JSONL file, in both bad-line modes.
pub fn jsonl_pairs(data: &[u8]) {
    with_scratch(|dir| {
        let path = dir.join("pairs.jsonl");
        write(&path, data);
        let strict = read_pairs(&path, BadLines::Error);
        let skip = read_pairs(&path, BadLines::Skip);
        check_modes(&strict, &skip, "pairs.jsonl");
        if let Ok((pairs, summary)) = &skip {
            check_summary(summary, pairs.len(), data);
            pairs.iter().for_each(check_pair);
            let ties = pairs.iter().filter(|p| p.strength == Some(0.0)).count();
            assert_eq!(summary.ties, ties, "summary.ties");
        }
    })
}

fn check_rating(r: &Rating, outputs: &[String]) {
    assert_eq!(r.values.len(), outputs.len(), "one value per output: {r:?}");
    assert!(
        r.values.iter().any(Option::is_some),
        "a rating with no values: {r:?}"
    );
    assert!(
        r.values.iter().flatten().all(|v| v.is_finite()),
        "rating values must be finite: {r:?}"
    );
}

/// `read_ratings` over the input as a JSONL file, for the five HelpSteer2
/// attributes and for a single `reward` output, in both bad-line modes.
pub fn jsonl_ratings(data: &[u8]) {
    with_scratch(|dir| {
        let path = dir.join("ratings.jsonl");
        write(&path, data);
        let five: Vec<String> = HS2.iter().map(|s| s.to_string()).collect();
        for outputs in [five, vec!["reward".to_string()]] {
            let strict = read_ratings(&path, &outputs, BadLines::Error);
            let skip = read_ratings(&path, &outputs, BadLines::Skip);
            check_modes(&strict, &skip, "ratings.jsonl");
            if let Ok((rows, summary)) = &skip {
                check_summary(summary, rows.len(), data);
                rows.iter().for_each(|r| check_rating(r, &outputs));
            }
        }
    })
}

const FORMATS: [SourceFormat; 4] = [
    SourceFormat::HelpSteer2,
    SourceFormat::HelpSteer2Pref,
    SourceFormat::Trl,
    SourceFormat::HhRlhf,
];

/// `convert` of the input from every source format, strict and skipping.
/// A failed conversion leaves no output; a successful one writes exactly the
/// rows it counts, and the project's own readers accept what it wrote.
pub fn convert(data: &[u8]) {
    with_scratch(|dir| {
        let input = dir.join("in.jsonl");
        let output = dir.join("out.jsonl");
        let tmp = dir.join("out.jsonl.tmp");
        write(&input, data);
        for format in FORMATS {
            let mut strict_ok = None;
            for skip_bad in [false, true] {
                remove(&output);
                let result = convert_file(format, &input, &output, skip_bad);
                assert!(!tmp.exists(), "{format:?}: convert left {}", tmp.display());
                let summary = match result {
                    Err(e) => {
                        assert!(
                            !output.exists(),
                            "{format:?}: a failed conversion left an output file ({e})"
                        );
                        assert!(
                            !(skip_bad && strict_ok.is_some()),
                            "{format:?}: strict conversion succeeded, skipping failed: {e}"
                        );
                        assert!(
                            e.to_string().contains("in.jsonl"),
                            "{format:?}: the error does not name in.jsonl: {e}"
                        );
                        continue;
                    }
                    Ok(s) => s,
                };
                let text =
                    std::str::from_utf8(data).expect("convert accepted a file that is not UTF-8");
                assert!(summary.written > 0, "{format:?}: Ok with no rows written");
                assert_eq!(summary.lines, text.lines().count(), "{format:?}: lines");
                assert_eq!(
                    summary.written + summary.skipped.len(),
                    non_blank_lines(text),
                    "{format:?}: every non-blank line is written or skipped"
                );
                if !skip_bad {
                    assert!(summary.skipped.is_empty(), "{format:?}: strict but skipped");
                    strict_ok = Some(summary.clone());
                } else if let Some(strict) = &strict_ok {
                    assert_eq!(strict, &summary, "{format:?}: strict and skipping differ");
                }
                let out = std::fs::read_to_string(&output).expect("convert's output is UTF-8");
                let rows: Vec<serde_json::Value> = out
                    .lines()
                    .map(|l| {
                        serde_json::from_str(l).expect("convert wrote a line that is not JSON")
                    })
                    .collect();
                assert_eq!(
                    rows.len(),
                    summary.written,
                    "{format:?}: rows in the output"
                );
                let ties = rows
                    .iter()
                    .filter(|r| r.get("strength").and_then(|s| s.as_f64()) == Some(0.0))
                    .count();
                assert_eq!(summary.ties, ties, "{format:?}: ties");
                check_converted(format, &output, summary.written);
            }
        }
    })
}

/// What `convert` wrote must read back with the project's own readers, strictly.
fn check_converted(format: SourceFormat, output: &Path, written: usize) {
    if format == SourceFormat::HelpSteer2 {
        let outputs: Vec<String> = HS2.iter().map(|s| s.to_string()).collect();
        let (rows, _) = read_ratings(output, &outputs, BadLines::Error)
            .unwrap_or_else(|e| panic!("{format:?}: converted ratings do not read back: {e}"));
        assert_eq!(rows.len(), written);
        for r in &rows {
            assert!(
                r.values
                    .iter()
                    .all(|v| v.is_some_and(|v| (0.0..=4.0).contains(&v))),
                "{format:?}: a converted rating is outside 0..4: {r:?}"
            );
        }
    } else {
        let (pairs, _) = read_pairs(output, BadLines::Error)
            .unwrap_or_else(|e| panic!("{format:?}: converted pairs do not read back: {e}"));
        assert_eq!(pairs.len(), written);
        for p in &pairs {
            check_pair(p);
            match format {
                SourceFormat::HelpSteer2Pref => assert!(
                    p.strength.is_some_and(|s| s <= 3.0),
                    "{format:?}: strength outside 0..3: {p:?}"
                ),
                _ => assert_eq!(p.strength, None, "{format:?}: a strength appeared: {p:?}"),
            }
        }
    }
}

/// A small file standing in for `model.onnx` and `tokenizer.json` when a
/// bundle is opened (only their presence is checked without digests).
const STAND_IN: &[u8] = b"stand-in";

/// `Manifest::parse` of the input; an accepted manifest validates and
/// round-trips through `to_json`. `Bundle::open` of a folder holding it
/// agrees with `Manifest::parse`.
pub fn manifest(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = Manifest::parse(text);
    if let Ok(m) = &parsed {
        m.validate()
            .unwrap_or_else(|e| panic!("parse accepted a manifest that does not validate: {e}"));
        let json = m.to_json();
        let again = Manifest::parse(&json)
            .unwrap_or_else(|e| panic!("to_json wrote a manifest parse rejects: {e}\n{json}"));
        assert_eq!(&again, m, "the manifest changed in a round trip");
        let i = m.reward_index();
        assert_eq!(m.outputs.get(i), Some(&m.reward_output), "reward_index");
    }
    with_scratch(|dir| {
        let bundle = dir.join("bundle");
        std::fs::create_dir_all(&bundle).expect("bundle dir");
        write(&bundle.join("rewardkit.json"), data);
        write(&bundle.join("model.onnx"), STAND_IN);
        write(&bundle.join("tokenizer.json"), STAND_IN);
        match (Bundle::open(&bundle), &parsed) {
            (Ok(b), Ok(m)) => assert_eq!(b.manifest(), m, "Bundle::open read another manifest"),
            (Ok(_), Err(e)) => panic!("Bundle::open accepted a manifest parse rejects: {e}"),
            (Err(e), Ok(m)) if m.files.is_none() => {
                panic!("Bundle::open rejected a manifest parse accepts (no file records): {e}")
            }
            (Err(_), _) => {}
        }
    })
}

/// Name of the external-data file present beside the fuzzed model.
const EXTERNAL_FILE: &str = "weights.bin";
const EXTERNAL_BYTES: usize = 4096;

fn check_tensor(t: &TensorProto) {
    if let Ok(values) = tensor_to_f32(t) {
        assert_eq!(
            t.data_type,
            Some(data_type::FLOAT),
            "tensor_to_f32 of a non-float"
        );
        assert_eq!(Some(values.len()), t.num_elements(), "tensor_to_f32 length");
    }
}

/// `decode_model` of the input, `tensor_to_f32` of every initializer; then
/// the input as `model.onnx` in a folder (beside a 4 KiB `weights.bin`)
/// through `check_model` and `load_external_data`, which must never name or
/// read a file outside that folder.
pub fn onnx_model(data: &[u8]) {
    let decoded = decode_model(data, "fuzz");
    if let Ok(model) = &decoded {
        let graph = model
            .graph
            .as_ref()
            .expect("decode_model returned a model without a graph");
        graph.initializer.iter().for_each(check_tensor);
    }
    with_scratch(|dir| {
        let model_dir = dir.join("model");
        std::fs::create_dir_all(&model_dir).expect("model dir");
        let data_path = model_dir.join(EXTERNAL_FILE);
        if !data_path.exists() {
            let bytes: Vec<u8> = (0..EXTERNAL_BYTES).map(|i| (i % 251) as u8).collect();
            write(&data_path, &bytes);
        }
        write(&model_dir.join("model.onnx"), data);
        let canonical_dir = model_dir.canonicalize().expect("canonical model dir");
        if let Ok(names) = check_model(&model_dir, "model.onnx") {
            for name in &names {
                assert!(
                    check_external_location(name, "fuzz").is_ok(),
                    "check_model listed {name:?}, which leaves the folder"
                );
                let p = model_dir.join(name);
                let real = p.canonicalize().unwrap_or_else(|e| {
                    panic!("check_model listed {name:?}, which does not resolve: {e}")
                });
                assert!(
                    real.starts_with(&canonical_dir) && real.is_file(),
                    "check_model listed {name:?}, which is {} (not a file in the folder)",
                    real.display()
                );
            }
        }
        let Ok(mut model) = decoded else {
            return;
        };
        if load_external_data(&mut model, &model_dir, "fuzz").is_ok() {
            let graph = model.graph.as_ref().expect("graph");
            for t in &graph.initializer {
                assert_ne!(
                    t.data_location,
                    Some(DATA_LOCATION_EXTERNAL),
                    "load_external_data left tensor {:?} external",
                    t.name
                );
                check_tensor(t);
            }
        }
    })
}

/// The tiny WordPiece tokenizer of `rewardkit::testing`, loaded once.
fn tiny_tokenizer() -> &'static PairTokenizer {
    static TOKENIZER: OnceLock<PairTokenizer> = OnceLock::new();
    TOKENIZER.get_or_init(|| {
        let json = rewardkit::testing::tiny_tokenizer_json();
        PairTokenizer::from_bytes(json.as_bytes(), 512, "tiny tokenizer")
            .expect("the tiny test tokenizer loads")
    })
}

/// Special tokens the tiny tokenizer adds to a pair: `[CLS] a [SEP] b [SEP]`.
const PAIR_SPECIALS: usize = 3;

/// Input layout: two bytes of `max_length` (little-endian), then the prompt,
/// a 0xFF byte, and the response (both decoded lossily as UTF-8).
pub fn encode_pair(data: &[u8]) {
    let [lo, hi, rest @ ..] = data else {
        return;
    };
    let max_length = usize::from(u16::from_le_bytes([*lo, *hi]));
    let (prompt, response) = match rest.iter().position(|&b| b == 0xFF) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[][..]),
    };
    let prompt = String::from_utf8_lossy(prompt);
    let response = String::from_utf8_lossy(response);

    let base = tiny_tokenizer();
    let tok = match base.clone().with_max_length(max_length) {
        Ok(t) => t,
        Err(e) => {
            assert!(
                max_length <= PAIR_SPECIALS,
                "max_length {max_length} refused: {e}"
            );
            return;
        }
    };
    assert!(
        max_length > PAIR_SPECIALS,
        "max_length {max_length} accepted though it leaves no room for text"
    );
    let enc = tok
        .encode_pair(&prompt, &response)
        .unwrap_or_else(|e| panic!("encode_pair failed: {e}"));
    assert!(
        enc.len() <= max_length,
        "encoded {} tokens with max_length {max_length}",
        enc.len()
    );
    assert_eq!(
        enc.ids.len(),
        enc.type_ids.len(),
        "ids and type_ids differ in length"
    );

    // Rebuild the expected encoding from the two texts' own tokens and
    // truncation_split: the end of the prompt, the start of the response.
    let inner = tok.inner();
    let ids = |text: &str| -> Vec<i64> {
        inner
            .encode(text, false)
            .expect("plain encode")
            .get_ids()
            .iter()
            .map(|&i| i64::from(i))
            .collect()
    };
    let p = ids(&prompt);
    let r = ids(&response);
    let budget = max_length - PAIR_SPECIALS;
    let (kp, kr) = truncation_split(p.len(), r.len(), budget);
    check_split(p.len(), r.len(), budget, (kp, kr));
    let cls = i64::from(inner.token_to_id("[CLS]").expect("[CLS]"));
    let sep = i64::from(inner.token_to_id("[SEP]").expect("[SEP]"));
    let mut want = vec![cls];
    want.extend_from_slice(&p[p.len() - kp..]);
    want.push(sep);
    want.extend_from_slice(&r[..kr]);
    want.push(sep);
    assert_eq!(
        enc.ids, want,
        "ids of ({prompt:?}, {response:?}) at max_length {max_length}"
    );
    let want_types: Vec<i64> = std::iter::repeat_n(0, kp + 2)
        .chain(std::iter::repeat_n(1, kr + 1))
        .collect();
    assert_eq!(enc.type_ids, want_types, "type_ids");
}

/// The contract of `truncation_split(p, r, budget) = (kp, kr)`: everything
/// is kept when it fits; otherwise the budget is filled exactly, the prompt
/// keeps at least min(p, budget / 4) and the response takes the rest it can.
fn check_split(p: usize, r: usize, budget: usize, (kp, kr): (usize, usize)) {
    let case = format!("truncation_split({p}, {r}, {budget}) = ({kp}, {kr})");
    assert!(kp <= p && kr <= r, "{case}: keeps more than there is");
    match p.checked_add(r) {
        Some(total) if total <= budget => assert_eq!((kp, kr), (p, r), "{case}: it all fits"),
        _ => {
            assert_eq!(
                kp.checked_add(kr),
                Some(budget),
                "{case}: the budget is not filled"
            );
            let reserve = p.min(budget / 4);
            assert!(kp >= reserve, "{case}: the prompt lost its reserve");
            assert_eq!(
                kr,
                r.min(budget - reserve),
                "{case}: the response lost priority"
            );
        }
    }
}

/// `truncation_split` over the whole `usize` range: three little-endian u64s
/// (prompt length, response length, budget), zero-padded.
pub fn truncation_split_range(data: &[u8]) {
    let mut words = [0u64; 3];
    for (i, chunk) in data.chunks(8).take(3).enumerate() {
        let mut b = [0u8; 8];
        b[..chunk.len()].copy_from_slice(chunk);
        words[i] = u64::from_le_bytes(b);
    }
    let [p, r, budget] = words.map(|w| usize::try_from(w).unwrap_or(usize::MAX));
    check_split(p, r, budget, truncation_split(p, r, budget));
}

/// A chat template and a conversation from one input: the template source
/// up to the first NUL byte, then the prompt and the response separated by
/// the next NUL. Compiling may fail and rendering may fail (a template may
/// raise, or run out of fuel): both are errors, never panics or hangs. A
/// rendering that succeeds splits at a character boundary inside the text.
pub fn chat_template(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut parts = text.splitn(3, '\0');
    let source = parts.next().unwrap_or_default();
    let prompt = parts.next().unwrap_or("hello");
    let response = parts.next().unwrap_or("hi there");
    let spec = ChatTemplateSpec::new(source)
        .with_special_token("bos_token", "<s>")
        .and_then(|s| s.with_special_token("eos_token", "</s>"))
        .expect("known special tokens");
    // A small budget keeps each input fast; runaway loops must stop on it.
    let Ok(template) = ChatTemplate::new(spec).and_then(|t| t.with_fuel(200_000)) else {
        return;
    };
    assert!(template.fuel_enforced(), "fuel is not enforced");
    let messages = messages_from_prompt(prompt);
    assert!(!messages.is_empty(), "no message from prompt {prompt:?}");
    if let Ok(r) = template.render_pair(prompt, response) {
        assert!(
            r.response_start <= r.text.len() && r.text.is_char_boundary(r.response_start),
            "response_start {} in a text of {} bytes",
            r.response_start,
            r.text.len()
        );
    }
}

/// `DecoderConfig::from_json` of the input (as JSON): errors for bad
/// configs, never panics; an accepted config has consistent sizes and
/// finite rotary tables.
pub fn decoder_config(data: &[u8]) {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let Ok(cfg) = DecoderConfig::from_json(&value, Path::new("config.json")) else {
        return;
    };
    assert!(cfg.hidden_size > 0 && cfg.num_attention_heads > 0 && cfg.head_dim > 0);
    assert_eq!(
        cfg.num_attention_heads % cfg.num_key_value_heads,
        0,
        "heads not divisible by kv heads: {cfg:?}"
    );
    assert_eq!(cfg.sliding_layers.len(), cfg.num_hidden_layers);
    if cfg.head_dim <= 4096 {
        let n = cfg.max_position_embeddings.min(8);
        let (cos, sin) = cfg.rope_tables(n);
        assert_eq!(cos.len(), n * cfg.head_dim);
        assert_eq!(sin.len(), n * cfg.head_dim);
        assert!(
            cos.iter().chain(&sin).all(|v| v.is_finite()),
            "non-finite rotary table for {cfg:?}"
        );
    }
}
