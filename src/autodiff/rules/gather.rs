//! Gather (embedding lookups and index selection): the gradient scatters the
//! output gradient back, adding where an index repeats.
//!
//! The scatter is a `ScatterElements` with `reduction = "add"` over indices
//! expanded to the gradient's shape, not the more direct `ScatterND`:
//! ONNX Runtime's CPU `ScatterND` splits the index entries over its thread
//! pool and adds into the output without synchronisation, so with more than
//! one intra-op thread, repeated indices (the same token in several rows, the
//! two token-type rows, every position in every row) race and updates are
//! lost at random. Its `ScatterElements` runs one loop.

use super::super::{Emit, NodeView};
use crate::error::{Error, Result};
use crate::onnx::builder::Attr;
use crate::onnx::shape::{attr_int, norm_axis};

pub fn gather(
    e: &mut Emit<'_>,
    n: &NodeView<'_>,
    dys: &[Option<String>],
) -> Result<Vec<Option<String>>> {
    let g = super::dy(dys)?;
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
    if ax == 0 {
        let out = scatter_add_rows(e, data, r, &idx, g);
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
    let scattered = scatter_add_rows(e, &data_t, r, &idx, &g_t);
    let mut inv = vec![0i64; r];
    for (i, &p) in dperm.iter().enumerate() {
        inv[p as usize] = i as i64;
    }
    Ok(vec![
        Some(e.op("Transpose", &[&scattered], vec![("perm", Attr::Ints(inv))])),
        None,
    ])
}

/// Tables up to this many rows (BERT's token types, for one) get their
/// gradient as a product with the one-hot rows instead of a scatter. ONNX
/// Runtime's `ScatterElements` is one loop over every gradient element
/// (about 6 ms for 2048 tokens × 384 at 2 rows, whatever the table's size),
/// while the product costs 2·rows·tokens·width flops: less up to a few
/// hundred rows.
const ONE_HOT_ROWS: i64 = 256;

/// The gradient of a two-dimensional table of `v` rows: `onehot(idx)ᵀ · g`,
/// with `g` flattened to one row per index.
fn one_hot_rows(e: &mut Emit<'_>, v: i64, data: &str, idx: &str, g: &str) -> String {
    let column = e.i64s(&[-1, 1]);
    let idx2 = e.op("Reshape", &[idx, &column], vec![]);
    let all: Vec<i64> = (0..v).collect();
    let row_ids = e.g.const_i64("row_ids", &[1, v], &all);
    let hit = e.op("Equal", &[&idx2, &row_ids], vec![]);
    let hot = e.op(
        "Cast",
        &[&hit],
        vec![("to", Attr::Int(crate::onnx::proto::data_type::FLOAT as i64))],
    );
    let hot_t = e.op("Transpose", &[&hot], vec![("perm", Attr::Ints(vec![1, 0]))]);
    let table = e.shape_of(data);
    let g2 = one_row_per_index(e, &table, g);
    e.op("MatMul", &[&hot_t, &g2], vec![])
}

/// `g` reshaped to `[-1, width]`, `width` being dim 1 of the two-dimensional
/// shape `table` (an int64 shape value): one row per gathered index.
fn one_row_per_index(e: &mut Emit<'_>, table: &str, g: &str) -> String {
    let (one, two) = (e.i64s(&[1]), e.i64s(&[2]));
    let width = e.op("Slice", &[table, &one, &two], vec![]);
    let minus1 = e.i64s(&[-1]);
    let shape = e.op("Concat", &[&minus1, &width], vec![("axis", Attr::Int(0))]);
    e.op("Reshape", &[g, &shape], vec![])
}

/// Zeros shaped like `data` (`[V, rest..]`, of rank `rank`) with the rows of `g`
/// (`idx.shape ++ rest`) added at row `idx` (non-negative indices).
///
/// Everything is flattened to two dimensions: `[V, R]` zeros, `[N, R]`
/// updates and the `[N, 1]` indices expanded to `[N, R]`, so one
/// `ScatterElements` (axis 0, add) does it; the result is reshaped back.
///
/// An embedding table is already two-dimensional: it skips both reshapes of
/// the table-sized tensors, so the scatter writes the gradient itself (the
/// reshape back was a full copy of the table per step).
fn scatter_add_rows(e: &mut Emit<'_>, data: &str, rank: usize, idx: &str, g: &str) -> String {
    let flat = rank == 2;
    let rows = e
        .shape(data)
        .ok()
        .and_then(|s| s.dims.first().and_then(|d| d.known()));
    if let Some(v) = rows.filter(|&v| flat && (1..=ONE_HOT_ROWS).contains(&v)) {
        return one_hot_rows(e, v, data, idx, g);
    }
    let zeros = e.zeros_like(data);
    let zeros2 = if flat {
        zeros
    } else {
        let rows_by_rest = e.i64s(&[0, -1]);
        e.op("Reshape", &[&zeros, &rows_by_rest], vec![])
    };
    let shape2 = e.op("Shape", &[&zeros2], vec![]);
    let g2 = one_row_per_index(e, &shape2, g);
    let column = e.i64s(&[-1, 1]);
    let idx2 = e.op("Reshape", &[idx, &column], vec![]);
    let g2_shape = e.op("Shape", &[&g2], vec![]);
    let idx_full = e.op("Expand", &[&idx2, &g2_shape], vec![]);
    let out2 = e.op(
        "ScatterElements",
        &[&zeros2, &idx_full, &g2],
        vec![
            ("axis", Attr::Int(0)),
            ("reduction", Attr::String("add".into())),
        ],
    );
    if flat {
        return out2;
    }
    let data_shape = e.op("Shape", &[data], vec![]);
    e.op("Reshape", &[&out2, &data_shape], vec![])
}
