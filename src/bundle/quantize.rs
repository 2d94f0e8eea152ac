//! `rewardkit quantize`: dynamic int8 quantization of a bundle's weight
//! matmuls, in standard ONNX ops (a fused bundle is quantized in its
//! standard-op form, since its packed attention has no int8 MatMul to swap).
//!
//! Every `MatMul(x, Transpose(W))` with a float weight `W` `[out, in]`
//! (the backbone's linear layers; the reward head stays float) becomes
//!
//! ```text
//! xq, x_scale, x_zero = DynamicQuantizeLinear(x)          (uint8, per tensor)
//! y = Cast(MatMulInteger(xq, Wq, x_zero, 0)) · (x_scale · w_scale)
//! ```
//!
//! with `Wq = round(Wᵀ / w_scale)` in int8, symmetric, one scale per output
//! column. That is the pattern ONNX Runtime fuses into its dynamically
//! quantized matmul (u8·s8 on VNNI/AMX), and it runs on any provider that
//! implements the two standard ops.
//!
//! By default the weights use 7 bits (±63, [`WeightRange::Reduced`]): on
//! x86 CPUs without VNNI (AVX2 or AVX-512F only, e.g. AMD EPYC before Zen 4)
//! ONNX Runtime's u8·s8 kernel adds pairs of byte products in saturating
//! 16-bit lanes (`vpmaddubsw`), which full-range weights overflow
//! (2·255·127 = 64770 > 32767) and 7-bit weights cannot (2·255·63 = 32130).
//! A bundle moves between machines, so the default is the range that is
//! exact everywhere; [`WeightRange::Full`] keeps the eighth bit for fleets
//! known to have VNNI or AMX.

use std::collections::HashMap;
use std::path::Path;

use super::{write_bundle_owned, Bundle};
use crate::error::{Error, Result};
use crate::model::head::HEAD_WEIGHT;
use crate::model::Backbone;
use crate::onnx::builder::{tensor_f32, tensor_raw, uses_contrib_ops, Attr};
use crate::onnx::io::{load_external_data, read_model, tensor_to_f32};
use crate::onnx::proto::{data_type, NodeProto};
use crate::onnx::GraphBuilder;

/// The range of the int8 weights (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WeightRange {
    /// ±63: correct on every CPU. Manifest: `int8-dynamic-7bit`.
    #[default]
    Reduced,
    /// ±127: one more bit of weight precision, but x86 CPUs without VNNI
    /// saturate while multiplying and lose accuracy. Manifest: `int8-dynamic`.
    Full,
}

impl WeightRange {
    fn max(self) -> f32 {
        match self {
            WeightRange::Reduced => 63.0,
            WeightRange::Full => 127.0,
        }
    }

    /// The manifest's `quantization` value.
    pub fn label(self) -> &'static str {
        match self {
            WeightRange::Reduced => "int8-dynamic-7bit",
            WeightRange::Full => "int8-dynamic",
        }
    }
}

/// What [`quantize_int8`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuantizeSummary {
    /// Matmuls now in int8.
    pub matmuls: usize,
    /// Weights (values) now stored in int8.
    pub weights: usize,
}

/// Whether a node is `Transpose` with `perm = [1, 0]`.
fn is_transpose_10(n: &NodeProto) -> bool {
    n.op_type() == "Transpose"
        && n.attribute
            .iter()
            .any(|a| a.name() == "perm" && a.ints == [1, 0])
}

/// Symmetric int8 per output column of `Wᵀ`, within ±`range.max()`: `w` is
/// `[out, in]` row-major; returns `Wq` as `[in, out]` row-major and the
/// `out` scales.
fn quantize_columns(
    w: &[f32],
    n_out: usize,
    n_in: usize,
    range: WeightRange,
) -> (Vec<u8>, Vec<f32>) {
    let top = range.max();
    let scales: Vec<f32> = (0..n_out)
        .map(|j| {
            let m = w[j * n_in..(j + 1) * n_in]
                .iter()
                .fold(0f32, |m, v| m.max(v.abs()));
            if m > 0.0 {
                m / top
            } else {
                1.0
            }
        })
        .collect();
    let mut q = vec![0u8; n_in * n_out];
    for j in 0..n_out {
        for i in 0..n_in {
            let v = (w[j * n_in + i] / scales[j]).round().clamp(-top, top) as i8;
            q[i * n_out + j] = v as u8;
        }
    }
    (q, scales)
}

/// Write to `out` a copy of the bundle at `src` whose weight matmuls run in
/// dynamic int8, with 7-bit weights ([`WeightRange::Reduced`]). The
/// manifest records `quantization: "int8-dynamic-7bit"`.
pub fn quantize_int8(src: &Path, out: &Path, overwrite: bool) -> Result<(Bundle, QuantizeSummary)> {
    quantize_int8_with(src, out, overwrite, WeightRange::default())
}

/// [`quantize_int8`] with the weights' range chosen.
pub fn quantize_int8_with(
    src: &Path,
    out: &Path,
    overwrite: bool,
    range: WeightRange,
) -> Result<(Bundle, QuantizeSummary)> {
    let bundle = Bundle::open(src)?;
    let mut manifest = bundle.manifest().clone();
    if manifest.quantization.is_some() {
        return Err(Error::InvalidArgument(format!(
            "{} is already quantized ({})",
            src.display(),
            manifest.quantization.as_deref().unwrap_or_default()
        )));
    }
    let mut model = read_model(&bundle.model_path())?;
    load_external_data(&mut model, bundle.dir(), super::MODEL_FILE)?;
    crate::model::weights::refuse_half_precision(&model, &bundle.model_path())?;
    if model.graph.as_ref().is_some_and(uses_contrib_ops) {
        // A fused graph packs q, k and v into ONNX Runtime's Attention op,
        // out of reach of MatMulInteger: quantize the standard-op form of the
        // same weights instead.
        let config = bundle.dir().join(super::MANIFEST_FILE);
        let backbone = Backbone::from_json(&manifest.architecture.config, &config)?;
        model = backbone.rebuild(
            model,
            &bundle.model_path(),
            manifest.pooling,
            Some(manifest.max_length),
            false,
        )?;
    }
    let graph = model
        .graph
        .take()
        .ok_or_else(|| Error::bundle(src, "model.onnx has no graph"))?;

    // How many nodes read each value.
    let mut readers: HashMap<String, usize> = HashMap::new();
    for n in &graph.node {
        for i in &n.input {
            *readers.entry(i.clone()).or_default() += 1;
        }
    }
    let float_2d: HashMap<String, (usize, usize)> = graph
        .initializer
        .iter()
        .filter(|t| t.data_type == Some(data_type::FLOAT) && t.dims.len() == 2)
        .filter(|t| t.name() != HEAD_WEIGHT)
        .map(|t| {
            (
                t.name().to_string(),
                (t.dims[0] as usize, t.dims[1] as usize),
            )
        })
        .collect();
    // Transposes of such weights read by nothing but matmuls (as their
    // second input): the weights to quantize, by the Transpose's output.
    let mut transposed: HashMap<String, String> = HashMap::new();
    for n in &graph.node {
        if is_transpose_10(n) && float_2d.contains_key(&n.input[0]) && readers[&n.input[0]] == 1 {
            transposed.insert(n.output[0].clone(), n.input[0].clone());
        }
    }
    for n in &graph.node {
        for (k, i) in n.input.iter().enumerate() {
            if transposed.contains_key(i) && !(n.op_type() == "MatMul" && k == 1) {
                transposed.remove(i);
            }
        }
    }
    if transposed.is_empty() {
        return Err(Error::bundle(
            src,
            "model.onnx has no weight matmul to quantize (MatMul of a transposed float weight)",
        ));
    }

    let mut g = GraphBuilder::from_graph(graph);
    let old = std::mem::take(g.nodes_mut());
    let zero = g.const_tensor(
        "int8_zero",
        tensor_raw("int8_zero", data_type::INT8, &[], vec![0]),
    );
    let mut quantized: HashMap<String, (String, String)> = HashMap::new();
    let mut summary = QuantizeSummary {
        matmuls: 0,
        weights: 0,
    };
    for n in old {
        if is_transpose_10(&n) && transposed.contains_key(&n.output[0]) {
            let w_name = &transposed[&n.output[0]];
            let t = g
                .take_initializer(w_name)
                .ok_or_else(|| Error::Internal(format!("no initializer {w_name}")))?;
            let (n_out, n_in) = float_2d[w_name];
            let (q, scales) = quantize_columns(&tensor_to_f32(&t)?, n_out, n_in, range);
            drop(t);
            summary.weights += q.len();
            let qn = format!("{w_name}.int8");
            let sn = format!("{w_name}.scale");
            let qn = g.initializer(tensor_raw(
                &qn,
                data_type::INT8,
                &[n_in as i64, n_out as i64],
                q,
            ));
            let sn = g.initializer(tensor_f32(&sn, &[n_out as i64], &scales));
            quantized.insert(n.output[0].clone(), (qn, sn));
            continue;
        }
        if n.op_type() == "MatMul" && quantized.contains_key(&n.input[1]) {
            let (qn, sn) = quantized[&n.input[1]].clone();
            let scope = g.set_scope(n.name());
            let xq = g.unique("xq");
            let xs = g.unique("x_scale");
            let xz = g.unique("x_zero");
            g.node(
                "DynamicQuantizeLinear",
                &[&n.input[0]],
                &[&xq, &xs, &xz],
                vec![],
            );
            let yi = g.op("MatMulInteger", &[&xq, &qn, &xz, &zero], vec![]);
            let yf = g.op(
                "Cast",
                &[&yi],
                vec![("to", Attr::Int(data_type::FLOAT as i64))],
            );
            let scale = g.op("Mul", &[&xs, &sn], vec![]);
            g.node("Mul", &[&yf, &scale], &[&n.output[0]], vec![]);
            g.set_scope(&scope);
            summary.matmuls += 1;
            continue;
        }
        g.nodes_mut().push(n);
    }
    // Node names must be unique; the rebuilt list reuses positions.
    for (i, n) in g.nodes_mut().iter_mut().enumerate() {
        n.name = Some(format!("{}#{i}", n.op_type()));
    }
    let name = model
        .graph
        .as_ref()
        .and_then(|g| g.name.clone())
        .unwrap_or_else(|| "rewardkit_int8".into());
    model.graph = Some(g.build(&name));
    manifest.quantization = Some(range.label().into());
    manifest.files = None;
    let tokenizer = std::fs::read(bundle.tokenizer_path())
        .map_err(|e| Error::io(bundle.tokenizer_path(), e))?;
    let written = write_bundle_owned(out, &manifest, model, &tokenizer, overwrite)?;
    Ok((written, summary))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_round_trip_within_half_a_step() {
        // w is [out=2, in=3].
        let w = [0.5f32, -1.0, 0.25, 0.0, 0.0, 0.0];
        for (range, top, want) in [
            (WeightRange::Full, 127.0, [64i8, -127, 32]),
            // 0.5 / (1/63) is 31.499998 in f32.
            (WeightRange::Reduced, 63.0, [31, -63, 16]),
        ] {
            let (q, s) = quantize_columns(&w, 2, 3, range);
            assert_eq!(s[1], 1.0, "an all-zero column gets scale 1");
            assert!((s[0] - 1.0 / top).abs() < 1e-9);
            // Wq is [in=3, out=2]: column 0 holds row 0 of w.
            let col0: Vec<i8> = (0..3).map(|i| q[i * 2] as i8).collect();
            assert_eq!(col0, want, "{range:?}");
            for i in 0..3 {
                let back = col0[i] as f32 * s[0];
                assert!((back - w[i]).abs() <= s[0] / 2.0 + 1e-7);
                assert_eq!(q[i * 2 + 1], 0);
            }
        }
    }

    #[test]
    fn the_default_range_cannot_saturate_16_bit_pair_sums() {
        // Two u8 activations times two weights, as vpmaddubsw adds them.
        let top = WeightRange::default().max();
        assert!(2.0 * 255.0 * top <= i16::MAX as f32);
        assert!(2.0 * 255.0 * WeightRange::Full.max() > i16::MAX as f32);
    }
}
