//! Gather (embedding lookups and index selection): the gradient scatters the
//! output gradient back, adding where an index repeats.

use super::super::{Emit, NodeView};
use crate::error::{Error, Result};
use crate::onnx::builder::Attr;
use crate::onnx::shape::{attr_int, norm_axis};

pub fn gather(
    e: &mut Emit<'_>,
    n: &NodeView<'_>,
    dys: &[Option<String>],
) -> Result<Vec<Option<String>>> {
    let g = dys
        .first()
        .and_then(|d| d.as_deref())
        .ok_or_else(|| Error::Internal("rule called without an output gradient".into()))?;
    let (data, idx) = (n.input(0), n.input(1));
    let r = e.rank(data)?;
    let q = e.rank(idx)?;
    let ax = norm_axis(attr_int(n.node, "axis", 0), r)
        .ok_or_else(|| Error::InvalidArgument("bad Gather axis".into()))?;
    // Negative indices count from the end: make them positive.
    let dim_size = {
        let s = e.op("Shape", &[data], vec![]);
        let i = e.g.const_i64("axis", &[], &[ax as i64]);
        e.op("Gather", &[&s, &i], vec![("axis", Attr::Int(0))])
    };
    let idx = {
        let zero = e.g.const_i64("zero", &[], &[0]);
        let neg = e.op("Less", &[idx, &zero], vec![]);
        let wrapped = e.op("Add", &[idx, &dim_size], vec![]);
        e.op("Where", &[&neg, &wrapped, idx], vec![])
    };
    let minus1 = e.i64s(&[-1]);
    let indices = e.op("Unsqueeze", &[&idx, &minus1], vec![]);
    if ax == 0 {
        let zeros = e.zeros_like(data);
        let out = e.op(
            "ScatterND",
            &[&zeros, &indices, g],
            vec![("reduction", Attr::String("add".into()))],
        );
        return Ok(vec![Some(out), None]);
    }
    // Move the gathered axis to the front, scatter, and move it back.
    // data' = data with axis `ax` first; dy' = dy with the index dims first.
    let mut dperm: Vec<i64> = vec![ax as i64];
    dperm.extend((0..r as i64).filter(|&i| i != ax as i64));
    let mut gperm: Vec<i64> = (ax as i64..(ax + q) as i64).collect();
    gperm.extend(0..ax as i64);
    gperm.extend((ax + q) as i64..(r + q - 1) as i64);
    let data_t = e.op(
        "Transpose",
        &[data],
        vec![("perm", Attr::Ints(dperm.clone()))],
    );
    let g_t = e.op("Transpose", &[g], vec![("perm", Attr::Ints(gperm))]);
    let zeros = e.zeros_like(&data_t);
    let scattered = e.op(
        "ScatterND",
        &[&zeros, &indices, &g_t],
        vec![("reduction", Attr::String("add".into()))],
    );
    let mut inv = vec![0i64; r];
    for (i, &p) in dperm.iter().enumerate() {
        inv[p as usize] = i as i64;
    }
    Ok(vec![
        Some(e.op("Transpose", &[&scattered], vec![("perm", Attr::Ints(inv))])),
        None,
    ])
}
