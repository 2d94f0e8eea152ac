//! Normalisation.

use super::super::{Emit, NodeView};
use super::dy;
use crate::error::{Error, Result};
use crate::onnx::proto::data_type;
use crate::onnx::shape::{attr_int, norm_axis};

/// LayerNormalization over axes `[axis, rank)`, using the forward pass's
/// mean and inverse standard deviation (outputs 1 and 2, which the autodiff
/// adds to forward nodes). With x̂ = (x − μ)·σ⁻¹ and g = dy·γ:
/// dx = σ⁻¹ · (g − mean(g) − x̂ · mean(g · x̂)); dγ = Σ dy·x̂; dβ = Σ dy.
pub fn layer_norm(
    e: &mut Emit<'_>,
    n: &NodeView<'_>,
    dys: &[Option<String>],
) -> Result<Vec<Option<String>>> {
    let g = dy(dys)?;
    let x = n.input(0);
    let (mean, inv_std) = (n.output(1), n.output(2));
    if mean.is_empty() || inv_std.is_empty() {
        return Err(Error::Internal(
            "LayerNormalization without its mean/inv_std outputs".into(),
        ));
    }
    let rank = e.rank(x)?;
    let ax = norm_axis(attr_int(n.node, "axis", -1), rank)
        .ok_or_else(|| Error::InvalidArgument("bad LayerNormalization axis".into()))?;
    let norm_axes: Vec<i64> = (ax as i64..rank as i64).collect();
    let lead_axes: Vec<i64> = (0..ax as i64).collect();
    let f32_input = e.shape(x).is_ok_and(|s| s.elem_type == data_type::FLOAT);
    // rewardkit's CPU kernel: dx and dy·x̂ in one pass over each row
    // (normalisation over the last axis only).
    let fused = if e.cpu_kernels && f32_input && ax + 1 == rank && n.needs(0) {
        let outs = [e.g.unique("grad_ln_dx"), e.g.unique("grad_ln_dyxhat")];
        e.g.node(
            crate::autodiff::FUSED_LAYER_NORM_GRAD,
            &[g, x, n.input(1), mean, inv_std],
            &[&outs[0], &outs[1]],
            vec![],
        );
        e.g.set_last_domain(crate::onnx::builder::RK_DOMAIN);
        Some(outs)
    } else {
        None
    };
    // x̂ = (x − μ)·σ⁻¹, unless the kernel made dy·x̂ itself.
    let xhat = if fused.is_none() {
        let centered = e.sub(x, mean);
        e.mul(&centered, inv_std)
    } else {
        String::new()
    };

    let dx = if let Some([dx, _]) = &fused {
        Some(dx.clone())
    } else if n.needs(0) {
        let gg = e.mul(g, n.input(1));
        // Mean over the normalised axes = sum / count; count from the static shape.
        let count: i64 = e.shape(x)?.dims[ax..]
            .iter()
            .map(|d| d.known())
            .product::<Option<i64>>()
            .ok_or_else(|| {
                Error::InvalidArgument(format!("the normalised dims of {x} must be known"))
            })?;
        let inv_count = e.f32(1.0 / count as f32);
        let s1 = e.reduce_sum(&gg, &norm_axes, true);
        let m1 = e.mul(&s1, &inv_count);
        let gx = e.mul(&gg, &xhat);
        let s2 = e.reduce_sum(&gx, &norm_axes, true);
        let m2 = e.mul(&s2, &inv_count);
        let t = e.sub(&gg, &m1);
        let u = e.mul(&xhat, &m2);
        let v = e.sub(&t, &u);
        Some(e.mul(&v, inv_std))
    } else {
        None
    };
    // dγ and dβ sum `t` over the leading (batch) axes down to the shape of
    // the parameter `p`.
    let dims = e.shape(x)?.dims.clone();
    let sum_lead = |e: &mut Emit<'_>, t: &str, p: &str| -> Result<String> {
        if lead_axes.is_empty() {
            return Ok(t.to_string());
        }
        Ok(match e.sum_leading(t, &dims, ax)? {
            Some(s) => {
                let shape = e.shape_of(p);
                e.op("Reshape", &[&s, &shape], vec![])
            }
            None => e.reduce_sum(t, &lead_axes, false),
        })
    };
    let dgamma = if n.needs(1) {
        let t = match &fused {
            Some([_, dy_xhat]) => dy_xhat.clone(),
            None => e.mul(g, &xhat),
        };
        Some(sum_lead(e, &t, n.input(1))?)
    } else {
        None
    };
    let dbeta = if n.needs(2) {
        Some(sum_lead(e, g, n.input(2))?)
    } else {
        None
    };
    Ok(vec![dx, dgamma, dbeta])
}
