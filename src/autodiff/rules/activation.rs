//! Activations and softmax.

use super::super::{Emit, NodeView};
use super::dy;
use crate::error::{Error, Result};

use crate::onnx::shape::{attr_int, norm_axis};

pub fn erf(
    e: &mut Emit<'_>,
    n: &NodeView<'_>,
    dys: &[Option<String>],
) -> Result<Vec<Option<String>>> {
    // d erf(x)/dx = 2/√π · exp(-x²)
    let x = n.input(0);
    let x2 = e.mul(x, x);
    let nx2 = e.neg(&x2);
    let ex = e.op("Exp", &[&nx2], vec![]);
    let c = e.f32(std::f32::consts::FRAC_2_SQRT_PI);
    let t = e.mul(&ex, &c);
    Ok(vec![Some(e.mul(dy(dys)?, &t))])
}

pub fn tanh(
    e: &mut Emit<'_>,
    n: &NodeView<'_>,
    dys: &[Option<String>],
) -> Result<Vec<Option<String>>> {
    let y = n.output(0);
    let y2 = e.mul(y, y);
    let one = e.f32(1.0);
    let t = e.sub(&one, &y2);
    Ok(vec![Some(e.mul(dy(dys)?, &t))])
}

pub fn sigmoid(
    e: &mut Emit<'_>,
    n: &NodeView<'_>,
    dys: &[Option<String>],
) -> Result<Vec<Option<String>>> {
    let y = n.output(0);
    let one = e.f32(1.0);
    let omy = e.sub(&one, y);
    let t = e.mul(y, &omy);
    Ok(vec![Some(e.mul(dy(dys)?, &t))])
}

pub fn relu(
    e: &mut Emit<'_>,
    n: &NodeView<'_>,
    dys: &[Option<String>],
) -> Result<Vec<Option<String>>> {
    let zero = e.f32(0.0);
    let pos = e.op("Greater", &[n.input(0), &zero], vec![]);
    Ok(vec![Some(e.op("Where", &[&pos, dy(dys)?, &zero], vec![]))])
}

pub fn softplus(
    e: &mut Emit<'_>,
    n: &NodeView<'_>,
    dys: &[Option<String>],
) -> Result<Vec<Option<String>>> {
    let s = e.op("Sigmoid", &[n.input(0)], vec![]);
    Ok(vec![Some(e.mul(dy(dys)?, &s))])
}

fn axis(e: &Emit<'_>, n: &NodeView<'_>) -> Result<i64> {
    let rank = e.rank(n.input(0))?;
    let a = attr_int(n.node, "axis", -1);
    norm_axis(a, rank)
        .map(|a| a as i64)
        .ok_or_else(|| Error::InvalidArgument(format!("axis {a} out of range for rank {rank}")))
}

pub fn softmax(
    e: &mut Emit<'_>,
    n: &NodeView<'_>,
    dys: &[Option<String>],
) -> Result<Vec<Option<String>>> {
    // dx = y · (dy − Σ(dy · y))
    let ax = axis(e, n)?;
    let y = n.output(0);
    let g = dy(dys)?;
    let gy = e.mul(g, y);
    let s = e.reduce_sum(&gy, &[ax], true);
    let d = e.sub(g, &s);
    Ok(vec![Some(e.mul(y, &d))])
}

pub fn log_softmax(
    e: &mut Emit<'_>,
    n: &NodeView<'_>,
    dys: &[Option<String>],
) -> Result<Vec<Option<String>>> {
    // dx = dy − exp(y) · Σ dy
    let ax = axis(e, n)?;
    let g = dy(dys)?;
    let s = e.reduce_sum(g, &[ax], true);
    let p = e.op("Exp", &[n.output(0)], vec![]);
    let t = e.mul(&p, &s);
    Ok(vec![Some(e.sub(g, &t))])
}
