//! Gradient checks: Gather as an embedding lookup (repeated indices add up)
//! and as index selection on other axes.

mod common;

use common::gradcheck::{check, Case, Input::*};
use rewardkit::onnx::Attr;

#[test]
fn embedding_lookup_with_repeats() {
    check(
        Case {
            name: "embed",
            inputs: vec![
                ("w", Param(vec![6, 4])),
                ("ids", Ints(vec![2, 3], vec![1, 5, 1, 0, 5, 5])),
            ],
            positive: false,
        },
        |g, n| {
            g.op(
                "Gather",
                &[&n["w"], &n["ids"]],
                vec![("axis", Attr::Int(0))],
            )
        },
    );
}

#[test]
fn gather_other_axes_and_negative_indices() {
    check(
        Case {
            name: "cls",
            inputs: vec![("x", Param(vec![2, 5, 3])), ("i", Ints(vec![], vec![0]))],
            positive: false,
        },
        |g, n| g.op("Gather", &[&n["x"], &n["i"]], vec![("axis", Attr::Int(1))]),
    );
    check(
        Case {
            name: "axis2",
            inputs: vec![
                ("x", Param(vec![2, 3, 4])),
                ("i", Ints(vec![2, 2], vec![3, -1, 0, 3])),
            ],
            positive: false,
        },
        |g, n| g.op("Gather", &[&n["x"], &n["i"]], vec![("axis", Attr::Int(2))]),
    );
}
