//! Broken bundles and backbones get clear errors naming what is wrong.

mod common;

use std::path::{Path, PathBuf};

use rewardkit::bundle::{init_from_backbone, InitOptions};
use rewardkit::{ErrorCode, Scorer, ScorerOptions};

fn copy_bundle(src: &Path, dst: &Path) -> PathBuf {
    std::fs::create_dir_all(dst).expect("mkdir");
    for entry in std::fs::read_dir(src).expect("read_dir") {
        let entry = entry.expect("entry");
        std::fs::copy(entry.path(), dst.join(entry.file_name())).expect("copy");
    }
    dst.to_path_buf()
}

fn open_err(dir: &Path) -> rewardkit::Error {
    Scorer::open(dir, ScorerOptions::default()).expect_err("opening a broken bundle must fail")
}

fn edit_manifest(dir: &Path, f: impl FnOnce(&mut serde_json::Value)) {
    let p = dir.join("rewardkit.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&p).expect("read")).expect("json");
    f(&mut v);
    std::fs::write(&p, serde_json::to_string(&v).expect("ser")).expect("write");
}

#[test]
fn broken_bundles() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = common::reward_bundle(dir.path());
    let case = |name: &str| copy_bundle(&good, &dir.path().join(name));

    let b = case("no-model");
    std::fs::remove_file(b.join("model.onnx")).expect("rm");
    let e = open_err(&b);
    assert_eq!(e.code(), ErrorCode::InvalidBundle);
    assert!(e.to_string().contains("model.onnx"), "{e}");

    let b = case("truncated-model");
    let bytes = std::fs::read(b.join("model.onnx")).expect("read");
    std::fs::write(b.join("model.onnx"), &bytes[..bytes.len() / 2]).expect("write");
    let e = open_err(&b);
    assert_eq!(e.code(), ErrorCode::InvalidModel, "{e}");
    assert!(e.to_string().contains("model.onnx"), "{e}");

    let b = case("garbage-model");
    std::fs::write(b.join("model.onnx"), b"this is not protobuf at all").expect("write");
    assert_eq!(open_err(&b).code(), ErrorCode::InvalidModel);

    let b = case("bad-json");
    std::fs::write(
        b.join("rewardkit.json"),
        "{\"format\": \"rewardkit-bundle\", ",
    )
    .expect("write");
    let e = open_err(&b);
    assert_eq!(e.code(), ErrorCode::InvalidBundle);
    assert!(e.to_string().contains("rewardkit.json"), "{e}");

    let b = case("output-mismatch");
    edit_manifest(&b, |v| {
        v["outputs"] = serde_json::json!(["reward", "extra"]);
    });
    let e = open_err(&b);
    assert_eq!(e.code(), ErrorCode::InvalidBundle);
    assert!(
        e.to_string().contains("1 scores") && e.to_string().contains("2 outputs"),
        "{e}"
    );

    let b = case("newer-version");
    edit_manifest(&b, |v| v["format_version"] = serde_json::json!(99));
    let e = open_err(&b);
    assert_eq!(e.code(), ErrorCode::UnsupportedVersion);
    assert!(e.to_string().contains("99"), "{e}");

    let b = case("no-tokenizer");
    std::fs::remove_file(b.join("tokenizer.json")).expect("rm");
    let e = open_err(&b);
    assert_eq!(e.code(), ErrorCode::InvalidBundle);
    assert!(e.to_string().contains("tokenizer.json"), "{e}");

    let b = case("bad-tokenizer");
    std::fs::write(b.join("tokenizer.json"), "{\"model\": 3}").expect("write");
    let e = open_err(&b);
    assert_eq!(e.code(), ErrorCode::InvalidBundle);
    assert!(e.to_string().contains("tokenizer.json"), "{e}");

    let e = open_err(&dir.path().join("does-not-exist"));
    assert_eq!(e.code(), ErrorCode::InvalidBundle);

    // The good bundle still opens: nothing above touched it.
    Scorer::open(&good, ScorerOptions::default()).expect("good bundle");
}

#[test]
fn broken_backbones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let backbone = common::tiny_backbone(dir.path());
    let cfg_path = backbone.join("config.json");
    let original = std::fs::read_to_string(&cfg_path).expect("read");

    let mut cfg: serde_json::Value = serde_json::from_str(&original).expect("json");
    cfg["model_type"] = serde_json::json!("gpt2");
    std::fs::write(&cfg_path, cfg.to_string()).expect("write");
    let e =
        init_from_backbone(&backbone, &dir.path().join("x"), &InitOptions::default()).unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidBackbone);
    assert!(e.to_string().contains("gpt2"), "{e}");

    let mut cfg: serde_json::Value = serde_json::from_str(&original).expect("json");
    cfg["hidden_size"] = serde_json::json!(36);
    std::fs::write(&cfg_path, cfg.to_string()).expect("write");
    let e =
        init_from_backbone(&backbone, &dir.path().join("x"), &InitOptions::default()).unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidBackbone);
    assert!(
        e.to_string().contains("embeddings.word_embeddings.weight") && e.to_string().contains("36"),
        "{e}"
    );

    std::fs::write(&cfg_path, &original).expect("write");
    std::fs::write(
        backbone.join("model.safetensors"),
        b"\x08\x00\x00\x00\x00\x00\x00\x00{}",
    )
    .expect("write");
    let e =
        init_from_backbone(&backbone, &dir.path().join("x"), &InitOptions::default()).unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidBackbone, "{e}");
    assert!(
        !dir.path().join("x").exists(),
        "a failed init must not leave a bundle behind"
    );
}

#[test]
fn init_refuses_to_clobber_unless_forced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let backbone = common::tiny_backbone(dir.path());
    let out = dir.path().join("b");
    init_from_backbone(&backbone, &out, &InitOptions::default()).expect("first");
    let e = init_from_backbone(&backbone, &out, &InitOptions::default()).unwrap_err();
    assert!(e.to_string().contains("--force"), "{e}");
    init_from_backbone(
        &backbone,
        &out,
        &InitOptions::default().with_overwrite(true).with_seed(5),
    )
    .expect("forced");

    let other = dir.path().join("not-a-bundle");
    std::fs::create_dir(&other).expect("mkdir");
    std::fs::write(other.join("notes.txt"), "keep me").expect("write");
    let e = init_from_backbone(
        &backbone,
        &other,
        &InitOptions::default().with_overwrite(true),
    )
    .unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidArgument);
    assert_eq!(
        std::fs::read_to_string(other.join("notes.txt")).expect("read"),
        "keep me"
    );
}
