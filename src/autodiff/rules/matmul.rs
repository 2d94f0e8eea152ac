//! Matrix products.

use super::super::{Emit, NodeView};
use super::dy;
use crate::error::{Error, Result};
use crate::onnx::builder::Attr;
use crate::onnx::shape::{attr_float, attr_int};

/// `Y = A · B` with batch broadcasting. When `B` is a plain matrix and `A`
/// has batch dims (activations times a weight), the weight gradient is one
/// large product over the flattened batch instead of a batched product
/// followed by a sum.
pub fn matmul(
    e: &mut Emit<'_>,
    n: &NodeView<'_>,
    dys: &[Option<String>],
) -> Result<Vec<Option<String>>> {
    let g = dy(dys)?;
    let (a, b, y) = (n.input(0), n.input(1), n.output(0));
    let (ra, rb) = (e.rank(a)?, e.rank(b)?);
    if ra < 2 || rb < 2 {
        return Err(Error::InvalidArgument(format!(
            "MatMul with a rank-1 operand (ranks {ra}, {rb}) is not differentiable here"
        )));
    }
    let da = if n.needs(0) {
        let bt = e.transpose_last2(b, rb);
        let t = e.op("MatMul", &[g, &bt], vec![]);
        Some(e.unbroadcast_product(&t, y, a)?)
    } else {
        None
    };
    let db = if n.needs(1) {
        if rb == 2 && ra > 2 {
            let a2 = e.as_rows(a, a)?;
            let g2 = e.as_rows(g, y)?;
            let a2t = e.op("Transpose", &[&a2], vec![("perm", Attr::Ints(vec![1, 0]))]);
            Some(e.op("MatMul", &[&a2t, &g2], vec![]))
        } else {
            let at = e.transpose_last2(a, ra);
            let t = e.op("MatMul", &[&at, g], vec![]);
            Some(e.unbroadcast_product(&t, y, b)?)
        }
    } else {
        None
    };
    Ok(vec![da, db])
}

/// `Y = α · op(A) · op(B) + β · C`.
pub fn gemm(
    e: &mut Emit<'_>,
    n: &NodeView<'_>,
    dys: &[Option<String>],
) -> Result<Vec<Option<String>>> {
    let g = dy(dys)?;
    let (a, b) = (n.input(0), n.input(1));
    let ta = attr_int(n.node, "transA", 0) != 0;
    let tb = attr_int(n.node, "transB", 0) != 0;
    let alpha = attr_float(n.node, "alpha", 1.0);
    let beta = attr_float(n.node, "beta", 1.0);
    let gemm = |e: &mut Emit<'_>, x: &str, y: &str, tx: bool, ty: bool| {
        e.op(
            "Gemm",
            &[x, y],
            vec![
                ("transA", Attr::Int(tx as i64)),
                ("transB", Attr::Int(ty as i64)),
                ("alpha", Attr::Float(alpha)),
            ],
        )
    };
    // dA = α · dY · op(B)ᵀ (transposed back if A was), dB likewise.
    let da = n.needs(0).then(|| {
        if ta {
            gemm(e, b, g, tb, true)
        } else {
            gemm(e, g, b, false, !tb)
        }
    });
    let db = n.needs(1).then(|| {
        if tb {
            gemm(e, g, a, true, ta)
        } else {
            gemm(e, a, g, !ta, false)
        }
    });
    let dc = if n.needs(2) {
        let t = if beta != 1.0 {
            let c = e.f32(beta);
            e.mul(g, &c)
        } else {
            g.to_string()
        };
        Some(e.unbroadcast(&t, n.output(0), n.input(2))?)
    } else {
        None
    };
    Ok(vec![da, db, dc])
}
