//! Gradient checks: reshaping and data movement.

mod common;

use common::gradcheck::{check, Case, Input::*};
use rewardkit::onnx::Attr;

#[test]
fn transpose_reshape_unsqueeze_squeeze_flatten() {
    check(
        Case {
            name: "transpose",
            inputs: vec![("x", Param(vec![2, 3, 4]))],
            positive: false,
        },
        |g, n| {
            g.op(
                "Transpose",
                &[&n["x"]],
                vec![("perm", Attr::Ints(vec![2, 0, 1]))],
            )
        },
    );
    check(
        Case {
            name: "reshape",
            inputs: vec![
                ("x", Param(vec![2, 3, 4])),
                ("s", Ints(vec![3], vec![0, 4, 3])),
            ],
            positive: false,
        },
        |g, n| g.op("Reshape", &[&n["x"], &n["s"]], vec![]),
    );
    check(
        Case {
            name: "unsqueeze",
            inputs: vec![("x", Param(vec![2, 3])), ("a", Ints(vec![2], vec![0, 3]))],
            positive: false,
        },
        |g, n| g.op("Unsqueeze", &[&n["x"], &n["a"]], vec![]),
    );
    check(
        Case {
            name: "squeeze",
            inputs: vec![("x", Param(vec![2, 1, 3])), ("a", Ints(vec![1], vec![1]))],
            positive: false,
        },
        |g, n| g.op("Squeeze", &[&n["x"], &n["a"]], vec![]),
    );
    check(
        Case {
            name: "flatten",
            inputs: vec![("x", Param(vec![2, 3, 4]))],
            positive: false,
        },
        |g, n| g.op("Flatten", &[&n["x"]], vec![("axis", Attr::Int(1))]),
    );
}

#[test]
fn expand_concat_split() {
    check(
        Case {
            name: "expand",
            inputs: vec![
                ("x", Param(vec![3, 1])),
                ("s", Ints(vec![3], vec![2, 3, 4])),
            ],
            positive: false,
        },
        |g, n| g.op("Expand", &[&n["x"], &n["s"]], vec![]),
    );
    check(
        Case {
            name: "concat",
            inputs: vec![
                ("a", Param(vec![2, 3])),
                ("b", Param(vec![2, 1])),
                ("c", Param(vec![2, 2])),
            ],
            positive: false,
        },
        |g, n| {
            g.op(
                "Concat",
                &[&n["a"], &n["b"], &n["c"]],
                vec![("axis", Attr::Int(1))],
            )
        },
    );
    // Split into two halves and recombine them asymmetrically.
    check(
        Case {
            name: "split",
            inputs: vec![("x", Param(vec![4, 3]))],
            positive: false,
        },
        |g, n| {
            let (p, q) = (g.unique("p"), g.unique("q"));
            g.node("Split", &[&n["x"]], &[&p, &q], vec![("axis", Attr::Int(0))]);
            let two = g.const_f32("two", 2.0);
            let q2 = g.op("Mul", &[&q, &two], vec![]);
            g.op("Sub", &[&p, &q2], vec![])
        },
    );
    // Only one output of a split is used: the other gets zeros.
    check(
        Case {
            name: "split_one_used",
            inputs: vec![("x", Param(vec![4, 3]))],
            positive: false,
        },
        |g, n| {
            let (p, q) = (g.unique("p"), g.unique("q"));
            g.node("Split", &[&n["x"]], &[&p, &q], vec![("axis", Attr::Int(0))]);
            g.op("Identity", &[&q], vec![])
        },
    );
}
