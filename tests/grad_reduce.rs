//! Gradient checks: reductions.

mod common;

use common::gradcheck::{check, Case, Input::*};
use rewardkit::onnx::Attr;

#[test]
fn reduce_sum_axes_and_keepdims() {
    for (axes, keep) in [(vec![1], 1), (vec![0, 2], 0), (vec![-1], 0)] {
        let name = format!("reducesum_{axes:?}_{keep}");
        let k = axes.len();
        check(
            Case {
                name: &name,
                inputs: vec![("x", Param(vec![2, 3, 4])), ("a", Ints(vec![k], axes))],
                positive: false,
            },
            |g, n| {
                g.op(
                    "ReduceSum",
                    &[&n["x"], &n["a"]],
                    vec![("keepdims", Attr::Int(keep))],
                )
            },
        );
    }
    check(
        Case {
            name: "reducesum_all",
            inputs: vec![("x", Param(vec![2, 3]))],
            positive: false,
        },
        |g, n| g.op("ReduceSum", &[&n["x"]], vec![("keepdims", Attr::Int(1))]),
    );
}

#[test]
fn reduce_mean_attribute_axes() {
    // Opset 17's ReduceMean takes axes as an attribute.
    check(
        Case {
            name: "reducemean",
            inputs: vec![("x", Param(vec![2, 3, 4]))],
            positive: false,
        },
        |g, n| {
            g.op(
                "ReduceMean",
                &[&n["x"]],
                vec![("axes", Attr::Ints(vec![1])), ("keepdims", Attr::Int(0))],
            )
        },
    );
}
