//! Loading weights from `.safetensors` files (never pickled checkpoints).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use safetensors::{Dtype, SafeTensors};

use crate::error::{Error, Result};

/// One weight tensor, converted to `f32`.
#[derive(Debug, Clone, PartialEq)]
pub struct Weight {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// The weights of a checkpoint, by tensor name.
#[derive(Debug, Default)]
pub struct Weights {
    path: PathBuf,
    tensors: HashMap<String, Weight>,
}

impl Weights {
    /// Read every floating-point tensor of a safetensors file (f32, f16, bf16, f64).
    /// Integer tensors (such as BERT's `position_ids` buffer) are skipped.
    pub fn from_safetensors(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let st = SafeTensors::deserialize(&bytes)
            .map_err(|e| Error::backbone(path, format!("not a valid safetensors file: {e}")))?;
        let mut tensors = HashMap::new();
        for (name, view) in st.tensors() {
            let raw = view.data();
            let data: Vec<f32> = match view.dtype() {
                Dtype::F32 => raw
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
                Dtype::F16 => raw
                    .chunks_exact(2)
                    .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                    .collect(),
                Dtype::BF16 => raw
                    .chunks_exact(2)
                    .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
                    .collect(),
                Dtype::F64 => raw
                    .chunks_exact(8)
                    .map(|c| {
                        f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32
                    })
                    .collect(),
                _ => continue,
            };
            tensors.insert(
                name.to_string(),
                Weight {
                    shape: view.shape().to_vec(),
                    data,
                },
            );
        }
        Ok(Weights {
            path: path.to_path_buf(),
            tensors,
        })
    }

    /// Weights built in memory (tests, freshly initialised heads).
    pub fn from_map(path: &Path, tensors: HashMap<String, Weight>) -> Self {
        Weights {
            path: path.to_path_buf(),
            tensors,
        }
    }

    /// The file the weights came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Names of all tensors.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }

    /// Look a tensor up by any of `names` (the first that exists), checking its
    /// shape. Errors name the tensor, the expected and the found shape.
    pub fn take(&mut self, names: &[String], shape: &[usize]) -> Result<(String, Weight)> {
        for name in names {
            if let Some(w) = self.tensors.remove(name) {
                if w.shape != shape {
                    return Err(Error::backbone(
                        &self.path,
                        format!("tensor {name} has shape {:?}, expected {shape:?}", w.shape),
                    ));
                }
                return Ok((name.clone(), w));
            }
        }
        Err(Error::backbone(
            &self.path,
            format!(
                "missing tensor {} (shape {shape:?})",
                names.first().map(String::as_str).unwrap_or("?")
            ),
        ))
    }
}

/// Write tensors as a safetensors file (f32), atomically.
pub fn write_safetensors(path: &Path, tensors: &[(String, Weight)]) -> Result<()> {
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|(_, w)| w.data.iter().flat_map(|v| v.to_le_bytes()).collect())
        .collect();
    let mut views = Vec::with_capacity(tensors.len());
    for ((name, w), b) in tensors.iter().zip(&bytes) {
        let view = safetensors::tensor::TensorView::new(Dtype::F32, w.shape.clone(), b)
            .map_err(|e| Error::Internal(format!("tensor {name}: {e}")))?;
        views.push((name.clone(), view));
    }
    let out = safetensors::serialize(views, None).map_err(|e| Error::Internal(e.to_string()))?;
    crate::onnx::io::write_atomic(path, &out)
}
