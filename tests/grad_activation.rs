//! Gradient checks: activations and softmax.

mod common;

use common::gradcheck::{check, check_with, Case, Input::*};
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

/// The exact GELU as the model builders write it, `0.5·x·(1 + erf(x/√2))`,
/// in each of the forms the autodiff takes as one function (Div or Mul for
/// the scaling, either operand order), and once with an interior value read
/// elsewhere, where the op-by-op rules must apply instead.
fn gelu_chain(g: &mut rewardkit::onnx::GraphBuilder, x: &str, variant: usize) -> (String, String) {
    let scaled = if variant.is_multiple_of(2) {
        let c = g.const_f32("sqrt2", std::f32::consts::SQRT_2);
        g.op("Div", &[x, &c], vec![])
    } else {
        let c = g.const_f32("inv_sqrt2", std::f32::consts::FRAC_1_SQRT_2);
        g.op("Mul", &[&c, x], vec![])
    };
    let erf = g.op("Erf", &[&scaled], vec![]);
    let one = g.const_f32("one", 1.0);
    let e1 = if variant < 2 {
        g.op("Add", &[&erf, &one], vec![])
    } else {
        g.op("Add", &[&one, &erf], vec![])
    };
    let xe = if variant < 2 {
        g.op("Mul", &[x, &e1], vec![])
    } else {
        g.op("Mul", &[&e1, x], vec![])
    };
    let half = g.const_f32("half", 0.5);
    (g.op("Mul", &[&xe, &half], vec![]), erf)
}

#[test]
fn gelu_chains_match_finite_differences() {
    for variant in 0..4 {
        check(
            Case {
                name: &format!("gelu_{variant}"),
                inputs: vec![("x", Param(vec![4, 6]))],
                positive: false,
            },
            |g, n| gelu_chain(g, &n["x"], variant).0,
        );
    }
    // The Erf output also feeds the result: not a plain GELU any more.
    check(
        Case {
            name: "gelu_shared_interior",
            inputs: vec![("x", Param(vec![4, 6]))],
            positive: false,
        },
        |g, n| {
            let (y, erf) = gelu_chain(g, &n["x"], 0);
            g.op("Add", &[&y, &erf], vec![])
        },
    );
}

#[test]
fn gelu_chains_with_the_cpu_kernel_match_finite_differences() {
    let options = rewardkit::autodiff::Options { cpu_kernels: true };
    for variant in 0..4 {
        check_with(
            Case {
                name: &format!("gelu_kernel_{variant}"),
                inputs: vec![("x", Param(vec![4, 6]))],
                positive: false,
            },
            options,
            |g, n| gelu_chain(g, &n["x"], variant).0,
        );
    }
}

/// rewardkit's GeluGrad kernel against the standard-op gradient of the same
/// chain, on a tensor the kernel splits across two threads, with inputs
/// from −8 to 8: they differ by the kernel's erf approximation (below 1.5e-7
/// absolute in the slope) and f32 rounding only.
#[test]
fn gelu_kernel_gradient_equals_the_standard_op_gradient() {
    use ndarray::ArrayD;
    use rewardkit::onnx::builder::{model, Dim, RK_DOMAIN};
    use rewardkit::onnx::proto::data_type::FLOAT;
    use rewardkit::runtime::TensorInput;
    let (rows, cols) = (40usize, 1000usize);
    let n = rows * cols;
    let x: Vec<f32> = (0..n).map(|i| (i as f32 / n as f32) * 16.0 - 8.0).collect();
    let w: Vec<f32> = (0..n)
        .map(|i| ((i * 7919) % 2001) as f32 / 1000.0 - 1.0)
        .collect();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut grads = Vec::new();
    for cpu_kernels in [false, true] {
        let mut g = rewardkit::onnx::GraphBuilder::new();
        let dims = [Dim::Fixed(rows as i64), Dim::Fixed(cols as i64)];
        let xin = g.input("x", FLOAT, &dims);
        let win = g.input("w", FLOAT, &dims);
        let (y, _) = gelu_chain(&mut g, &xin, 0);
        let prod = g.op("Mul", &[&y, &win], vec![]);
        let loss = g.op("ReduceSum", &[&prod], vec![("keepdims", Attr::Int(0))]);
        let out = rewardkit::autodiff::differentiate_with(
            &mut g,
            &loss,
            &["x".to_string()],
            rewardkit::autodiff::Options { cpu_kernels },
        )
        .expect("differentiate");
        g.output(&out.grads[0].1, "dx", FLOAT, &dims);
        let graph = g.build("gelu");
        let kernels = graph
            .node
            .iter()
            .filter(|n| n.domain() == RK_DOMAIN)
            .count();
        assert_eq!(kernels, usize::from(cpu_kernels), "GeluGrad nodes");
        let name = format!("gelu_{cpu_kernels}");
        let runner = common::open_graph(dir.path(), &name, &model(graph, ""), 2);
        let arr = |v: &[f32]| ArrayD::from_shape_vec(vec![rows, cols], v.to_vec()).expect("shape");
        let r = runner
            .run(
                vec![
                    TensorInput::new("x", arr(&x)),
                    TensorInput::new("w", arr(&w)),
                ],
                &["dx"],
            )
            .expect("run");
        grads.push(r.into_iter().next().expect("dx"));
    }
    let mut worst = 0.0f32;
    for ((a, b), wi) in grads[0].iter().zip(grads[1].iter()).zip(&w) {
        // |w| ≤ 1 and the slope is at most 1.13: an absolute bound.
        assert!(wi.abs() <= 1.0);
        worst = worst.max((a - b).abs());
    }
    assert!(worst <= 5e-7, "largest difference {worst:e}");
}

#[test]
fn gelu_backward_reads_only_the_chain_input() {
    use rewardkit::onnx::builder::Dim;
    use rewardkit::onnx::proto::data_type::FLOAT;
    for variant in 0..4 {
        let mut g = rewardkit::onnx::GraphBuilder::new();
        let x = g.input("x", FLOAT, &[Dim::Fixed(3), Dim::Fixed(5)]);
        let (y, _) = gelu_chain(&mut g, &x, variant);
        let loss = g.op("ReduceSum", &[&y], vec![("keepdims", Attr::Int(0))]);
        let forward: Vec<String> = g
            .snapshot()
            .node
            .iter()
            .map(|n| n.output[0].clone())
            .collect();
        let grads = rewardkit::autodiff::differentiate(&mut g, &loss, &["x".to_string()])
            .expect("differentiate");
        assert_eq!(grads.grads.len(), 1);
        let graph = g.snapshot();
        let backward = &graph.node[forward.len()..];
        // Apart from the chain's own result (whose gradient is the seed of
        // the backward pass), no forward value but x is read backward, so
        // the chain's intermediates die in the forward pass.
        let interior = &forward[..forward.len() - 2];
        for n in backward {
            for i in &n.input {
                assert!(
                    !interior.contains(i),
                    "variant {variant}: backward node {} ({}) reads the forward value {i}",
                    n.name(),
                    n.op_type()
                );
            }
        }
        assert!(
            backward.iter().any(|n| n.input.contains(&x)),
            "variant {variant}: the backward pass never reads x"
        );
    }
}

#[test]
fn softmax_then_product_matches_finite_differences() {
    let attention = |g: &mut rewardkit::onnx::GraphBuilder, s: &str, v: &str| {
        let p = g.op("Softmax", &[s], vec![("axis", Attr::Int(-1))]);
        g.op("MatMul", &[&p, v], vec![])
    };
    // Scores and values both trained; values shared across the batch; values fixed.
    for (name, s, v) in [
        ("softmax_matmul", vec![2, 3, 4, 5], Param(vec![2, 3, 5, 6])),
        ("softmax_matmul_broadcast", vec![2, 4, 5], Param(vec![5, 3])),
        (
            "softmax_matmul_fixed_values",
            vec![3, 4, 5],
            Const(vec![3, 5, 2]),
        ),
    ] {
        check(
            Case {
                name,
                inputs: vec![("s", Param(s)), ("v", v)],
                positive: false,
            },
            |g, n| attention(g, &n["s"], &n["v"]),
        );
    }
    // The probabilities also feed the output directly: op-by-op rules.
    check(
        Case {
            name: "softmax_matmul_shared_probabilities",
            inputs: vec![("s", Param(vec![3, 4, 4])), ("v", Param(vec![3, 4, 4]))],
            positive: false,
        },
        |g, n| {
            let p = g.op("Softmax", &[&n["s"]], vec![("axis", Attr::Int(-1))]);
            let c = g.op("MatMul", &[&p, &n["v"]], vec![]);
            g.op("Add", &[&c, &p], vec![])
        },
    );
}

#[test]
fn softmax_then_product_reduces_over_the_head_dimension() {
    use rewardkit::onnx::builder::Dim;
    use rewardkit::onnx::proto::data_type::FLOAT;
    use rewardkit::onnx::shape::ShapeInfo;
    let mut g = rewardkit::onnx::GraphBuilder::new();
    let dims = |d: &[i64]| d.iter().map(|&v| Dim::Fixed(v)).collect::<Vec<_>>();
    let s = g.input("s", FLOAT, &dims(&[2, 3, 16, 16]));
    let v = g.input("v", FLOAT, &dims(&[2, 3, 16, 4]));
    let p = g.op("Softmax", &[&s], vec![("axis", Attr::Int(-1))]);
    let c = g.op("MatMul", &[&p, &v], vec![]);
    let loss = g.op("ReduceSum", &[&c], vec![("keepdims", Attr::Int(0))]);
    let n_forward = g.snapshot().node.len();
    rewardkit::autodiff::differentiate(&mut g, &loss, &[s.clone(), v.clone()])
        .expect("differentiate");
    let graph = g.snapshot();
    let shapes = ShapeInfo::infer(&graph);
    let reductions: Vec<Vec<Option<i64>>> = graph.node[n_forward..]
        .iter()
        .filter(|n| n.op_type() == "ReduceSum")
        .map(|n| {
            shapes
                .get(&n.input[0])
                .expect("shape")
                .dims
                .iter()
                .map(|d| d.known())
                .collect()
        })
        .collect();
    assert!(!reductions.is_empty(), "no reduction in the backward pass");
    for dims in &reductions {
        assert_ne!(
            dims,
            &vec![Some(2), Some(3), Some(16), Some(16)],
            "the softmax backward reduces over the probabilities: {reductions:?}"
        );
    }
}
