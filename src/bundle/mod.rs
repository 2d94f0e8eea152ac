//! The on-disk model bundle: a directory holding `rewardkit.json` (the
//! manifest), `model.onnx` and `tokenizer.json`.

mod create;
pub mod import;
pub mod integrity;
mod manifest;
mod merge;
pub mod quantize;

pub use create::{
    init_from_backbone, write_bundle, write_bundle_files, write_bundle_owned, InitOptions,
    OutputPreset, STREAMING_EXTERNAL_THRESHOLD,
};
pub use import::{import_hf, ImportOptions};
pub use manifest::{
    Architecture, Manifest, Normalization, Provenance, TextFormat, FORMAT_NAME, FORMAT_VERSION,
};
pub use merge::merge_expo;
pub use quantize::{quantize_int8, quantize_int8_with, QuantizeSummary, WeightRange};

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// File names inside a bundle.
pub const MANIFEST_FILE: &str = "rewardkit.json";
pub const MODEL_FILE: &str = "model.onnx";
pub const TOKENIZER_FILE: &str = "tokenizer.json";

/// Largest manifest accepted (it is a small JSON document).
const MAX_MANIFEST_BYTES: u64 = 16 << 20;

/// An opened, validated bundle (files are checked, the model is not loaded).
#[derive(Debug, Clone)]
pub struct Bundle {
    dir: PathBuf,
    manifest: Manifest,
}

impl Bundle {
    /// Open the bundle at `dir`: read and validate the manifest, check that
    /// the model and tokenizer files are there, and check every file against
    /// the sizes and sha256 digests the manifest records.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(dir, true)
    }

    /// [`open`](Self::open), skipping the digest check when `verify_files`
    /// is false (faster for large bundles from a trusted place).
    pub fn open_with(dir: impl AsRef<Path>, verify_files: bool) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        if !dir.is_dir() {
            return Err(Error::bundle(&dir, "not a directory"));
        }
        let mpath = dir.join(MANIFEST_FILE);
        let meta = std::fs::metadata(&mpath)
            .map_err(|e| Error::bundle(&dir, format!("{MANIFEST_FILE}: {e}")))?;
        if meta.len() > MAX_MANIFEST_BYTES {
            return Err(Error::bundle(
                &dir,
                format!(
                    "{MANIFEST_FILE} is {} bytes, more than the {MAX_MANIFEST_BYTES} allowed",
                    meta.len()
                ),
            ));
        }
        let text = std::fs::read_to_string(&mpath)
            .map_err(|e| Error::bundle(&dir, format!("{MANIFEST_FILE}: {e}")))?;
        // A newer manifest gets its own code, so callers can tell "upgrade
        // rewardkit" from "this bundle is broken".
        let version = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.get("format_version").and_then(|v| v.as_u64()));
        if let Some(found) = version.filter(|&v| v > FORMAT_VERSION) {
            return Err(Error::UnsupportedVersion {
                what: mpath.display().to_string(),
                found,
                supported: FORMAT_VERSION,
            });
        }
        let manifest = Manifest::parse(&text)
            .map_err(|msg| Error::bundle(&dir, format!("{MANIFEST_FILE}: {msg}")))?;
        for file in [MODEL_FILE, TOKENIZER_FILE] {
            let p = dir.join(file);
            match std::fs::metadata(&p) {
                Ok(m) if file == TOKENIZER_FILE && m.len() > integrity::MAX_TOKENIZER_BYTES => {
                    return Err(Error::bundle(
                        &dir,
                        format!(
                            "{file} is {} bytes, more than the {} allowed",
                            m.len(),
                            integrity::MAX_TOKENIZER_BYTES
                        ),
                    ))
                }
                Ok(m) if m.is_file() && m.len() > 0 => {}
                Ok(_) => {
                    return Err(Error::bundle(
                        &dir,
                        format!("{file} is empty or not a file"),
                    ))
                }
                Err(e) => return Err(Error::bundle(&dir, format!("{file}: {e}"))),
            }
        }
        if let (true, Some(files)) = (verify_files, &manifest.files) {
            integrity::verify_files(&dir, files)?;
        }
        Ok(Bundle { dir, manifest })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    pub fn model_path(&self) -> PathBuf {
        self.dir.join(MODEL_FILE)
    }

    pub fn tokenizer_path(&self) -> PathBuf {
        self.dir.join(TOKENIZER_FILE)
    }
}
