//! ExPO model extrapolation: θ = θ_w + α(θ_s − θ_w) over every floating
//! point weight of two bundles of the same architecture.

use std::path::Path;

use super::{write_bundle, Bundle};
use crate::error::{Error, Result};
use crate::onnx::builder::tensor_f32;
use crate::onnx::io::{load_external_data, read_model, tensor_to_f32};
use crate::onnx::proto::{data_type, ModelProto, TensorProto};

fn load(bundle: &Bundle) -> Result<ModelProto> {
    let mut model = read_model(&bundle.model_path())?;
    load_external_data(&mut model, bundle.dir(), "model.onnx")?;
    Ok(model)
}

fn initializers(model: &ModelProto) -> &[TensorProto] {
    model.graph.as_ref().map_or(&[], |g| &g.initializer)
}

/// Write to `out` the bundle whose weights are `weak + alpha·(strong − weak)`.
/// The bundles must agree on architecture, outputs, inputs, pooling, text
/// format, tokenizer and the names and shapes of every weight; the graph and
/// manifest come from `strong`. `alpha` = 1 gives `strong`, 0 gives `weak`.
pub fn merge_expo(
    weak: &Path,
    strong: &Path,
    alpha: f32,
    out: &Path,
    overwrite: bool,
) -> Result<Bundle> {
    if !alpha.is_finite() {
        return Err(Error::InvalidArgument(format!(
            "alpha {alpha} is not finite"
        )));
    }
    let (w, s) = (Bundle::open(weak)?, Bundle::open(strong)?);
    let (wm, sm) = (w.manifest(), s.manifest());
    let refuse = |what: &str| {
        Err(Error::InvalidArgument(format!(
            "cannot merge {} and {}: their {what} differ",
            weak.display(),
            strong.display()
        )))
    };
    if wm.quantization.is_some() || sm.quantization.is_some() {
        return Err(Error::InvalidArgument(
            "cannot merge quantized bundles: merge the float bundles, then quantize".into(),
        ));
    }
    if wm.architecture != sm.architecture {
        return refuse("architectures (family and config)");
    }
    if wm.outputs != sm.outputs || wm.inputs != sm.inputs {
        return refuse("inputs or outputs");
    }
    if wm.pooling != sm.pooling || wm.text != sm.text {
        return refuse("pooling or text formats");
    }
    let read = |b: &Bundle| {
        std::fs::read(b.tokenizer_path()).map_err(|e| Error::io(b.tokenizer_path(), e))
    };
    let tokenizer = read(&s)?;
    if read(&w)? != tokenizer {
        return refuse("tokenizers");
    }
    let weak_model = load(&w)?;
    let mut model = load(&s)?;
    let weak_init: std::collections::HashMap<&str, &TensorProto> = initializers(&weak_model)
        .iter()
        .map(|t| (t.name(), t))
        .collect();
    if weak_init.len() != initializers(&model).len() {
        return refuse("weight lists");
    }
    let graph = model
        .graph
        .as_mut()
        .ok_or_else(|| Error::model(s.model_path().display().to_string(), "no graph"))?;
    let mut merged = 0usize;
    for t in graph.initializer.iter_mut() {
        let name = t.name().to_string();
        let wt = weak_init.get(name.as_str()).ok_or_else(|| {
            Error::InvalidArgument(format!(
                "cannot merge: {} has weight {name:?} that {} lacks",
                strong.display(),
                weak.display()
            ))
        })?;
        if wt.dims != t.dims || wt.data_type != t.data_type {
            return Err(Error::InvalidArgument(format!(
                "cannot merge: weight {name:?} is {:?} in {} but {:?} in {}",
                wt.dims,
                weak.display(),
                t.dims,
                strong.display()
            )));
        }
        if matches!(t.data_type, Some(data_type::FLOAT16 | data_type::BFLOAT16)) {
            return Err(Error::InvalidArgument(format!(
                "cannot merge: weight {name:?} is half precision; merge the fp32 bundles (or \
                 checkpoints) and convert the result"
            )));
        }
        if t.data_type != Some(data_type::FLOAT) {
            // Integer constants (shapes, axes) must simply agree.
            if **wt != *t {
                return refuse(&format!("constant {name:?}"));
            }
            continue;
        }
        let (wv, sv) = (tensor_to_f32(wt)?, tensor_to_f32(t)?);
        let values: Vec<f32> = wv
            .iter()
            .zip(&sv)
            .map(|(a, b)| a + alpha * (b - a))
            .collect();
        *t = tensor_f32(&name, &t.dims, &values);
        merged += values.len();
    }
    let mut manifest = sm.clone();
    manifest.provenance.recipe = format!("expo(alpha={alpha})");
    manifest.provenance.metrics = serde_json::Map::from_iter([
        (
            "expo_weak".to_string(),
            serde_json::json!(weak.display().to_string()),
        ),
        (
            "expo_strong".to_string(),
            serde_json::json!(strong.display().to_string()),
        ),
        ("expo_alpha".to_string(), serde_json::json!(alpha)),
        ("expo_parameters".to_string(), serde_json::json!(merged)),
    ]);
    write_bundle(out, &manifest, &model, &tokenizer, overwrite)
}
