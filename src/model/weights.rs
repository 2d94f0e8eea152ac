//! Loading weights from `.safetensors` files (never pickled checkpoints).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use safetensors::{Dtype, SafeTensors};

use crate::error::{Error, Result};
use crate::onnx::io::tensor_to_f32;
use crate::onnx::proto::data_type;
use crate::onnx::ModelProto;

use super::head::{RewardHead, HEAD_BIAS, HEAD_WEIGHT};

/// One weight tensor, converted to `f32`.
#[derive(Debug, Clone, PartialEq)]
pub struct Weight {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl Weight {
    /// The shape as ONNX tensor dimensions.
    pub fn dims(&self) -> Vec<i64> {
        self.shape.iter().map(|&d| d as i64).collect()
    }
}

/// The weights of a checkpoint, by tensor name.
#[derive(Debug, Default)]
pub struct Weights {
    path: PathBuf,
    tensors: HashMap<String, Weight>,
}

/// Name of a single-file checkpoint inside a model directory.
pub const SINGLE_FILE: &str = "model.safetensors";
/// Name of the index of a sharded checkpoint inside a model directory.
pub const SHARD_INDEX: &str = "model.safetensors.index.json";

/// Memory-map a file for reading.
fn map_file(path: &Path) -> Result<memmap2::Mmap> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    // SAFETY: the map is only read, and only while this process holds it;
    // every tensor is copied (converted to f32) before the map is dropped.
    // Like every reader of memory-mapped files, this assumes no other process
    // truncates the file meanwhile.
    unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(path, e))
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if n > 0 {
        n as usize
    } else {
        4096
    }
}

/// Convert one tensor's little-endian bytes to f32; None for non-float dtypes.
fn to_f32(dtype: Dtype, raw: &[u8]) -> Option<Vec<f32>> {
    Some(match dtype {
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
            .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32)
            .collect(),
        _ => return None,
    })
}

/// Read the floating-point tensors of the memory-mapped safetensors file
/// `path` into `tensors`; with `only`, just the tensors it names. Returns the
/// names of all tensors the file holds (integer ones included).
fn read_safetensors_into(
    path: &Path,
    tensors: &mut HashMap<String, Weight>,
    only: Option<&HashSet<&str>>,
) -> Result<HashSet<String>> {
    let map = map_file(path)?;
    let st = SafeTensors::deserialize(&map)
        .map_err(|e| Error::backbone(path, format!("not a valid safetensors file: {e}")))?;
    let _ = map.advise(memmap2::Advice::Sequential);
    let page = page_size();
    let mut seen = HashSet::new();
    for (name, view) in st.tensors() {
        seen.insert(name.clone());
        if only.is_some_and(|names| !names.contains(name.as_str())) {
            continue;
        }
        let converted = to_f32(view.dtype(), view.data());
        // Give the tensor's file pages back once converted, so converting a
        // checkpoint holds about one copy of it in memory, not the converted
        // weights plus the whole mapped file. Only pages wholly inside this
        // tensor: a page it shares with a neighbour is never dropped, so no
        // dropped page is read again.
        let start = view.data().as_ptr() as usize - map.as_ptr() as usize;
        let first = start.next_multiple_of(page);
        let end = (start + view.data().len()) / page * page;
        if end > first {
            // SAFETY: the map is a read-only shared mapping of a file and no
            // byte of these pages is read after this point (they hold only
            // this tensor, already converted); DontNeed drops them from this
            // process without touching the file.
            let _ = unsafe {
                map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, first, end - first)
            };
        }
        let Some(data) = converted else {
            continue;
        };
        tensors.insert(
            name.to_string(),
            Weight {
                shape: view.shape().to_vec(),
                data,
            },
        );
    }
    Ok(seen)
}

/// A shard file name from an index: a plain file name in the index's folder
/// (no folders, no `..`), so an index cannot point outside its checkpoint.
fn shard_name_ok(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains('/')
        && !name.contains('\\')
        && !name.contains('\0')
}

/// An error naming the first half-precision weight of `model`, if any:
/// training, merging, re-export and int8 quantization start from fp32 weights.
pub fn refuse_half_precision(model: &ModelProto, path: &Path) -> Result<()> {
    match model
        .graph
        .iter()
        .flat_map(|g| g.initializer.iter())
        .find(|t| matches!(t.data_type, Some(data_type::FLOAT16 | data_type::BFLOAT16)))
    {
        None => Ok(()),
        Some(t) => Err(Error::bundle(
            path,
            format!(
                "weight {} is half precision (float16/bfloat16): training, merging and \
                 int8 quantization start from fp32 weights (make the bundle again \
                 without --dtype)",
                t.name()
            ),
        )),
    }
}

impl Weights {
    /// Read every floating-point tensor of a safetensors file (f32, f16, bf16, f64),
    /// memory-mapped. Integer tensors (such as BERT's `position_ids` buffer) are skipped.
    pub fn from_safetensors(path: &Path) -> Result<Self> {
        let mut tensors = HashMap::new();
        read_safetensors_into(path, &mut tensors, None)?;
        Ok(Weights {
            path: path.to_path_buf(),
            tensors,
        })
    }

    /// Read the weights of a Hugging Face model directory: `model.safetensors`,
    /// or a sharded checkpoint listed by `model.safetensors.index.json`
    /// (when both exist, the single file wins, as in transformers).
    pub fn from_dir(dir: &Path) -> Result<Self> {
        let single = dir.join(SINGLE_FILE);
        if single.is_file() {
            return Self::from_safetensors(&single);
        }
        let index = dir.join(SHARD_INDEX);
        if index.is_file() {
            return Self::from_index(&index);
        }
        Err(Error::backbone(
            dir,
            format!("no weights: neither {SINGLE_FILE} nor {SHARD_INDEX} is in this directory"),
        ))
    }

    /// Read a sharded checkpoint from its index (`model.safetensors.index.json`,
    /// whose `weight_map` maps each tensor name to a shard file in the same
    /// directory). Each shard is memory-mapped in turn. Errors name the index
    /// and, for a missing or incomplete shard, the shard.
    pub fn from_index(index: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(index).map_err(|e| Error::io(index, e))?;
        let doc: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
            Error::backbone(index, format!("the shard index is not valid JSON: {e}"))
        })?;
        let map = doc
            .get("weight_map")
            .and_then(|m| m.as_object())
            .ok_or_else(|| {
                Error::backbone(
                    index,
                    "malformed shard index: expected an object \"weight_map\" \
                     mapping tensor names to shard files",
                )
            })?;
        if map.is_empty() {
            return Err(Error::backbone(
                index,
                "malformed shard index: \"weight_map\" is empty",
            ));
        }
        // Tensor names per shard, shards in sorted order.
        let mut shards: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (tensor, file) in map {
            let file = file.as_str().ok_or_else(|| {
                Error::backbone(
                    index,
                    format!(
                        "malformed shard index: weight_map[{tensor:?}] is {file}, expected a file name"
                    ),
                )
            })?;
            if !shard_name_ok(file) {
                return Err(Error::backbone(
                    index,
                    format!(
                        "malformed shard index: weight_map[{tensor:?}] = {file:?} is not a file \
                         name in the checkpoint's directory"
                    ),
                ));
            }
            shards.entry(file).or_default().push(tensor.as_str());
        }
        let dir = index.parent().unwrap_or(Path::new("."));
        let mut tensors = HashMap::new();
        for (file, names) in &shards {
            let path = dir.join(file);
            if !path.is_file() {
                return Err(Error::backbone(
                    index,
                    format!(
                        "shard {file} (holding {} tensors, e.g. {}) is missing: expected it at {}",
                        names.len(),
                        names[0],
                        path.display()
                    ),
                ));
            }
            let wanted: HashSet<&str> = names.iter().copied().collect();
            let seen = read_safetensors_into(&path, &mut tensors, Some(&wanted))?;
            if let Some(n) = names.iter().find(|n| !seen.contains(**n)) {
                return Err(Error::backbone(
                    index,
                    format!(
                        "tensor {n} is listed in shard {file}, but that shard does not hold it"
                    ),
                ));
            }
        }
        Ok(Weights {
            path: index.to_path_buf(),
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

    /// The float32 weights of a model rewardkit wrote, by initializer name
    /// (scalars and the graph's integer constants are left out), and its
    /// reward head. `path` names the model in errors. Half-precision weights
    /// are refused: training and re-export start from float32.
    pub fn from_model(model: &ModelProto, path: &Path) -> Result<(Self, RewardHead)> {
        refuse_half_precision(model, path)?;
        let mut tensors = HashMap::new();
        for t in model.graph.iter().flat_map(|g| g.initializer.iter()) {
            if t.data_type == Some(data_type::FLOAT) && !t.dims.is_empty() {
                tensors.insert(
                    t.name().to_string(),
                    Weight {
                        shape: t.dims.iter().map(|&d| d as usize).collect(),
                        data: tensor_to_f32(t)?,
                    },
                );
            }
        }
        let missing = |name: &str| Error::bundle(path, format!("the model has no {name}"));
        let hw = tensors
            .remove(HEAD_WEIGHT)
            .ok_or_else(|| missing(HEAD_WEIGHT))?;
        let hb = tensors
            .remove(HEAD_BIAS)
            .ok_or_else(|| missing(HEAD_BIAS))?;
        let hidden = match hw.shape.as_slice() {
            [_, h] => *h,
            other => {
                return Err(Error::bundle(
                    path,
                    format!("{HEAD_WEIGHT} has shape {other:?}, expected [outputs, hidden]"),
                ))
            }
        };
        let head = RewardHead::from_parts(hw.data, hb.data, hidden)?;
        Ok((Weights::from_map(path, tensors), head))
    }

    /// The file the weights came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Names of all tensors.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }

    /// The shape of a tensor that is present (and not yet taken).
    pub fn shape(&self, name: &str) -> Option<&[usize]> {
        self.tensors.get(name).map(|w| w.shape.as_slice())
    }

    /// Whether a tensor of this name is present (and not yet taken).
    pub fn has(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
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
    let views: Vec<(&str, &[usize], &[f32])> = tensors
        .iter()
        .map(|(n, w)| (n.as_str(), w.shape.as_slice(), w.data.as_slice()))
        .collect();
    write_f32_safetensors(path, &views)
}

/// Write float32 tensors `(name, shape, values)` as a safetensors file,
/// atomically, streaming the values to the file: no copy of the tensors is
/// made in memory (a checkpoint's optimizer state is twice the model).
pub fn write_f32_safetensors(path: &Path, tensors: &[(&str, &[usize], &[f32])]) -> Result<()> {
    use std::io::Write;
    let mut header = serde_json::Map::new();
    let mut offset = 0usize;
    for (name, shape, data) in tensors {
        let n: usize = shape.iter().product();
        if n != data.len() {
            return Err(Error::Internal(format!(
                "tensor {name}: {} values for shape {shape:?}",
                data.len()
            )));
        }
        if header.contains_key(*name) {
            return Err(Error::Internal(format!("tensor {name} named twice")));
        }
        let end = offset + 4 * n;
        header.insert(
            name.to_string(),
            serde_json::json!({"dtype": "F32", "shape": shape, "data_offsets": [offset, end]}),
        );
        offset = end;
    }
    let mut text = serde_json::to_vec(&header).map_err(|e| Error::Internal(e.to_string()))?;
    // The data starts 8-byte aligned: the header is padded with spaces.
    text.resize(text.len().div_ceil(8) * 8, b' ');
    crate::onnx::io::write_atomic_with(path, |f| {
        let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
        w.write_all(&(text.len() as u64).to_le_bytes())?;
        w.write_all(&text)?;
        let mut chunk = Vec::with_capacity(1 << 16);
        for (_, _, data) in tensors {
            for part in data.chunks(1 << 14) {
                chunk.clear();
                chunk.extend(part.iter().flat_map(|v| v.to_le_bytes()));
                w.write_all(&chunk)?;
            }
        }
        w.flush()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_names_stay_in_the_checkpoint_folder() {
        assert!(shard_name_ok("model-00001-of-00002.safetensors"));
        for bad in [
            "",
            ".",
            "..",
            "../x.safetensors",
            "/etc/passwd",
            "a\\b",
            "sub/x",
        ] {
            assert!(!shard_name_ok(bad), "{bad:?}");
        }
    }

    #[test]
    fn reads_a_written_file_through_the_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let w = Weight {
            shape: vec![2, 3],
            data: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        };
        write_safetensors(
            &dir.path().join(SINGLE_FILE),
            &[("a.weight".to_string(), w.clone())],
        )
        .expect("write");
        let mut weights = Weights::from_dir(dir.path()).expect("read");
        assert!(weights.has("a.weight"));
        let (_, got) = weights
            .take(&["a.weight".to_string()], &[2, 3])
            .expect("take");
        assert_eq!(got, w);
        assert!(!weights.has("a.weight"));
    }

    #[test]
    fn streamed_files_read_back_with_the_safetensors_crate() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.safetensors");
        let big: Vec<f32> = (0..40_000).map(|i| i as f32 * 0.5 - 7.0).collect();
        let tensors: Vec<(&str, &[usize], &[f32])> = vec![
            ("z.big", &[200, 200], &big),
            ("a.small", &[3], &[1.5, -2.0, f32::MIN_POSITIVE]),
            ("m.empty", &[0, 4], &[]),
        ];
        write_f32_safetensors(&path, &tensors).expect("write");
        let bytes = std::fs::read(&path).expect("read");
        let header_len = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")) as usize;
        assert_eq!((8 + header_len) % 8, 0, "data is 8-byte aligned");
        let st = SafeTensors::deserialize(&bytes).expect("a valid safetensors file");
        assert_eq!(st.len(), 3);
        for (name, shape, data) in &tensors {
            let t = st.tensor(name).expect(name);
            assert_eq!(t.dtype(), Dtype::F32);
            assert_eq!(t.shape(), *shape);
            let got: Vec<f32> = t
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            assert_eq!(&got, data, "{name}");
        }
        let err = write_f32_safetensors(&path, &[("x", &[2], &[1.0])]).unwrap_err();
        assert!(err.to_string().contains("1 values for shape [2]"), "{err}");
    }
}
