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

/// `x · Transpose(w)`, a linear layer with its weight stored [out, in]: the
/// chain is differentiated as a whole (dw = dyᵀ·x).
fn linear(g: &mut rewardkit::onnx::GraphBuilder, x: &str, w: &str, perm: bool) -> String {
    let attrs = if perm {
        vec![("perm", Attr::Ints(vec![1, 0]))]
    } else {
        vec![]
    };
    let wt = g.op("Transpose", &[w], attrs);
    g.op("MatMul", &[x, &wt], vec![])
}

#[test]
fn linear_layer_with_transposed_weight() {
    for (name, x, perm) in [
        ("linear_2d", Param(vec![3, 4]), true),
        ("linear_3d", Param(vec![2, 3, 4]), true),
        ("linear_4d_default_perm", Param(vec![2, 2, 3, 4]), false),
        ("linear_fixed_input", Const(vec![2, 3, 4]), true),
    ] {
        check(
            Case {
                name,
                inputs: vec![("x", x), ("w", Param(vec![5, 4]))],
                positive: false,
            },
            |g, n| linear(g, &n["x"], &n["w"], perm),
        );
    }
    // The transposed weight is also read elsewhere: op-by-op rules.
    check(
        Case {
            name: "linear_shared_transpose",
            inputs: vec![("x", Param(vec![2, 4, 4])), ("w", Param(vec![4, 4]))],
            positive: false,
        },
        |g, n| {
            let wt = g.op(
                "Transpose",
                &[&n["w"]],
                vec![("perm", Attr::Ints(vec![1, 0]))],
            );
            let y = g.op("MatMul", &[&n["x"], &wt], vec![]);
            g.op("Add", &[&y, &wt], vec![])
        },
    );
}

#[test]
fn linear_weight_gradient_is_one_product_in_the_weights_layout() {
    use rewardkit::onnx::builder::Dim;
    use rewardkit::onnx::proto::data_type::FLOAT;
    let mut g = rewardkit::onnx::GraphBuilder::new();
    let x = g.input("x", FLOAT, &[Dim::Fixed(2), Dim::Fixed(3), Dim::Fixed(4)]);
    let w = g.input("w", FLOAT, &[Dim::Fixed(5), Dim::Fixed(4)]);
    let y = linear(&mut g, &x, &w, true);
    let loss = g.op("ReduceSum", &[&y], vec![("keepdims", Attr::Int(0))]);
    let grads = rewardkit::autodiff::differentiate(&mut g, &loss, &[x.clone(), w.clone()])
        .expect("differentiate");
    let graph = g.snapshot();
    let dw = &grads.grads[1].1;
    let producer = graph
        .node
        .iter()
        .find(|n| n.output.contains(dw))
        .expect("the weight gradient's producer");
    // Op by op it would be Transpose(xᵀ·dy): a product in [in, out] and a
    // transpose back.
    assert_eq!(
        producer.op_type(),
        "MatMul",
        "dw is made by {}",
        producer.op_type()
    );
    let n_transposes = graph
        .node
        .iter()
        .filter(|n| n.op_type() == "Transpose")
        .count();
    // The forward's transpose of w and the backward's of dy.
    assert_eq!(n_transposes, 2);
}
