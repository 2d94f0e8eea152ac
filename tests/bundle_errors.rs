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

/// The offset in `bytes` (the file `path`) of a byte in the middle of the
/// model's largest weight, so flipping it keeps the protobuf valid.
fn weight_byte_offset(path: &std::path::Path, bytes: &[u8]) -> usize {
    let model = rewardkit::onnx::io::read_model(path).expect("read model");
    let graph = model.graph.expect("graph");
    let raw = graph
        .initializer
        .iter()
        .filter_map(|t| t.raw_data.as_deref())
        .max_by_key(|r| r.len())
        .expect("a weight stored as raw data");
    assert!(raw.len() >= 64, "the largest weight is too small to locate");
    let window = &raw[raw.len() / 2..raw.len() / 2 + 32];
    let at = bytes
        .windows(window.len())
        .position(|w| w == window)
        .expect("the weight's bytes are in the file");
    at + window.len() / 2
}

#[test]
fn file_digests_are_recorded_and_checked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = common::reward_bundle(dir.path());
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(good.join("rewardkit.json")).unwrap())
            .unwrap();
    let files = m["files"].as_object().expect("files are recorded");
    for f in ["model.onnx", "tokenizer.json"] {
        assert_eq!(files[f]["sha256"].as_str().unwrap().len(), 64, "{f}");
    }

    // A model with one byte changed (same size): refused, naming the file.
    let b = copy_bundle(&good, &dir.path().join("flipped"));
    let mut bytes = std::fs::read(b.join("model.onnx")).unwrap();
    let i = weight_byte_offset(&b.join("model.onnx"), &bytes);
    bytes[i] ^= 1;
    std::fs::write(b.join("model.onnx"), &bytes).unwrap();
    let e = open_err(&b);
    assert_eq!(e.code(), ErrorCode::InvalidModel, "{e}");
    assert!(e.to_string().contains("sha256"), "{e}");
    // The check can be skipped (the model still loads: a weight byte changed).
    Scorer::open(&b, ScorerOptions::default().with_verify_files(false))
        .expect("opens without the digest check");

    // A tokenizer with text appended: a size mismatch, a bundle error.
    let b = copy_bundle(&good, &dir.path().join("tok"));
    let mut tok = std::fs::read(b.join("tokenizer.json")).unwrap();
    tok.extend_from_slice(b"\n ");
    std::fs::write(b.join("tokenizer.json"), &tok).unwrap();
    let e = open_err(&b);
    assert_eq!(e.code(), ErrorCode::InvalidBundle, "{e}");
    assert!(
        e.to_string().contains("tokenizer.json") && e.to_string().contains("bytes"),
        "{e}"
    );

    // A manifest listing a file outside the bundle is refused.
    let b = copy_bundle(&good, &dir.path().join("outside"));
    edit_manifest(&b, |m| {
        m["files"]["../outside.bin"] = serde_json::json!({"bytes": 1, "sha256": "00"});
    });
    let e = open_err(&b);
    assert!(e.to_string().contains("outside the bundle"), "{e}");
}

/// Point one initializer of a bundle's model at external data `location`,
/// dropping the recorded digests (a hand-made, hostile bundle).
fn with_external_location(dir: &Path, location: &str) {
    use rewardkit::onnx::io::{read_model, write_atomic};
    use rewardkit::onnx::proto::{StringStringEntryProto, DATA_LOCATION_EXTERNAL};
    let mut model = read_model(&dir.join("model.onnx")).unwrap();
    let t = model
        .graph
        .as_mut()
        .unwrap()
        .initializer
        .iter_mut()
        .find(|t| t.raw_data.as_ref().is_some_and(|r| r.len() > 64))
        .unwrap();
    let n = t.raw_data.take().unwrap().len();
    t.data_location = Some(DATA_LOCATION_EXTERNAL);
    t.external_data = [
        ("location", location.to_string()),
        ("length", n.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| StringStringEntryProto {
        key: Some(k.into()),
        value: Some(v),
    })
    .collect();
    use prost::Message;
    write_atomic(&dir.join("model.onnx"), &model.encode_to_vec()).unwrap();
    edit_manifest(dir, |m| {
        m.as_object_mut().unwrap().remove("files");
    });
}

#[test]
fn external_data_outside_the_bundle_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = common::reward_bundle(dir.path());
    std::fs::write(dir.path().join("secret.bin"), vec![0u8; 1 << 16]).unwrap();
    for (name, location) in [
        ("dotdot", "../secret.bin".to_string()),
        (
            "absolute",
            dir.path().join("secret.bin").display().to_string(),
        ),
        ("nested", "sub/../../secret.bin".to_string()),
    ] {
        let b = copy_bundle(&good, &dir.path().join(name));
        with_external_location(&b, &location);
        let e = open_err(&b);
        assert_eq!(e.code(), ErrorCode::InvalidModel, "{name}: {e}");
        assert!(
            e.to_string().contains("outside the model's folder"),
            "{name}: {e}"
        );
    }
    // Inside the bundle but missing: named.
    let b = copy_bundle(&good, &dir.path().join("missing"));
    with_external_location(&b, "weights.bin");
    let e = open_err(&b);
    assert!(e.to_string().contains("weights.bin"), "{e}");
}

#[test]
fn tensor_bytes_must_match_their_shapes() {
    use prost::Message;
    use rewardkit::onnx::io::{read_model, write_atomic};
    let dir = tempfile::tempdir().expect("tempdir");
    let good = common::reward_bundle(dir.path());
    let b = copy_bundle(&good, &dir.path().join("short"));
    let mut model = read_model(&b.join("model.onnx")).unwrap();
    let t = model
        .graph
        .as_mut()
        .unwrap()
        .initializer
        .iter_mut()
        .find(|t| t.raw_data.as_ref().is_some_and(|r| r.len() > 64))
        .unwrap();
    let name = t.name().to_string();
    t.raw_data.as_mut().unwrap().truncate(8);
    write_atomic(&b.join("model.onnx"), &model.encode_to_vec()).unwrap();
    edit_manifest(&b, |m| {
        m.as_object_mut().unwrap().remove("files");
    });
    let e = open_err(&b);
    assert_eq!(e.code(), ErrorCode::InvalidModel, "{e}");
    assert!(
        e.to_string().contains(&name) && e.to_string().contains("8 bytes"),
        "{e}"
    );
}
