//! Reading and writing `.onnx` files, with ONNX external data for large models.

use std::fs;
use std::io::Write;
use std::path::{Component, Path};

use prost::Message;

use super::proto::{
    data_type, ModelProto, StringStringEntryProto, TensorProto, DATA_LOCATION_EXTERNAL,
};
use crate::error::{Error, Result};

/// Protobuf messages cannot exceed 2 GiB; past this many bytes of weights a
/// model is written with external data.
pub const DEFAULT_EXTERNAL_THRESHOLD: usize = 1 << 30;

/// Initializers smaller than this stay inline even when external data is used.
const EXTERNAL_MIN_TENSOR: usize = 1024;

/// Read and decode an ONNX model file. External data is left in place (ONNX
/// Runtime resolves it relative to the model file); see [`load_external_data`].
pub fn read_model(path: &Path) -> Result<ModelProto> {
    let bytes = fs::read(path).map_err(|e| Error::io(path, e))?;
    decode_model(&bytes, &path.display().to_string())
}

/// Decode an ONNX model from bytes; `what` names it in errors.
pub fn decode_model(bytes: &[u8], what: &str) -> Result<ModelProto> {
    if bytes.is_empty() {
        return Err(Error::model(what, "the file is empty"));
    }
    let model = ModelProto::decode(bytes)
        .map_err(|e| Error::model(what, format!("not a valid ONNX protobuf ({e})")))?;
    if model.graph.is_none() {
        return Err(Error::model(what, "the model has no graph"));
    }
    Ok(model)
}

/// Write `model` to `path` atomically (a temporary file renamed into place).
/// If its initializers hold more than `external_threshold` bytes, the large
/// ones go to `<file name>.data` beside it as ONNX external data.
pub fn write_model(path: &Path, model: &ModelProto, external_threshold: usize) -> Result<()> {
    if initializer_bytes(model) <= external_threshold {
        return write_atomic(path, &model.encode_to_vec());
    }
    write_model_owned(path, model.clone(), external_threshold)
}

/// Bytes of raw initializer data in `model`.
fn initializer_bytes(model: &ModelProto) -> usize {
    model
        .graph
        .as_ref()
        .map(|g| {
            g.initializer
                .iter()
                .map(|t| t.raw_data.as_ref().map_or(0, Vec::len))
                .sum()
        })
        .unwrap_or(0)
}

/// [`write_model`] for a model the caller gives up: tensors going to
/// external data are streamed to the file one at a time and freed, so
/// writing a large model needs little memory beyond the model itself.
pub fn write_model_owned(
    path: &Path,
    mut model: ModelProto,
    external_threshold: usize,
) -> Result<()> {
    if initializer_bytes(&model) <= external_threshold {
        return write_atomic(path, &model.encode_to_vec());
    }
    let file_name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| Error::InvalidArgument(format!("bad model path {}", path.display())))?;
    let data_name = format!("{file_name}.data");
    let data_path = path.with_file_name(&data_name);
    write_atomic_with(&data_path, |f| {
        let mut f = std::io::BufWriter::with_capacity(1 << 20, f);
        let mut offset = 0usize;
        if let Some(graph) = model.graph.as_mut() {
            for t in graph.initializer.iter_mut() {
                let Some(raw) = t.raw_data.take_if(|r| r.len() >= EXTERNAL_MIN_TENSOR) else {
                    continue;
                };
                // 4 KiB alignment lets runtimes memory-map tensors.
                let pad = offset.next_multiple_of(4096) - offset;
                f.write_all(&[0u8; 4096][..pad])?;
                offset += pad;
                f.write_all(&raw)?;
                t.data_location = Some(DATA_LOCATION_EXTERNAL);
                t.external_data = vec![
                    entry("location", &data_name),
                    entry("offset", &offset.to_string()),
                    entry("length", &raw.len().to_string()),
                ];
                offset += raw.len();
            }
        }
        f.flush()
    })?;
    write_atomic(path, &model.encode_to_vec())
}

fn entry(k: &str, v: &str) -> StringStringEntryProto {
    StringStringEntryProto {
        key: Some(k.to_string()),
        value: Some(v.to_string()),
    }
}

/// Write bytes to a temporary file beside `path`, sync it, and rename it over `path`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, |f| f.write_all(bytes))
}

/// Like [`write_atomic`], with the content written by `fill`.
pub fn write_atomic_with(
    path: &Path,
    fill: impl FnOnce(&mut fs::File) -> std::io::Result<()>,
) -> Result<()> {
    let tmp = path.with_extension(format!(
        "{}.tmp-{}",
        path.extension().and_then(|e| e.to_str()).unwrap_or(""),
        std::process::id()
    ));
    let result = (|| {
        let mut f = fs::File::create(&tmp)?;
        fill(&mut f)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(Error::io(path, e));
    }
    Ok(())
}

/// Check that an external-data location stays inside the model's folder: a
/// relative path with no `..`, no root and no drive prefix.
pub fn check_external_location(location: &str, what: &str) -> Result<()> {
    let p = Path::new(location);
    let ok = !location.is_empty()
        && p.components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    if ok {
        Ok(())
    } else {
        Err(Error::model(
            what,
            format!("external data location {location:?} points outside the model's folder"),
        ))
    }
}

/// Replace every external-data reference in `model` with inline `raw_data`,
/// reading from files relative to `base_dir`. Locations outside `base_dir`,
/// byte ranges past the end of a file, and lengths that disagree with a
/// tensor's shape are errors.
pub fn load_external_data(model: &mut ModelProto, base_dir: &Path, what: &str) -> Result<()> {
    let Some(graph) = model.graph.as_mut() else {
        return Ok(());
    };
    let mut files: std::collections::HashMap<String, Vec<u8>> = Default::default();
    for t in graph.initializer.iter_mut() {
        if t.data_location != Some(DATA_LOCATION_EXTERNAL) {
            continue;
        }
        let get = |k: &str| {
            t.external_data
                .iter()
                .find(|e| e.key.as_deref() == Some(k))
                .and_then(|e| e.value.clone())
        };
        let location = get("location").ok_or_else(|| {
            Error::model(
                what,
                format!("tensor {} has external data without a location", t.name()),
            )
        })?;
        check_external_location(&location, what)?;
        let parse = |k: &str| -> Result<Option<usize>> {
            get(k)
                .map(|v| {
                    v.parse::<usize>().map_err(|_| {
                        Error::model(what, format!("tensor {}: bad external {k} {v:?}", t.name()))
                    })
                })
                .transpose()
        };
        let offset = parse("offset")?.unwrap_or(0);
        let length = parse("length")?;
        if !files.contains_key(&location) {
            let p = base_dir.join(&location);
            let bytes = fs::read(&p).map_err(|e| Error::io(&p, e))?;
            files.insert(location.clone(), bytes);
        }
        let file = &files[&location];
        let expected = t
            .num_elements()
            .zip(data_type::elem_size(t.data_type.unwrap_or(0)))
            .and_then(|(n, s)| n.checked_mul(s))
            .ok_or_else(|| {
                Error::model(what, format!("tensor {} has a bad shape or type", t.name()))
            })?;
        let length = length.unwrap_or(expected);
        if length != expected {
            return Err(Error::model(
                what,
                format!(
                    "tensor {}: external length {length} but its shape needs {expected} bytes",
                    t.name()
                ),
            ));
        }
        let end = offset
            .checked_add(length)
            .filter(|&e| e <= file.len())
            .ok_or_else(|| {
                Error::model(
                    what,
                    format!(
                        "tensor {}: bytes {offset}..{} are past the end of {location} ({} bytes)",
                        t.name(),
                        offset.saturating_add(length),
                        file.len()
                    ),
                )
            })?;
        t.raw_data = Some(file[offset..end].to_vec());
        t.data_location = None;
        t.external_data.clear();
    }
    Ok(())
}

/// Bytes of an initializer as `f32` values (raw or `float_data`).
pub fn tensor_to_f32(t: &TensorProto) -> Result<Vec<f32>> {
    if t.data_type != Some(data_type::FLOAT) {
        return Err(Error::model(
            t.name(),
            format!(
                "expected a float tensor, found {}",
                data_type::name(t.data_type.unwrap_or(0))
            ),
        ));
    }
    let n = t
        .num_elements()
        .ok_or_else(|| Error::model(t.name(), "bad dims"))?;
    let values: Vec<f32> = match &t.raw_data {
        Some(raw) => raw
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        None => t.float_data.clone(),
    };
    if values.len() != n {
        return Err(Error::model(
            t.name(),
            format!(
                "holds {} values but its dims {:?} need {n}",
                values.len(),
                t.dims
            ),
        ));
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onnx::builder::{model, tensor_f32, GraphBuilder};

    #[test]
    fn external_locations_must_stay_inside() {
        assert!(check_external_location("model.onnx.data", "m").is_ok());
        assert!(check_external_location("./w/x.bin", "m").is_ok());
        assert!(check_external_location("../x", "m").is_err());
        assert!(check_external_location("/etc/passwd", "m").is_err());
        assert!(check_external_location("a/../../b", "m").is_err());
        assert!(check_external_location("", "m").is_err());
    }

    #[test]
    fn external_data_round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut g = GraphBuilder::new();
        let values: Vec<f32> = (0..1000).map(|i| i as f32 * 0.5).collect();
        g.initializer(tensor_f32("w", &[10, 100], &values));
        g.initializer(tensor_f32("small", &[2], &[1.0, 2.0]));
        let m = model(g.build("g"), "");
        let path = dir.path().join("model.onnx");
        write_model(&path, &m, 100).expect("write");
        assert!(dir.path().join("model.onnx.data").exists());
        let mut back = read_model(&path).expect("read");
        let w = &back.graph.as_ref().expect("graph").initializer[0];
        assert_eq!(w.data_location, Some(DATA_LOCATION_EXTERNAL));
        load_external_data(&mut back, dir.path(), "model.onnx").expect("load");
        let w = &back.graph.as_ref().expect("graph").initializer[0];
        assert_eq!(tensor_to_f32(w).expect("f32"), values);
    }

    #[test]
    fn truncated_and_empty_files_are_errors() {
        assert!(decode_model(&[], "x").is_err());
        let mut g = GraphBuilder::new();
        g.initializer(tensor_f32("w", &[4], &[1.0, 2.0, 3.0, 4.0]));
        let bytes = model(g.build("g"), "doc").encode_to_vec();
        let err = decode_model(&bytes[..bytes.len() / 2], "cut.onnx").unwrap_err();
        assert!(err.to_string().contains("cut.onnx"), "{err}");
    }
}
