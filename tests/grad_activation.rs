//! Gradient checks: activations and softmax.

mod common;

use common::gradcheck::{check, Case, Input::*};
use rewardkit::onnx::Attr;

#[test]
fn pointwise_activations() {
    for op in ["Erf", "Tanh", "Sigmoid", "Softplus"] {
        check(
            Case {
                name: op,
                inputs: vec![("x", Param(vec![3, 5]))],
                positive: false,
            },
            |g, n| g.op(op, &[&n["x"]], vec![]),
        );
    }
}

#[test]
fn relu_away_from_zero() {
    // Shift inputs by ±2 so none sits within the finite-difference step of the kink.
    let shift: Vec<f32> = (0..15)
        .map(|i| if i % 3 == 0 { -2.0 } else { 2.0 })
        .collect();
    check(
        Case {
            name: "relu",
            inputs: vec![("x", Param(vec![3, 5])), ("s", Floats(vec![3, 5], shift))],
            positive: true,
        },
        |g, n| {
            let x = g.op("Sub", &[&n["x"], &n["s"]], vec![]);
            g.op("Relu", &[&x], vec![])
        },
    );
}

#[test]
fn softmax_and_log_softmax_on_each_axis() {
    for op in ["Softmax", "LogSoftmax"] {
        for axis in [-1, 0, 1] {
            let name = format!("{op}_{axis}");
            check(
                Case {
                    name: &name,
                    inputs: vec![("x", Param(vec![2, 3, 4]))],
                    positive: false,
                },
                |g, n| g.op(op, &[&n["x"]], vec![("axis", Attr::Int(axis))]),
            );
        }
    }
}
