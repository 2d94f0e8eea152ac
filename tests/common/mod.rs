//! Shared fixtures for the integration tests: a tiny random BERT backbone and
//! bundles made from it, so no test needs a downloaded model.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use rewardkit::bundle::{init_from_backbone, InitOptions, OutputPreset};
use rewardkit::testing::{write_tiny_bert, TinyBert};

pub mod gradcheck;

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
