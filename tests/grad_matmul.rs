//! Gradient checks: MatMul (with batch broadcasting) and Gemm.

mod common;

use common::gradcheck::{check, Case, Input::*};
use rewardkit::onnx::Attr;

#[test]
fn matmul_shapes() {
    for (a, b) in [
        (vec![3, 4], vec![4, 5]),
        (vec![2, 3, 4], vec![4, 5]),
        (vec![2, 3, 4], vec![2, 4, 5]),
        (vec![2, 2, 3, 4], vec![2, 1, 4, 5]),
        (vec![2, 3, 4], vec![1, 4, 5]),
        // Inner dim 1 beside broadcast batch dims: only batch dims are summed.
        (vec![1, 3, 1], vec![2, 1, 5]),
        (vec![3, 1], vec![2, 1, 4]),
    ] {
        let name = format!("matmul_{a:?}_{b:?}");
        check(
            Case {
                name: &name,
                inputs: vec![("a", Param(a)), ("b", Param(b))],
                positive: false,
            },
            |g, n| g.op("MatMul", &[&n["a"], &n["b"]], vec![]),
        );
    }
}

#[test]
fn gemm_transposes_alpha_beta() {
    for (ta, tb) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
        let a = if ta == 1 { vec![4, 3] } else { vec![3, 4] };
        let b = if tb == 1 { vec![5, 4] } else { vec![4, 5] };
        let name = format!("gemm_{ta}{tb}");
        check(
            Case {
                name: &name,
                inputs: vec![("a", Param(a)), ("b", Param(b)), ("c", Param(vec![5]))],
                positive: false,
            },
            |g, n| {
                g.op(
                    "Gemm",
                    &[&n["a"], &n["b"], &n["c"]],
                    vec![
                        ("transA", Attr::Int(ta)),
                        ("transB", Attr::Int(tb)),
                        ("alpha", Attr::Float(0.7)),
                        ("beta", Attr::Float(1.3)),
                    ],
                )
            },
        );
    }
}
