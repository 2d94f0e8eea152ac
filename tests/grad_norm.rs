//! Gradient checks: LayerNormalization.

mod common;

use common::gradcheck::{check, check_with, Case, Input::*};
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

#[test]
fn layer_norm_with_the_cpu_kernel_matches_finite_differences() {
    let options = rewardkit::autodiff::Options { cpu_kernels: true };
    // 21 values per row: one whole vector chunk of 16 and a tail of 5.
    check_with(
        Case {
            name: "ln_kernel",
            inputs: vec![
                ("x", Param(vec![2, 3, 21])),
                ("w", Param(vec![21])),
                ("b", Param(vec![21])),
            ],
            positive: false,
        },
        options,
        |g, n| {
            // (the kernel's presence in such a graph is checked below)
            g.op(
                "LayerNormalization",
                &[&n["x"], &n["w"], &n["b"]],
                vec![("axis", Attr::Int(-1)), ("epsilon", Attr::Float(1e-5))],
            )
        },
    );
}

/// rewardkit's LayerNormGrad kernel against the standard-op gradients
/// (x, γ, β) on rows of MiniLM's width, split across two threads: the
/// same formulas, summed in a different order.
#[test]
fn layer_norm_kernel_gradients_equal_the_standard_op_gradients() {
    use ndarray::ArrayD;
    use rewardkit::onnx::builder::{model, Dim, RK_DOMAIN};
    use rewardkit::onnx::proto::data_type::FLOAT;
    use rewardkit::runtime::TensorInput;
    let (rows, width) = (300usize, 384usize);
    let n = rows * width;
    let wave = |i: usize, k: usize, s: f32| (((i * k) % 2003) as f32 / 1001.0 - 1.0) * s;
    let x: Vec<f32> = (0..n)
        .map(|i| wave(i, 7919, 3.0) + (i / width) as f32 * 0.01)
        .collect();
    let r: Vec<f32> = (0..n).map(|i| wave(i, 104_729, 1.0)).collect();
    let gamma: Vec<f32> = (0..width).map(|i| 1.0 + wave(i, 31, 0.5)).collect();
    let beta: Vec<f32> = (0..width).map(|i| wave(i, 17, 0.1)).collect();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut results = Vec::new();
    for cpu_kernels in [false, true] {
        let mut g = rewardkit::onnx::GraphBuilder::new();
        let dims = [Dim::Fixed(rows as i64), Dim::Fixed(width as i64)];
        let xin = g.input("x", FLOAT, &dims);
        let rin = g.input("r", FLOAT, &dims);
        let win = g.input("w", FLOAT, &[Dim::Fixed(width as i64)]);
        let bin = g.input("b", FLOAT, &[Dim::Fixed(width as i64)]);
        let y = g.op(
            "LayerNormalization",
            &[&xin, &win, &bin],
            vec![("axis", Attr::Int(-1)), ("epsilon", Attr::Float(1e-5))],
        );
        let prod = g.op("Mul", &[&y, &rin], vec![]);
        let loss = g.op("ReduceSum", &[&prod], vec![("keepdims", Attr::Int(0))]);
        let wrt = ["x".to_string(), "w".to_string(), "b".to_string()];
        let out = rewardkit::autodiff::differentiate_with(
            &mut g,
            &loss,
            &wrt,
            rewardkit::autodiff::Options { cpu_kernels },
        )
        .expect("differentiate");
        g.output(&out.grads[0].1, "dx", FLOAT, &dims);
        g.output(&out.grads[1].1, "dw", FLOAT, &[Dim::Fixed(width as i64)]);
        g.output(&out.grads[2].1, "db", FLOAT, &[Dim::Fixed(width as i64)]);
        let graph = g.build("ln");
        let kernels = graph
            .node
            .iter()
            .filter(|n| n.domain() == RK_DOMAIN)
            .count();
        assert_eq!(kernels, usize::from(cpu_kernels), "LayerNormGrad nodes");
        let name = format!("ln_{cpu_kernels}");
        let runner = common::open_graph(dir.path(), &name, &model(graph, ""), 2);
        let a = |v: &[f32], d: Vec<usize>| ArrayD::from_shape_vec(d, v.to_vec()).expect("shape");
        results.push(
            runner
                .run(
                    vec![
                        TensorInput::new("x", a(&x, vec![rows, width])),
                        TensorInput::new("r", a(&r, vec![rows, width])),
                        TensorInput::new("w", a(&gamma, vec![width])),
                        TensorInput::new("b", a(&beta, vec![width])),
                    ],
                    &["dx", "dw", "db"],
                )
                .expect("run"),
        );
    }
    for (k, name) in ["dx", "dw", "db"].iter().enumerate() {
        let (a, b) = (&results[0][k], &results[1][k]);
        let scale = a.iter().fold(0f32, |m, v| m.max(v.abs()));
        let worst = a
            .iter()
            .zip(b.iter())
            .fold(0f32, |m, (p, q)| m.max((p - q).abs()));
        assert!(scale > 0.1, "{name}: degenerate test values (max {scale})");
        assert!(
            worst <= 1e-5 * scale,
            "{name}: largest difference {worst:e} (max |value| {scale})"
        );
    }
}
