//! Gradient checks: elementwise arithmetic with broadcasting.

mod common;

use common::gradcheck::{check, Case, Input::*};

fn binary(op: &'static str, a: Vec<usize>, b: Vec<usize>, positive: bool) {
    let name = format!("{op}_{a:?}_{b:?}");
    check(
        Case {
            name: &name,
            inputs: vec![("a", Param(a)), ("b", Param(b))],
            positive,
        },
        |g, n| g.op(op, &[&n["a"], &n["b"]], vec![]),
    );
}

#[test]
fn add_sub_mul_div_with_broadcasting() {
    for op in ["Add", "Sub", "Mul", "Div"] {
        let positive = op == "Div";
        binary(op, vec![2, 3], vec![2, 3], positive);
        binary(op, vec![2, 3, 4], vec![4], positive);
        binary(op, vec![2, 1, 4], vec![3, 1], positive);
        binary(op, vec![1, 3, 1], vec![2, 3, 4], positive);
        // Only leading axes summed: the gradient is a product with a row of ones.
        binary(op, vec![2, 3, 4], vec![1, 3, 4], positive);
        binary(op, vec![2, 3, 4], vec![3, 4], positive);
        binary(op, vec![2, 3, 4], vec![1, 1, 4], positive);
    }
}

/// Biases over symbolic batch dims: each bias gradient is one product of a
/// row of ones with the incoming gradient (no `ReduceSum`), and the row is
/// built once for all sums over the same leading dims.
#[test]
fn bias_gradients_are_products_with_one_shared_row_of_ones() {
    use rewardkit::onnx::builder::{Attr, Dim};
    use rewardkit::onnx::proto::data_type::FLOAT;
    let mut g = rewardkit::onnx::GraphBuilder::new();
    let dims = [
        Dim::Named("batch".into()),
        Dim::Named("sequence".into()),
        Dim::Fixed(4),
    ];
    let x = g.input("x", FLOAT, &dims);
    let b1 = g.input("b1", FLOAT, &[Dim::Fixed(4)]);
    let b2 = g.input("b2", FLOAT, &[Dim::Fixed(1), Dim::Fixed(1), Dim::Fixed(4)]);
    let y = g.op("Add", &[&x, &b1], vec![]);
    let y = g.op("Tanh", &[&y], vec![]);
    let y = g.op("Mul", &[&y, &b2], vec![]);
    let loss = g.op("ReduceSum", &[&y], vec![("keepdims", Attr::Int(0))]);
    rewardkit::autodiff::differentiate(&mut g, &loss, &[b1, b2]).expect("differentiate");
    let graph = g.snapshot();
    let count = |op: &str| graph.node.iter().filter(|n| n.op_type() == op).count();
    // The loss's own ReduceSum is the only one.
    assert_eq!(count("ReduceSum"), 1);
    assert_eq!(count("MatMul"), 2);
    assert_eq!(
        count("ConstantOfShape"),
        2,
        "the seed's ones and one shared row"
    );
}

#[test]
fn unary() {
    for (op, positive) in [
        ("Neg", false),
        ("Exp", false),
        ("Log", true),
        ("Sqrt", true),
        ("Abs", true),
        ("Identity", false),
    ] {
        check(
            Case {
                name: op,
                inputs: vec![("x", Param(vec![3, 4]))],
                positive,
            },
            |g, n| g.op(op, &[&n["x"]], vec![]),
        );
    }
}

#[test]
fn pow_with_constant_exponent() {
    check(
        Case {
            name: "pow",
            inputs: vec![("x", Param(vec![3, 4])), ("p", Floats(vec![], vec![3.0]))],
            positive: true,
        },
        |g, n| g.op("Pow", &[&n["x"], &n["p"]], vec![]),
    );
}

#[test]
fn sum_of_three_and_reused_values() {
    check(
        Case {
            name: "sum3",
            inputs: vec![
                ("a", Param(vec![2, 3])),
                ("b", Param(vec![3])),
                ("c", Param(vec![2, 1])),
            ],
            positive: false,
        },
        |g, n| g.op("Sum", &[&n["a"], &n["b"], &n["c"]], vec![]),
    );
    // x used three times: gradients from every use must add up.
    check(
        Case {
            name: "reuse",
            inputs: vec![("x", Param(vec![2, 3]))],
            positive: false,
        },
        |g, n| {
            let sq = g.op("Mul", &[&n["x"], &n["x"]], vec![]);
            g.op("Add", &[&sq, &n["x"]], vec![])
        },
    );
}

#[test]
fn where_max_min() {
    check(
        Case {
            name: "where",
            inputs: vec![
                ("a", Param(vec![2, 3])),
                ("b", Param(vec![3])),
                ("m", Ints(vec![2, 3], vec![1, 0, 1, 0, 0, 1])),
            ],
            positive: false,
        },
        |g, n| {
            let c = g.op(
                "Cast",
                &[&n["m"]],
                vec![("to", rewardkit::onnx::Attr::Int(9))],
            );
            g.op("Where", &[&c, &n["a"], &n["b"]], vec![])
        },
    );
    // Shift b by ±4 so every pair is far from a tie and both branches are used.
    let shift: Vec<f32> = (0..12)
        .map(|i| if i % 2 == 0 { 4.0 } else { -4.0 })
        .collect();
    for op in ["Max", "Min"] {
        check(
            Case {
                name: op,
                inputs: vec![
                    ("a", Param(vec![3, 4])),
                    ("b", Param(vec![3, 4])),
                    ("s", Floats(vec![3, 4], shift.clone())),
                ],
                positive: false,
            },
            |g, n| {
                let b = g.op("Add", &[&n["b"], &n["s"]], vec![]);
                g.op(op, &[&n["a"], &b], vec![])
            },
        );
    }
}

#[test]
fn cast_float_to_float() {
    check(
        Case {
            name: "cast",
            inputs: vec![("x", Param(vec![2, 3]))],
            positive: false,
        },
        |g, n| {
            g.op(
                "Cast",
                &[&n["x"]],
                vec![("to", rewardkit::onnx::Attr::Int(1))],
            )
        },
    );
}
