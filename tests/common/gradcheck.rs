//! Finite-difference gradient checks run through ONNX Runtime.
//!
//! A case declares its inputs and builds a forward subgraph; the harness
//! turns the output into a scalar loss `Σ y ⊙ R` with a fixed random `R`,
//! runs [`rewardkit::autodiff::differentiate_with`], and compares each analytic
//! gradient entry with a central difference of the loss.

use std::collections::HashMap;

use ndarray::ArrayD;
use rewardkit::autodiff::{differentiate_with, Options};
use rewardkit::model::init::SeededRng;
use rewardkit::onnx::builder::{model, tensor_f32, tensor_i64, Attr, Dim};
use rewardkit::onnx::proto::data_type::FLOAT;
use rewardkit::onnx::shape::ShapeInfo;
use rewardkit::onnx::GraphBuilder;
use rewardkit::runtime::{ModelRunner, RunnerOptions, TensorInput};

/// One input of a case.
pub enum Input {
    /// A float input the gradient is checked for.
    Param(Vec<usize>),
    /// A float constant (no gradient asked).
    Const(Vec<usize>),
    /// Fixed int64 values (indices, shapes, axes).
    Ints(Vec<usize>, Vec<i64>),
    /// Fixed float values given explicitly.
    Floats(Vec<usize>, Vec<f32>),
}

pub struct Case<'a> {
    pub name: &'a str,
    pub inputs: Vec<(&'a str, Input)>,
    /// Map each random float input through this before use (e.g. keep away from kinks).
    pub positive: bool,
}

fn dims_i64(d: &[usize]) -> Vec<i64> {
    d.iter().map(|&v| v as i64).collect()
}

/// Run the check; `build` gets the graph and input names and returns the output value.
pub fn check(
    case: Case<'_>,
    build: impl FnOnce(&mut GraphBuilder, &HashMap<String, String>) -> String,
) {
    check_with(case, Options::default(), build)
}

/// [`check`], with the backward pass emitted under `options`.
pub fn check_with(
    case: Case<'_>,
    options: Options,
    build: impl FnOnce(&mut GraphBuilder, &HashMap<String, String>) -> String,
) {
    let mut rng = SeededRng::new(42);
    let mut g = GraphBuilder::new();
    let mut names = HashMap::new();
    let mut params: Vec<(String, Vec<usize>, Vec<f32>)> = Vec::new();
    for (name, input) in &case.inputs {
        match input {
            Input::Param(shape) => {
                let n = shape.iter().product();
                let mut v = rng.normal_vec(n, 1.0);
                if case.positive {
                    v.iter_mut().for_each(|x| *x = x.abs() + 0.5);
                }
                let dims: Vec<Dim> = shape.iter().map(|&d| Dim::Fixed(d as i64)).collect();
                names.insert(name.to_string(), g.input(name, FLOAT, &dims));
                params.push((name.to_string(), shape.clone(), v));
            }
            Input::Const(shape) => {
                let n = shape.iter().product();
                let mut v = rng.normal_vec(n, 1.0);
                if case.positive {
                    v.iter_mut().for_each(|x| *x = x.abs() + 0.5);
                }
                names.insert(
                    name.to_string(),
                    g.initializer(tensor_f32(name, &dims_i64(shape), &v)),
                );
            }
            Input::Ints(shape, values) => {
                names.insert(
                    name.to_string(),
                    g.initializer(tensor_i64(name, &dims_i64(shape), values)),
                );
            }
            Input::Floats(shape, values) => {
                names.insert(
                    name.to_string(),
                    g.initializer(tensor_f32(name, &dims_i64(shape), values)),
                );
            }
        }
    }
    let y = build(&mut g, &names);
    let shapes = ShapeInfo::infer(&g.snapshot());
    let ydims: Vec<i64> = shapes
        .get(&y)
        .unwrap_or_else(|| panic!("{}: output shape not inferred", case.name))
        .dims
        .iter()
        .map(|d| {
            d.known()
                .unwrap_or_else(|| panic!("{}: output dims must be static", case.name))
        })
        .collect();
    let n_out: i64 = ydims.iter().product();
    let r = g.initializer(tensor_f32(
        "weights_r",
        &ydims,
        &rng.normal_vec(n_out as usize, 1.0),
    ));
    let prod = g.op("Mul", &[&y, &r], vec![]);
    let loss = g.op("ReduceSum", &[&prod], vec![("keepdims", Attr::Int(0))]);
    let wrt: Vec<String> = params.iter().map(|(n, _, _)| n.clone()).collect();
    let grads = differentiate_with(&mut g, &loss, &wrt, options)
        .unwrap_or_else(|e| panic!("{}: differentiate failed: {e}", case.name));
    g.output(&loss, "loss", FLOAT, &[]);
    let mut grad_outs = Vec::new();
    for (k, (p, gname)) in grads.grads.iter().enumerate() {
        let shape = &params[k].1;
        let out = format!("grad_{p}");
        g.output(
            gname,
            &out,
            FLOAT,
            &shape
                .iter()
                .map(|&d| Dim::Fixed(d as i64))
                .collect::<Vec<_>>(),
        );
        grad_outs.push(out);
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(format!("{}.onnx", case.name));
    rewardkit::onnx::io::write_model(&path, &model(g.build(case.name), ""), usize::MAX)
        .expect("write");
    let runner = ModelRunner::open(
        &path,
        RunnerOptions {
            threads: 1,
            ..Default::default()
        },
    )
    .unwrap_or_else(|e| panic!("{}: ORT rejected the gradient graph: {e}", case.name));

    let run = |values: &[(String, Vec<usize>, Vec<f32>)], outs: &[&str]| -> Vec<ArrayD<f32>> {
        let inputs = values
            .iter()
            .map(|(n, s, v)| {
                TensorInput::new(
                    n,
                    ArrayD::from_shape_vec(s.clone(), v.clone()).expect("shape"),
                )
            })
            .collect();
        runner
            .run(inputs, outs)
            .unwrap_or_else(|e| panic!("{}: run failed: {e}", case.name))
    };
    let mut outs = vec!["loss"];
    outs.extend(grad_outs.iter().map(String::as_str));
    let analytic = run(&params, &outs);
    let eps = 1e-2f32;
    for (k, (pname, _, values)) in params.iter().enumerate() {
        let grad = analytic[k + 1].as_slice().expect("contiguous").to_vec();
        assert_eq!(
            grad.len(),
            values.len(),
            "{}: gradient of {pname} has the wrong size",
            case.name
        );
        // Check up to 24 entries spread over the tensor.
        let step = (values.len() / 24).max(1);
        for i in (0..values.len()).step_by(step) {
            let mut plus = params.clone();
            plus[k].2[i] += eps;
            let mut minus = params.clone();
            minus[k].2[i] -= eps;
            let lp = run(&plus, &["loss"])[0]
                .iter()
                .next()
                .copied()
                .expect("loss");
            let lm = run(&minus, &["loss"])[0]
                .iter()
                .next()
                .copied()
                .expect("loss");
            let fd = (lp - lm) / (2.0 * eps);
            let tol = 2e-2 * fd.abs().max(1.0);
            assert!(
                (grad[i] - fd).abs() <= tol,
                "{}: d loss / d {pname}[{i}]: analytic {} vs finite difference {fd}",
                case.name,
                grad[i]
            );
        }
    }
}
