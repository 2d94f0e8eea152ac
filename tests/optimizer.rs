//! The optimizer graphs against their closed forms, computed here in f64:
//! AdamW as PyTorch defines it (decoupled decay, bias correction, eps outside
//! the square root) and SGD, with global-norm clipping and gradient scaling.

use ndarray::{ArrayD, IxDyn};
use rewardkit::onnx::io::{write_model, DEFAULT_EXTERNAL_THRESHOLD};
use rewardkit::optim::{
    build_optimizer_graph, piece_name, pieces, OptimizerKind, ParamSpec, GRAD_NORM, GRAD_SCALE,
    INV_SQRT_BC2, LR, STEP_SIZE,
};
use rewardkit::runtime::{ModelRunner, RunnerOptions, TensorInput};

const BETA1: f64 = 0.9;
const BETA2: f64 = 0.98;
const EPS: f64 = 1e-6;
const WD: f64 = 0.1;

struct Param {
    name: &'static str,
    dims: Vec<usize>,
    decay: bool,
}

fn params() -> Vec<Param> {
    vec![
        Param {
            name: "w",
            dims: vec![3, 4],
            decay: true,
        },
        Param {
            name: "b",
            dims: vec![4],
            decay: false,
        },
    ]
}

/// Deterministic values in [-scale, scale].
fn values(n: usize, seed: u64, scale: f64) -> Vec<f64> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((x >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0) * scale
        })
        .collect()
}

fn arr(dims: &[usize], v: &[f64]) -> ArrayD<f32> {
    ArrayD::from_shape_vec(IxDyn(dims), v.iter().map(|&x| x as f32).collect()).expect("shape")
}

/// Run `steps` optimizer steps through the graph and in f64; compare. With
/// `piece`, the graph updates parameters in pieces of at most that many
/// elements, fed and read here as flat slices.
fn check(kind: OptimizerKind, clip: Option<f32>, grad_scale: Option<f64>, piece: Option<usize>) {
    check_with(kind, clip, grad_scale, piece, false)
}

fn check_with(
    kind: OptimizerKind,
    clip: Option<f32>,
    grad_scale: Option<f64>,
    piece: Option<usize>,
    fused: bool,
) {
    let ps = params();
    let specs: Vec<ParamSpec> = ps
        .iter()
        .map(|p| ParamSpec {
            name: p.name.into(),
            dims: p.dims.iter().map(|&d| d as i64).collect(),
            decay: p.decay,
        })
        .collect();
    let graph = build_optimizer_graph(&specs, kind, clip, grad_scale.is_some(), piece, fused)
        .expect("graph");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("optimizer.onnx");
    write_model(&path, &graph.model, DEFAULT_EXTERNAL_THRESHOLD).expect("write");
    let runner = ModelRunner::open(&path, RunnerOptions::default()).expect("open");
    let adam = matches!(kind, OptimizerKind::Adamw { .. });

    let sizes: Vec<usize> = ps.iter().map(|p| p.dims.iter().product()).collect();
    let mut p64: Vec<Vec<f64>> = sizes
        .iter()
        .enumerate()
        .map(|(i, &n)| values(n, i as u64, 1.0))
        .collect();
    let mut m64: Vec<Vec<f64>> = sizes.iter().map(|&n| vec![0.0; n]).collect();
    let mut v64 = m64.clone();
    let (mut p32, mut m32, mut v32) = (p64.clone(), m64.clone(), v64.clone());
    let lr = 0.05;
    for t in 1..=5 {
        // Large gradients on odd steps, so clipping engages on some steps only.
        let g: Vec<Vec<f64>> = sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| {
                values(
                    n,
                    100 + 10 * t as u64 + i as u64,
                    if t % 2 == 1 { 3.0 } else { 0.05 },
                )
            })
            .collect();
        let bc1 = 1.0 - BETA1.powi(t);
        let bc2 = 1.0 - BETA2.powi(t);

        // Closed form.
        let scale = grad_scale.unwrap_or(1.0);
        let norm = g
            .iter()
            .flatten()
            .map(|x| (x * scale).powi(2))
            .sum::<f64>()
            .sqrt();
        let coef = scale
            * match clip {
                Some(c) => (c as f64 / (norm + 1e-6)).min(1.0),
                None => 1.0,
            };
        for (i, p) in ps.iter().enumerate() {
            for j in 0..sizes[i] {
                let gj = g[i][j] * coef;
                if adam {
                    if p.decay {
                        p64[i][j] *= 1.0 - lr * WD;
                    }
                    m64[i][j] = BETA1 * m64[i][j] + (1.0 - BETA1) * gj;
                    v64[i][j] = BETA2 * v64[i][j] + (1.0 - BETA2) * gj * gj;
                    let denom = (v64[i][j] / bc2).sqrt() + EPS;
                    p64[i][j] -= lr / bc1 * m64[i][j] / denom;
                } else {
                    p64[i][j] -= lr * gj;
                }
            }
        }

        // The graph.
        let (lr_s, step_s, inv_s) = (
            ndarray::arr0(lr as f32).into_dyn(),
            ndarray::arr0((lr / bc1) as f32).into_dyn(),
            ndarray::arr0((1.0 / bc2.sqrt()) as f32).into_dyn(),
        );
        let mut inputs = vec![TensorInput::new(LR, lr_s)];
        if adam {
            inputs.push(TensorInput::new(STEP_SIZE, step_s));
            inputs.push(TensorInput::new(INV_SQRT_BC2, inv_s));
        }
        if let Some(s) = grad_scale {
            inputs.push(TensorInput::new(
                GRAD_SCALE,
                ndarray::arr0(s as f32).into_dyn(),
            ));
        }
        // Per parameter, its pieces: (offset, len, graph name suffix).
        let cuts: Vec<Vec<(usize, usize, String)>> = ps
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let cut = pieces(sizes[i], piece);
                cut.iter()
                    .enumerate()
                    .map(|(j, &(o, l))| (o, l, piece_name(p.name, j, cut.len())))
                    .collect()
            })
            .collect();
        if let Some(max) = piece {
            assert!(
                cuts.iter().any(|c| c.len() > 1) && cuts.iter().flatten().all(|c| c.1 <= max),
                "piece {max} cuts no parameter, or too coarsely: {cuts:?}"
            );
        }
        let mut fetch: Vec<String> = vec![GRAD_NORM.into()];
        let mut feeds: Vec<(String, ArrayD<f32>)> = Vec::new();
        for (i, p) in ps.iter().enumerate() {
            for (o, l, name) in &cuts[i] {
                let dims: Vec<usize> = if cuts[i].len() == 1 {
                    p.dims.clone()
                } else {
                    vec![*l]
                };
                let part = |v: &[f64]| arr(&dims, &v[*o..o + l]);
                feeds.push((format!("param/{name}"), part(&p32[i])));
                feeds.push((format!("grad/{name}"), part(&g[i])));
                fetch.push(format!("new_param/{name}"));
                if adam {
                    feeds.push((format!("exp_avg/{name}"), part(&m32[i])));
                    feeds.push((format!("exp_avg_sq/{name}"), part(&v32[i])));
                    fetch.push(format!("new_exp_avg/{name}"));
                    fetch.push(format!("new_exp_avg_sq/{name}"));
                }
            }
        }
        for (name, a) in &feeds {
            inputs.push(TensorInput::new(name, a.clone()));
        }
        let fetch_refs: Vec<&str> = fetch.iter().map(String::as_str).collect();
        let out = runner.run(inputs, &fetch_refs).expect("run");
        let got_norm = out[0].iter().next().copied().expect("norm") as f64;
        assert!(
            (got_norm - norm).abs() <= 1e-5 * norm,
            "step {t}: gradient norm {got_norm} vs {norm}"
        );
        let per = if adam { 3 } else { 1 };
        let mut slot = 1;
        for i in 0..ps.len() {
            p32[i].clear();
            m32[i].clear();
            v32[i].clear();
            for _ in &cuts[i] {
                p32[i].extend(out[slot].iter().map(|&x| x as f64));
                if adam {
                    m32[i].extend(out[slot + 1].iter().map(|&x| x as f64));
                    v32[i].extend(out[slot + 2].iter().map(|&x| x as f64));
                }
                slot += per;
            }
            for (what, got, want) in [
                ("param", &p32[i], &p64[i]),
                ("exp_avg", &m32[i], &m64[i]),
                ("exp_avg_sq", &v32[i], &v64[i]),
            ] {
                if !adam && what != "param" {
                    continue;
                }
                // Relative to the tensor's largest value: updates nearly
                // cancel some entries, so a per-entry bound would measure f32
                // rounding of the terms rather than the rule. Moments get a
                // looser bound: 1 − β2 in f32 (0.0199999809) is 1e-6 off.
                let tol = if what == "param" { 1e-6 } else { 3e-6 };
                let scale = want.iter().fold(0.0f64, |a, b| a.max(b.abs()));
                for (j, (a, b)) in got.iter().zip(want).enumerate() {
                    assert!(
                        (a - b).abs() <= tol * scale,
                        "{kind:?} clip {clip:?} scale {grad_scale:?}, step {t}, {} {what}[{j}]: graph {a} vs closed form {b}",
                        ps[i].name
                    );
                }
            }
        }
    }
}

fn adamw() -> OptimizerKind {
    OptimizerKind::Adamw {
        beta1: BETA1 as f32,
        beta2: BETA2 as f32,
        eps: EPS as f32,
        weight_decay: WD as f32,
    }
}

#[test]
fn adamw_matches_its_closed_form() {
    check(adamw(), None, None, None);
}

#[test]
fn adamw_with_clipping_and_scaled_gradients_matches_its_closed_form() {
    check(adamw(), Some(1.0), None, None);
    check(adamw(), Some(1.0), Some(0.5), None);
    check(adamw(), None, Some(0.25), None);
}

#[test]
fn sgd_matches_its_closed_form() {
    check(OptimizerKind::Sgd, None, None, None);
    check(OptimizerKind::Sgd, Some(0.5), Some(0.5), None);
}

#[test]
fn updates_in_pieces_match_the_closed_form() {
    // w has 12 elements: pieces of 5, 5 and 2; b (4) stays whole.
    check(adamw(), Some(1.0), Some(0.5), Some(5));
    check(adamw(), None, None, Some(3));
    check(OptimizerKind::Sgd, Some(0.5), None, Some(5));
}

#[test]
fn pieces_cover_each_parameter_once() {
    for (n, piece) in [
        (12, Some(5)),
        (12, None),
        (12, Some(12)),
        (11_720_448, Some(196_608)),
        (589_824, Some(196_608)),
        (196_609, Some(196_608)),
        (1, Some(1)),
    ] {
        let cut = pieces(n, piece);
        let mut next = 0;
        for &(o, l) in &cut {
            assert_eq!(o, next, "n {n} piece {piece:?}: {cut:?}");
            assert!(l > 0 && piece.is_none_or(|m| l <= m), "n {n}: {cut:?}");
            if l >= 4096 {
                assert_eq!(o % 16, 0, "n {n}: piece at {o} is not 64-byte aligned");
            }
            next += l;
        }
        assert_eq!(next, n, "n {n} piece {piece:?}: {cut:?}");
        if piece.is_none_or(|m| n <= m) {
            assert_eq!(cut.len(), 1);
        }
    }
}

#[test]
fn fused_adamw_matches_its_closed_form() {
    check_with(adamw(), None, None, None, true);
    check_with(adamw(), Some(1.0), Some(0.5), None, true);
    check_with(adamw(), Some(1.0), None, Some(5), true);
}

/// rewardkit's one-pass AdamW kernel against the standard-op graph on
/// parameters large enough to be split across the thread pool: the same
/// arithmetic in the same order, so the same bits.
#[test]
fn fused_adamw_equals_the_standard_op_update_bit_for_bit() {
    use rewardkit::onnx::builder::RK_DOMAIN;
    let specs = vec![
        ParamSpec {
            name: "w".into(),
            dims: vec![250, 203],
            decay: true,
        },
        ParamSpec {
            name: "b".into(),
            dims: vec![203],
            decay: false,
        },
    ];
    let sizes = [250 * 203, 203];
    let dir = tempfile::tempdir().expect("tempdir");
    for (clip, piece) in [(Some(1.0), None), (None, Some(20_000))] {
        let mut outs = Vec::new();
        for fused in [false, true] {
            let graph =
                build_optimizer_graph(&specs, adamw(), clip, true, piece, fused).expect("graph");
            let g = graph.model.graph.as_ref().expect("graph");
            let custom = g.node.iter().filter(|n| n.domain() == RK_DOMAIN).count();
            // One fused node per slot, none in the standard graph.
            assert_eq!(custom, if fused { graph.slots.len() } else { 0 });
            let path = dir.path().join(format!("opt_{fused}.onnx"));
            write_model(&path, &graph.model, DEFAULT_EXTERNAL_THRESHOLD).expect("write");
            let runner = ModelRunner::open(
                &path,
                RunnerOptions {
                    threads: 2,
                    ..Default::default()
                },
            )
            .expect("open");
            let mut inputs = vec![
                TensorInput::new(LR, ndarray::arr0(0.01f32).into_dyn()),
                TensorInput::new(STEP_SIZE, ndarray::arr0(0.01f32 / 0.271).into_dyn()),
                TensorInput::new(
                    INV_SQRT_BC2,
                    ndarray::arr0(1.0f32 / 0.0592f32.sqrt()).into_dyn(),
                ),
                TensorInput::new(GRAD_SCALE, ndarray::arr0(0.5f32).into_dyn()),
            ];
            let mut fetch = vec![GRAD_NORM.to_string()];
            let mut feeds: Vec<(String, ArrayD<f32>)> = Vec::new();
            for (k, spec) in specs.iter().enumerate() {
                let cut = pieces(sizes[k], piece);
                let p = values(sizes[k], 1 + k as u64, 1.0);
                let gr = values(sizes[k], 11 + k as u64, 0.02);
                let m = values(sizes[k], 21 + k as u64, 0.001);
                let v: Vec<f64> = values(sizes[k], 31 + k as u64, 1e-6)
                    .iter()
                    .map(|x| x.abs())
                    .collect();
                for (j, &(o, l)) in cut.iter().enumerate() {
                    let name = piece_name(&spec.name, j, cut.len());
                    let dims: Vec<usize> = if cut.len() == 1 {
                        spec.dims.iter().map(|&d| d as usize).collect()
                    } else {
                        vec![l]
                    };
                    for (what, src) in [
                        ("param", &p),
                        ("grad", &gr),
                        ("exp_avg", &m),
                        ("exp_avg_sq", &v),
                    ] {
                        feeds.push((format!("{what}/{name}"), arr(&dims, &src[o..o + l])));
                    }
                    for what in ["new_param", "new_exp_avg", "new_exp_avg_sq"] {
                        fetch.push(format!("{what}/{name}"));
                    }
                }
            }
            for (name, a) in &feeds {
                inputs.push(TensorInput::new(name, a.clone()));
            }
            let fetch_refs: Vec<&str> = fetch.iter().map(String::as_str).collect();
            outs.push((fetch.clone(), runner.run(inputs, &fetch_refs).expect("run")));
        }
        let (names, standard) = &outs[0];
        let fused = &outs[1].1;
        for (k, name) in names.iter().enumerate() {
            let (a, b) = (&standard[k], &fused[k]);
            assert_eq!(a.shape(), b.shape(), "{name}");
            let differ = a
                .iter()
                .zip(b.iter())
                .filter(|(x, y)| x.to_bits() != y.to_bits())
                .count();
            assert_eq!(
                differ,
                0,
                "clip {clip:?} piece {piece:?}: {differ} of {} values of {name} differ",
                a.len()
            );
        }
    }
}
