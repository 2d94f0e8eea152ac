//! Replays the committed seeds and regressions through the same checks the
//! fuzz targets run, with plain `cargo test` (stable Rust, no cargo-fuzz, no
//! sanitizer):
//!
//!     cargo test --manifest-path fuzz/Cargo.toml
//!
//! A failure names the input file; the fuzz target with the same name
//! reproduces it under libFuzzer (`cargo fuzz run TARGET FILE`).

use std::path::{Path, PathBuf};

fn inputs(target: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for kind in ["seeds", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(kind).join(target)) else {
            continue;
        };
        files.extend(entries.map(|e| e.expect("a directory entry").path()));
    }
    files.retain(|p| p.is_file() && p.file_name().is_some_and(|n| n != "README.md"));
    files.sort();
    files
}

/// Run `check` on every input of `target`, and report every input that fails.
fn replay(target: &str, check: fn(&[u8])) {
    let files = inputs(target);
    assert!(!files.is_empty(), "no seeds for {target}");
    let failed: Vec<String> = files
        .iter()
        .filter_map(|path| {
            let bytes = std::fs::read(path).expect("read an input");
            std::panic::catch_unwind(|| check(&bytes))
                .err()
                .map(|_| path.display().to_string())
        })
        .collect();
    assert!(
        failed.is_empty(),
        "{target}: {} of {} inputs fail:\n{}",
        failed.len(),
        files.len(),
        failed.join("\n")
    );
    println!("{target}: {} inputs replayed", files.len());
}

#[test]
fn jsonl_pairs() {
    replay("jsonl_pairs", rewardkit_fuzz::jsonl_pairs);
}

#[test]
fn jsonl_ratings() {
    replay("jsonl_ratings", rewardkit_fuzz::jsonl_ratings);
}

#[test]
fn convert() {
    replay("convert", rewardkit_fuzz::convert);
}

#[test]
fn manifest() {
    replay("manifest", rewardkit_fuzz::manifest);
}

#[test]
fn onnx_model() {
    replay("onnx_model", rewardkit_fuzz::onnx_model);
}

#[test]
fn encode_pair() {
    replay("encode_pair", rewardkit_fuzz::encode_pair);
}

#[test]
fn truncation_split() {
    replay("truncation_split", rewardkit_fuzz::truncation_split_range);
}

#[test]
fn chat_template() {
    replay("chat_template", rewardkit_fuzz::chat_template);
}

#[test]
fn decoder_config() {
    replay("decoder_config", rewardkit_fuzz::decoder_config);
}
