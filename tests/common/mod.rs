//! Shared fixtures for the integration tests: a tiny random BERT backbone and
//! bundles made from it, so no test needs a downloaded model.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use rewardkit::bundle::{init_from_backbone, InitOptions, OutputPreset};
use rewardkit::testing::{write_tiny_bert, TinyBert};

pub mod gradcheck;

/// Write `model` into `dir` as `<name>.onnx` and open it on the CPU with
/// `threads` intra-op threads.
pub fn open_graph(
    dir: &Path,
    name: &str,
    model: &rewardkit::onnx::ModelProto,
    threads: usize,
) -> rewardkit::runtime::ModelRunner {
    let path = dir.join(format!("{name}.onnx"));
    rewardkit::onnx::io::write_model(&path, model, usize::MAX).expect("write");
    rewardkit::runtime::ModelRunner::open(
        &path,
        rewardkit::runtime::RunnerOptions {
            threads,
            ..Default::default()
        },
    )
    .expect("open")
}

pub fn tiny_backbone(dir: &Path) -> PathBuf {
    let p = dir.join("tiny");
    write_tiny_bert(&p, TinyBert::default()).expect("tiny backbone");
    p
}

pub fn tiny_bundle(dir: &Path, name: &str, opts: &InitOptions) -> PathBuf {
    let backbone = dir.join(format!("{name}-backbone"));
    write_tiny_bert(&backbone, TinyBert::default()).expect("tiny backbone");
    let out = dir.join(name);
    init_from_backbone(&backbone, &out, opts).expect("init bundle");
    out
}

pub fn reward_bundle(dir: &Path) -> PathBuf {
    tiny_bundle(dir, "bundle", &InitOptions::default().with_seed(3))
}

pub fn helpsteer_bundle(dir: &Path) -> PathBuf {
    tiny_bundle(
        dir,
        "bundle5",
        &InitOptions::default()
            .with_outputs(OutputPreset::HelpSteer2)
            .with_seed(4),
    )
}

/// (prompt, response) pairs of quite different lengths.
pub fn pairs() -> Vec<(String, String)> {
    vec![
        ("what is the sun?".into(), "the sun is a star.".into()),
        (
            "User: tell me about cats\n\nAssistant: cats are good.\n\nUser: and dogs?".into(),
            "dogs are good too, and they like to help people find water.".into(),
        ),
        ("write one list".into(), "one two three".into()),
        ("why is water wet?".into(), "".into()),
        ("".into(), "no".into()),
        ("explain fire".into(), "fire is hot. ".repeat(20)),
        (
            "how can i help?".into(),
            "please say thanks, it is helpful and honest and correct!".into(),
        ),
    ]
}

/// Op types of `model.onnx` in a bundle that belong to ONNX Runtime's
/// `com.microsoft` contrib domain, sorted and deduplicated.
pub fn contrib_ops(bundle: &Path) -> Vec<String> {
    let model = rewardkit::onnx::io::read_model(&bundle.join("model.onnx")).expect("read model");
    let mut ops: Vec<String> = model
        .graph
        .iter()
        .flat_map(|g| g.node.iter())
        .filter(|n| n.domain() == "com.microsoft")
        .map(|n| n.op_type().to_string())
        .collect();
    ops.sort();
    ops.dedup();
    ops
}

/// Whole words the word-level test tokenizers know, after their specials.
pub const TEST_WORDS: &str =
    "explain water fire the sun moon a cat dog river city tree bird please \
    question sure is good here helpful and correct answer about no bad i will not help wrong \
    . , ? ! what why how do you it of to in be are this that yes thanks 0 1 2 3 4 5 6 7 8 9 \
    hello there user assistant system";

/// A word-level `tokenizer.json`: `specials` at ids 0, 1, … (all special
/// added tokens), then [`TEST_WORDS`]; lower-casing, with the given
/// pre-tokenizer and post-processor. Every id stays below `vocab_limit` (the
/// fixture model's vocabulary size).
pub fn word_tokenizer_json(
    specials: &[&str],
    unk: &str,
    pre_tokenizer: serde_json::Value,
    post_processor: serde_json::Value,
    vocab_limit: usize,
) -> String {
    let mut vocab = serde_json::Map::new();
    for (i, t) in specials.iter().enumerate() {
        vocab.insert(t.to_string(), i.into());
    }
    for w in TEST_WORDS.split_whitespace() {
        let n = vocab.len();
        vocab.entry(w.to_string()).or_insert(n.into());
    }
    assert!(vocab.len() <= vocab_limit, "{} tokens", vocab.len());
    let added: Vec<serde_json::Value> = specials
        .iter()
        .enumerate()
        .map(|(i, t)| {
            serde_json::json!({"id": i, "content": t, "single_word": false, "lstrip": false,
                "rstrip": false, "normalized": false, "special": true})
        })
        .collect();
    serde_json::json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": {"type": "Lowercase"},
        "pre_tokenizer": pre_tokenizer,
        "post_processor": post_processor,
        "decoder": null,
        "model": {"type": "WordLevel", "vocab": vocab, "unk_token": unk}
    })
    .to_string()
}
