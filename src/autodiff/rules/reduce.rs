//! Reductions.

use super::super::{Emit, NodeView};
use super::dy;
use crate::error::{Error, Result};
use crate::onnx::builder::Attr;
use crate::onnx::shape::{attr_int, attr_ints, norm_axis};

/// The reduced axes (normalised, sorted), from the axes input or attribute.
fn axes(e: &Emit<'_>, n: &NodeView<'_>) -> Result<Vec<i64>> {
    let rank = e.rank(n.input(0))?;
    let given = match n.node.input.get(1).filter(|s| !s.is_empty()) {
        Some(name) => Some(
            e.shapes
                .const_i64(name)
                .ok_or_else(|| {
                    Error::InvalidArgument(format!("reduction axes {name} must be a constant"))
                })?
                .to_vec(),
        ),
        None => attr_ints(n.node, "axes"),
    };
    let mut axes: Vec<i64> = match given {
        Some(a) if !a.is_empty() => a
            .iter()
            .map(|&x| {
                norm_axis(x, rank)
                    .map(|v| v as i64)
                    .ok_or_else(|| Error::InvalidArgument(format!("axis {x} out of range")))
            })
            .collect::<Result<_>>()?,
        _ if attr_int(n.node, "noop_with_empty_axes", 0) != 0 => vec![],
        _ => (0..rank as i64).collect(),
    };
    axes.sort();
    Ok(axes)
}

/// Broadcast the output gradient back over the reduced axes.
fn spread(e: &mut Emit<'_>, n: &NodeView<'_>, g: &str) -> Result<String> {
    let ax = axes(e, n)?;
    let keep = attr_int(n.node, "keepdims", 1) != 0;
    let g = if keep || ax.is_empty() {
        g.to_string()
    } else {
        let a = e.i64s(&ax);
        e.op("Unsqueeze", &[g, &a], vec![])
    };
    let shape = e.shape_of(n.input(0));
    Ok(e.op("Expand", &[&g, &shape], vec![]))
}

pub fn reduce_sum(
    e: &mut Emit<'_>,
    n: &NodeView<'_>,
    dys: &[Option<String>],
) -> Result<Vec<Option<String>>> {
    let mut out = vec![Some(spread(e, n, dy(dys)?)?)];
    out.resize(n.node.input.len(), None);
    Ok(out)
}

pub fn reduce_mean(
    e: &mut Emit<'_>,
    n: &NodeView<'_>,
    dys: &[Option<String>],
) -> Result<Vec<Option<String>>> {
    let g = spread(e, n, dy(dys)?)?;
    // Divide by the number of reduced elements: size(x) / size(y).
    let sx = e.op("Size", &[n.input(0)], vec![]);
    let sy = e.op("Size", &[n.output(0)], vec![]);
    let fx = e.op(
        "Cast",
        &[&sx],
        vec![("to", Attr::Int(crate::onnx::proto::data_type::FLOAT as i64))],
    );
    let fy = e.op(
        "Cast",
        &[&sy],
        vec![("to", Attr::Int(crate::onnx::proto::data_type::FLOAT as i64))],
    );
    let count = e.div(&fx, &fy);
    let mut out = vec![Some(e.div(&g, &count))];
    out.resize(n.node.input.len(), None);
    Ok(out)
}
