//! What rewardkit checks before it trusts a bundle's files: their sha256
//! digests against the manifest, the model's external-data references, and
//! the sizes of its tensors against their shapes.

use std::collections::BTreeMap;
use std::path::Path;

use prost::Message;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::onnx::io::check_external_location;
use crate::onnx::proto::{data_type, ModelProto, DATA_LOCATION_EXTERNAL};

/// Size and digest of one bundle file, as recorded in the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRecord {
    pub bytes: u64,
    pub sha256: String,
}

/// Largest tokenizer.json accepted (real ones are a few MB).
pub const MAX_TOKENIZER_BYTES: u64 = 256 << 20;

fn sha256_file(path: &Path) -> Result<FileRecord> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        bytes += n as u64;
    }
    Ok(FileRecord {
        bytes,
        sha256: format!("{:x}", hasher.finalize()),
    })
}

/// Records for the named files of `dir` (names relative to it).
pub fn record_files(dir: &Path, names: &[String]) -> Result<BTreeMap<String, FileRecord>> {
    names
        .iter()
        .map(|n| Ok((n.clone(), sha256_file(&dir.join(n))?)))
        .collect()
}

/// Check each recorded file's size and digest. A file that is missing,
/// of another size, or with another digest is an error naming it.
pub fn verify_files(dir: &Path, files: &BTreeMap<String, FileRecord>) -> Result<()> {
    // A damaged model file gets the same code whether or not the manifest
    // records digests (RK_ERR_INVALID_MODEL); other files are bundle errors.
    let fail = |name: &str, msg: String| {
        if name.starts_with(super::MODEL_FILE) {
            Error::model(dir.join(name).display().to_string(), msg)
        } else {
            Error::bundle(dir, format!("{name}: {msg}"))
        }
    };
    for (name, want) in files {
        check_external_location(name, "rewardkit.json").map_err(|_| {
            Error::bundle(
                dir,
                format!("rewardkit.json lists file {name:?} outside the bundle"),
            )
        })?;
        let path = dir.join(name);
        let meta =
            std::fs::metadata(&path).map_err(|e| Error::bundle(dir, format!("{name}: {e}")))?;
        if meta.len() != want.bytes {
            return Err(fail(
                name,
                format!(
                    "{} bytes but rewardkit.json records {} (modified or truncated)",
                    meta.len(),
                    want.bytes
                ),
            ));
        }
        let got = sha256_file(&path)?;
        if got.sha256 != want.sha256 {
            return Err(fail(
                name,
                format!(
                    "sha256 {} but rewardkit.json records {} (modified)",
                    got.sha256, want.sha256
                ),
            ));
        }
    }
    Ok(())
}

/// External-data files `model.onnx` refers to, after checking that every
/// reference stays inside the bundle and names an existing file, and that
/// every tensor's stored bytes match its shape. Nothing here runs code or
/// reads outside `dir`.
pub fn check_model(dir: &Path, model_file: &str) -> Result<Vec<String>> {
    let path = dir.join(model_file);
    let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
    let what = path.display().to_string();
    let model = ModelProto::decode(bytes.as_slice())
        .map_err(|e| Error::model(&what, format!("not a valid ONNX model ({e})")))?;
    let mut external = Vec::new();
    let Some(graph) = model.graph.as_ref() else {
        return Ok(external);
    };
    for t in &graph.initializer {
        let expected = t
            .num_elements()
            .zip(data_type::elem_size(t.data_type.unwrap_or(0)))
            .and_then(|(n, s)| n.checked_mul(s));
        if t.data_location == Some(DATA_LOCATION_EXTERNAL) {
            let location = t
                .external_data
                .iter()
                .find(|e| e.key.as_deref() == Some("location"))
                .and_then(|e| e.value.clone())
                .ok_or_else(|| {
                    Error::model(
                        &what,
                        format!("tensor {} has external data without a location", t.name()),
                    )
                })?;
            check_external_location(&location, &what)?;
            let p = dir.join(&location);
            let meta = std::fs::symlink_metadata(&p).map_err(|e| {
                Error::model(
                    &what,
                    format!("tensor {}: external file {location}: {e}", t.name()),
                )
            })?;
            if !meta.is_file() {
                return Err(Error::model(
                    &what,
                    format!(
                        "tensor {}: external data {location} is not a regular file",
                        t.name()
                    ),
                ));
            }
            if !external.contains(&location) {
                external.push(location);
            }
        } else if let (Some(raw), Some(expected)) = (&t.raw_data, expected) {
            if raw.len() != expected {
                return Err(Error::model(
                    &what,
                    format!(
                        "tensor {} holds {} bytes but its shape {:?} needs {expected}",
                        t.name(),
                        raw.len(),
                        t.dims
                    ),
                ));
            }
        }
    }
    Ok(external)
}
