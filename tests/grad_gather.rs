//! Gradient checks: Gather as an embedding lookup (repeated indices add up)
//! and as index selection on other axes.

mod common;

use common::gradcheck::{check, Case, Input::*};
use rewardkit::onnx::Attr;

#[test]
fn embedding_lookup_with_repeats() {
    // A large table takes the scatter path, a small one the one-hot product.
    for (name, table, ids) in [
        (
            "embed_large_table",
            vec![300, 2],
            vec![0, 25, 0, 50, -1, 25],
        ),
        ("embed", vec![6, 4], vec![1, 5, 1, 0, 5, 5]),
    ] {
        check(
            Case {
                name,
                inputs: vec![("w", Param(table)), ("ids", Ints(vec![2, 3], ids))],
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

/// ONNX Runtime's multi-threaded ScatterND `add` loses updates when indices
/// repeat (the race that once corrupted embedding gradients). The Gather
/// rule must give the exact scatter-sum on several threads, run after run.
#[test]
fn embedding_gradient_is_exact_with_many_repeats_on_several_threads() {
    use ndarray::{Array1, ArrayD};
    use rewardkit::autodiff::differentiate;
    use rewardkit::onnx::builder::{model, tensor_f32, tensor_i64, Dim};
    use rewardkit::onnx::proto::data_type::FLOAT;
    use rewardkit::onnx::GraphBuilder;
    use rewardkit::runtime::TensorInput;

    let (v, h, n) = (2usize, 384usize, 16_384usize);
    let ids: Vec<i64> = (0..n).map(|i| (i % v) as i64).collect();
    let r: Vec<f32> = (0..n * h).map(|i| ((i % 7) as f32 - 3.0) * 0.25).collect();
    let mut g = GraphBuilder::new();
    let w = g.input("w", FLOAT, &[Dim::Fixed(v as i64), Dim::Fixed(h as i64)]);
    let idx = g.initializer(tensor_i64("ids", &[n as i64], &ids));
    let rr = g.initializer(tensor_f32("r", &[n as i64, h as i64], &r));
    let y = g.op("Gather", &[&w, &idx], vec![("axis", Attr::Int(0))]);
    // y·y·r keeps the gradient (2·y·r) dependent on w, so ONNX Runtime
    // cannot fold the scatter into a constant at load time.
    let yy = g.op("Mul", &[&y, &y], vec![]);
    let p = g.op("Mul", &[&yy, &rr], vec![]);
    let loss = g.op("ReduceSum", &[&p], vec![("keepdims", Attr::Int(0))]);
    let grads = differentiate(&mut g, &loss, &["w".to_string()]).expect("differentiate");
    g.output(
        &grads.grads[0].1,
        "dw",
        FLOAT,
        &[Dim::Fixed(v as i64), Dim::Fixed(h as i64)],
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let runner = common::open_graph(dir.path(), "g", &model(g.build("g"), ""), 2);
    // With w = 1: dw[k] = Σ over rows i with ids[i] = k of 2·r[i].
    let mut expected = vec![0f64; v * h];
    for i in 0..n {
        for j in 0..h {
            expected[(i % v) * h + j] += 2.0 * r[i * h + j] as f64;
        }
    }
    for _ in 0..5 {
        let w0 =
            ArrayD::from_shape_vec(vec![v, h], Array1::<f32>::ones(v * h).to_vec()).expect("shape");
        let out = runner
            .run(vec![TensorInput::new("w", w0)], &["dw"])
            .expect("run");
        for (k, (got, want)) in out[0].iter().zip(&expected).enumerate() {
            assert!(
                (*got as f64 - want).abs() <= 1e-3,
                "dw[{k}] = {got}, expected {want}"
            );
        }
    }
}
