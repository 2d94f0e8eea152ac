//! Gradient checks: LayerNormalization.

mod common;

use common::gradcheck::{check, Case, Input::*};
use rewardkit::onnx::Attr;

#[test]
fn layer_norm_last_axis_and_two_axes() {
    check(
        Case {
            name: "ln_last",
            inputs: vec![
                ("x", Param(vec![2, 3, 6])),
                ("w", Param(vec![6])),
                ("b", Param(vec![6])),
            ],
            positive: false,
        },
        |g, n| {
            g.op(
                "LayerNormalization",
                &[&n["x"], &n["w"], &n["b"]],
                vec![("axis", Attr::Int(-1)), ("epsilon", Attr::Float(1e-5))],
            )
        },
    );
    check(
        Case {
            name: "ln_two",
            inputs: vec![
                ("x", Param(vec![2, 3, 4])),
                ("w", Param(vec![3, 4])),
                ("b", Param(vec![3, 4])),
            ],
            positive: false,
        },
        |g, n| {
            g.op(
                "LayerNormalization",
                &[&n["x"], &n["w"], &n["b"]],
                vec![("axis", Attr::Int(1)), ("epsilon", Attr::Float(1e-5))],
            )
        },
    );
}
