//! Ops that move or reshape data without arithmetic.

use super::super::{Emit, NodeView};
use super::dy;
use crate::error::{Error, Result};
use crate::onnx::builder::Attr;
use crate::onnx::shape::{attr_int, attr_ints, norm_axis};

pub fn transpose(
    e: &mut Emit<'_>,
    n: &NodeView<'_>,
    dys: &[Option<String>],
) -> Result<Vec<Option<String>>> {
    let rank = e.rank(n.input(0))?;
    let perm = attr_ints(n.node, "perm").unwrap_or_else(|| (0..rank as i64).rev().collect());
    let mut inv = vec![0i64; perm.len()];
    for (i, &p) in perm.iter().enumerate() {
        let p = usize::try_from(p)
            .ok()
            .filter(|&p| p < inv.len())
            .ok_or_else(|| Error::InvalidArgument(format!("bad perm {perm:?}")))?;
        inv[p] = i as i64;
    }
    Ok(vec![Some(e.op(
        "Transpose",
        &[dy(dys)?],
        vec![("perm", Attr::Ints(inv))],
    ))])
}

/// Reshape, Unsqueeze, Squeeze, Flatten: the gradient is reshaped back.
pub fn reshape_like(
    e: &mut Emit<'_>,
    n: &NodeView<'_>,
    dys: &[Option<String>],
) -> Result<Vec<Option<String>>> {
    let shape = e.shape_of(n.input(0));
    let mut out = vec![Some(e.op("Reshape", &[dy(dys)?, &shape], vec![]))];
    out.resize(n.node.input.len(), None);
    Ok(out)
}

pub fn expand(
    e: &mut Emit<'_>,
    n: &NodeView<'_>,
    dys: &[Option<String>],
) -> Result<Vec<Option<String>>> {
    Ok(vec![
        Some(e.unbroadcast(dy(dys)?, n.output(0), n.input(0))?),
        None,
    ])
}

pub fn concat(
    e: &mut Emit<'_>,
    n: &NodeView<'_>,
    dys: &[Option<String>],
) -> Result<Vec<Option<String>>> {
    let g = dy(dys)?;
    let rank = e.rank(n.input(0))?;
    let ax = norm_axis(attr_int(n.node, "axis", 0), rank)
        .ok_or_else(|| Error::InvalidArgument("bad concat axis".into()))?;
    let k = n.node.input.len();
    // Sizes of the pieces along the axis, at run time.
    let idx = e.g.const_i64("axis", &[1], &[ax as i64]);
    let mut sizes = Vec::with_capacity(k);
    for i in 0..k {
        let s = e.op("Shape", &[n.input(i)], vec![]);
        sizes.push(e.op("Gather", &[&s, &idx], vec![("axis", Attr::Int(0))]));
    }
    let refs: Vec<&str> = sizes.iter().map(String::as_str).collect();
    let split = e.op("Concat", &refs, vec![("axis", Attr::Int(0))]);
    let outs: Vec<String> = (0..k).map(|_| e.g.unique("split")).collect();
    let out_refs: Vec<&str> = outs.iter().map(String::as_str).collect();
    e.g.node(
        "Split",
        &[g, &split],
        &out_refs,
        vec![("axis", Attr::Int(ax as i64))],
    );
    Ok(outs
        .into_iter()
        .enumerate()
        .map(|(i, o)| n.needs(i).then_some(o))
        .collect())
}

pub fn split(
    e: &mut Emit<'_>,
    n: &NodeView<'_>,
    dys: &[Option<String>],
) -> Result<Vec<Option<String>>> {
    let rank = e.rank(n.input(0))?;
    let ax = norm_axis(attr_int(n.node, "axis", 0), rank)
        .ok_or_else(|| Error::InvalidArgument("bad split axis".into()))?;
    let parts: Vec<String> = n
        .node
        .output
        .iter()
        .zip(dys)
        .map(|(o, d)| match d {
            Some(d) => d.clone(),
            None => e.zeros_like(o),
        })
        .collect();
    let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
    let mut out = vec![Some(e.op(
        "Concat",
        &refs,
        vec![("axis", Attr::Int(ax as i64))],
    ))];
    out.resize(n.node.input.len(), None);
    Ok(out)
}
