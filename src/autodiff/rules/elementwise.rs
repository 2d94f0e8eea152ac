//! Elementwise arithmetic with numpy broadcasting.

use super::super::{Emit, NodeView};
use super::dy;
use crate::error::{Error, Result};

/// Gradient `g` (shaped like output 0) summed back to input `i`'s shape.
fn back(e: &mut Emit<'_>, n: &NodeView<'_>, g: &str, i: usize) -> Result<Option<String>> {
    Ok(Some(e.unbroadcast(g, n.output(0), n.input(i))?))
}

pub fn add(
    e: &mut Emit<'_>,
    n: &NodeView<'_>,
    dys: &[Option<String>],
) -> Result<Vec<Option<String>>> {
    let g = dy(dys)?;
    let a = if n.needs(0) { back(e, n, g, 0)? } else { None };
    let b = if n.needs(1) { back(e, n, g, 1)? } else { None };
    Ok(vec![a, b])
}

pub fn sub(
    e: &mut Emit<'_>,
    n: &NodeView<'_>,
    dys: &[Option<String>],
) -> Result<Vec<Option<String>>> {
    let g = dy(dys)?;
    let a = if n.needs(0) { back(e, n, g, 0)? } else { None };
    let b = if n.needs(1) {
        let ng = e.neg(g);
        back(e, n, &ng, 1)?
    } else {
        None
    };
    Ok(vec![a, b])
}

pub fn mul(
    e: &mut Emit<'_>,
    n: &NodeView<'_>,
    dys: &[Option<String>],
) -> Result<Vec<Option<String>>> {
    let g = dy(dys)?;
    let a = if n.needs(0) {
        let t = e.mul(g, n.input(1));
        back(e, n, &t, 0)?
    } else {
        None
    };
    let b = if n.needs(1) {
        let t = e.mul(g, n.input(0));
        back(e, n, &t, 1)?
    } else {
        None
    };
    Ok(vec![a, b])
}

pub fn div(
    e: &mut Emit<'_>,
    n: &NodeView<'_>,
    dys: &[Option<String>],
) -> Result<Vec<Option<String>>> {
    let g = dy(dys)?;
    let ga = e.div(g, n.input(1));
    let a = if n.needs(0) {
        back(e, n, &ga, 0)?
    } else {
        None
    };
    let b = if n.needs(1) {
        // d(a/b)/db = -(a/b)/b = -y/b
        let t = e.mul(&ga, n.output(0));
        let t = e.neg(&t);
        back(e, n, &t, 1)?
    } else {
        None
    };
    Ok(vec![a, b])
}

pub fn neg(
    e: &mut Emit<'_>,
    _n: &NodeView<'_>,
    dys: &[Option<String>],
) -> Result<Vec<Option<String>>> {
    Ok(vec![Some(e.neg(dy(dys)?))])
}

pub fn identity(
    _e: &mut Emit<'_>,
    _n: &NodeView<'_>,
    dys: &[Option<String>],
) -> Result<Vec<Option<String>>> {
    Ok(vec![Some(dy(dys)?.to_string())])
}

pub fn cast(
    e: &mut Emit<'_>,
    n: &NodeView<'_>,
    dys: &[Option<String>],
) -> Result<Vec<Option<String>>> {
    let g = dy(dys)?;
    Ok(vec![Some(e.cast_like(g, n.input(0)))])
}

pub fn sum(
    e: &mut Emit<'_>,
    n: &NodeView<'_>,
    dys: &[Option<String>],
) -> Result<Vec<Option<String>>> {
    let g = dy(dys)?;
    (0..n.node.input.len())
        .map(|i| {
            if n.needs(i) {
                back(e, n, g, i)
            } else {
                Ok(None)
            }
        })
        .collect()
}

pub fn pow(
    e: &mut Emit<'_>,
    n: &NodeView<'_>,
    dys: &[Option<String>],
) -> Result<Vec<Option<String>>> {
    if n.needs(1) {
        return Err(Error::InvalidArgument(
            "gradients through a Pow exponent are not supported".into(),
        ));
    }
    let g = dy(dys)?;
    // d(x^p)/dx = p · x^(p-1)
    let one = e.f32(1.0);
    let pm1 = e.sub(n.input(1), &one);
    let xp = e.op("Pow", &[n.input(0), &pm1], vec![]);
    let t = e.mul(&xp, n.input(1));
    let t = e.mul(&t, g);
    Ok(vec![back(e, n, &t, 0)?, None])
}

pub fn sqrt(
    e: &mut Emit<'_>,
    n: &NodeView<'_>,
    dys: &[Option<String>],
) -> Result<Vec<Option<String>>> {
    let g = dy(dys)?;
    let half = e.f32(0.5);
    let t = e.div(g, n.output(0));
    Ok(vec![Some(e.mul(&t, &half))])
}

pub fn exp(
    e: &mut Emit<'_>,
    n: &NodeView<'_>,
    dys: &[Option<String>],
) -> Result<Vec<Option<String>>> {
    Ok(vec![Some(e.mul(dy(dys)?, n.output(0)))])
}

pub fn log(
    e: &mut Emit<'_>,
    n: &NodeView<'_>,
    dys: &[Option<String>],
) -> Result<Vec<Option<String>>> {
    Ok(vec![Some(e.div(dy(dys)?, n.input(0)))])
}

pub fn abs(
    e: &mut Emit<'_>,
    n: &NodeView<'_>,
    dys: &[Option<String>],
) -> Result<Vec<Option<String>>> {
    let s = e.op("Sign", &[n.input(0)], vec![]);
    Ok(vec![Some(e.mul(dy(dys)?, &s))])
}

pub fn where_(
    e: &mut Emit<'_>,
    n: &NodeView<'_>,
    dys: &[Option<String>],
) -> Result<Vec<Option<String>>> {
    let g = dy(dys)?;
    let zero = e.f32(0.0);
    let zero = e.cast_like(&zero, n.input(1));
    let a = if n.needs(1) {
        let t = e.op("Where", &[n.input(0), g, &zero], vec![]);
        back(e, n, &t, 1)?
    } else {
        None
    };
    let b = if n.needs(2) {
        let t = e.op("Where", &[n.input(0), &zero, g], vec![]);
        back(e, n, &t, 2)?
    } else {
        None
    };
    Ok(vec![None, a, b])
}

/// Max/Min of two inputs: the gradient goes to the input that was selected;
/// on ties the first input takes all of it.
fn select2(
    e: &mut Emit<'_>,
    n: &NodeView<'_>,
    dys: &[Option<String>],
    cmp: &str,
) -> Result<Vec<Option<String>>> {
    if n.node.input.len() != 2 {
        return Err(Error::InvalidArgument(
            "only two-input Max/Min is differentiable".into(),
        ));
    }
    let g = dy(dys)?;
    let pick_a = e.op(cmp, &[n.input(0), n.input(1)], vec![]);
    let zero = e.f32(0.0);
    let a = if n.needs(0) {
        let t = e.op("Where", &[&pick_a, g, &zero], vec![]);
        back(e, n, &t, 0)?
    } else {
        None
    };
    let b = if n.needs(1) {
        let t = e.op("Where", &[&pick_a, &zero, g], vec![]);
        back(e, n, &t, 1)?
    } else {
        None
    };
    Ok(vec![a, b])
}

pub fn max(
    e: &mut Emit<'_>,
    n: &NodeView<'_>,
    dys: &[Option<String>],
) -> Result<Vec<Option<String>>> {
    select2(e, n, dys, "GreaterOrEqual")
}

pub fn min(
    e: &mut Emit<'_>,
    n: &NodeView<'_>,
    dys: &[Option<String>],
) -> Result<Vec<Option<String>>> {
    select2(e, n, dys, "LessOrEqual")
}
