//! The paper's recipes, the data tools, evaluation and ExPO merging, run from
//! the command line on the generated preference set with a tiny backbone.

use std::path::{Path, PathBuf};
use std::process::Command;

fn rk() -> Command {
    Command::new(env!("CARGO_BIN_EXE_rewardkit"))
}

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run rewardkit");
    assert!(
        out.status.success(),
        "failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf8")
}

fn run_err(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run rewardkit");
    assert!(
        !out.status.success(),
        "should have failed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stderr).expect("utf8")
}

fn recipes() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("training/recipes")
}

/// A tiny backbone and a small generated set in a temporary directory.
struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        run_ok(
            rk().args(["dev", "tiny-backbone"])
                .arg(dir.path().join("tiny")),
        );
        run_ok(
            rk().args(["data", "generate", "--out"])
                .arg(dir.path().join("data"))
                .args([
                    "--train-pairs",
                    "48",
                    "--heldout-pairs",
                    "16",
                    "--seed",
                    "5",
                ]),
        );
        Setup { dir }
    }
    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }
    fn train(&self, recipe: &str, out: &str, extra: &[&str]) -> String {
        let mut cmd = rk();
        cmd.arg("train")
            .arg("--config")
            .arg(recipes().join(recipe))
            .arg("--backbone")
            .arg(self.path("tiny"))
            .arg("--out")
            .arg(self.path(out))
            .args(["--max-steps", "3", "--set", "model.max_length=64"])
            .args(["--set", "training.threads=1"])
            .args(extra);
        run_ok(&mut cmd)
    }
    fn data_args(&self, ratings: bool) -> Vec<String> {
        let (train, held) = if ratings {
            ("train_ratings.jsonl", "heldout_ratings.jsonl")
        } else {
            ("train.jsonl", "heldout.jsonl")
        };
        vec![
            "--data".into(),
            self.path("data").join(train).display().to_string(),
            "--eval-data".into(),
            self.path("data").join(held).display().to_string(),
        ]
    }
}

fn manifest(bundle: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(bundle.join("rewardkit.json")).unwrap()).unwrap()
}

#[test]
fn every_recipe_runs_from_the_command_line() {
    let s = Setup::new();
    for (recipe, ratings, outputs) in [
        ("bt.toml", false, vec!["reward"]),
        ("margin_bt.toml", false, vec!["reward"]),
        ("scaled_bt.toml", false, vec!["reward"]),
        ("helpfulness_regression.toml", true, vec!["helpfulness"]),
        (
            "steerlm_regression.toml",
            true,
            vec![
                "helpfulness",
                "correctness",
                "coherence",
                "complexity",
                "verbosity",
            ],
        ),
    ] {
        let out = recipe.trim_end_matches(".toml");
        let args = s.data_args(ratings);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        s.train(recipe, out, &args);
        let m = manifest(&s.path(out));
        assert_eq!(m["outputs"], serde_json::json!(outputs), "{recipe}");
        let metrics = std::fs::read_to_string(s.path(out).join("metrics.jsonl")).unwrap();
        assert_eq!(
            metrics.lines().filter(|l| l.contains("\"step\"")).count(),
            3,
            "{recipe}"
        );
    }

    // The two-stage pipeline: stage 2 starts from stage 1's bundle, head
    // included, so the final model's one output is helpfulness.
    let d = s.path("data");
    let out = s.train(
        "regression_then_scaled_bt.toml",
        "pipeline",
        &[
            "--ratings",
            d.join("train_ratings.jsonl").to_str().unwrap(),
            "--data",
            d.join("train.jsonl").to_str().unwrap(),
            "--eval-data",
            d.join("heldout.jsonl").to_str().unwrap(),
        ],
    );
    assert!(out.contains("stages/1-helpfulness_regression"), "{out}");
    let stage1 = s.path("pipeline/stages/1-helpfulness_regression");
    let m1 = manifest(&stage1);
    let m2 = manifest(&s.path("pipeline"));
    assert_eq!(m1["provenance"]["recipe"], "helpfulness_regression");
    assert_eq!(m2["provenance"]["recipe"], "scaled_bt");
    assert_eq!(m2["outputs"], serde_json::json!(["helpfulness"]));
    assert_eq!(m2["reward_output"], "helpfulness");

    // A pipeline without its ratings is refused, naming the stage.
    let e = run_err(
        rk().arg("train")
            .arg("--config")
            .arg(recipes().join("regression_then_scaled_bt.toml"))
            .arg("--backbone")
            .arg(s.path("tiny"))
            .arg("--data")
            .arg(d.join("train.jsonl"))
            .arg("--out")
            .arg(s.path("nope")),
    );
    assert!(
        e.contains("--ratings") && e.contains("helpfulness_regression"),
        "{e}"
    );
}

#[test]
fn reward_weights_need_a_regression_recipe() {
    let s = Setup::new();
    let e = run_err(
        rk().arg("train")
            .arg("--config")
            .arg(recipes().join("bt.toml"))
            .arg("--backbone")
            .arg(s.path("tiny"))
            .arg("--data")
            .arg(s.path("data/train.jsonl"))
            .arg("--out")
            .arg(s.path("w"))
            .args(["--set", "model.reward_weights=[1.0]"]),
    );
    assert!(
        e.contains("reward_weights") && e.contains("regression"),
        "{e}"
    );
    // With steerlm_regression the weights land in the bundle and combine outputs.
    s.train(
        "steerlm_regression.toml",
        "weighted",
        &[
            "--data",
            s.path("data/train_ratings.jsonl").to_str().unwrap(),
            "--set",
            "model.reward_weights=[1.0, 0.5, 0.0, 0.0, -0.25]",
        ],
    );
    let m = manifest(&s.path("weighted"));
    assert_eq!(
        m["reward_weights"],
        serde_json::json!([1.0, 0.5, 0.0, 0.0, -0.25])
    );
    let line = run_ok(
        rk().arg("score")
            .arg("--model")
            .arg(s.path("weighted"))
            .args([
                "--prompt",
                "How do I cook rice?",
                "--response",
                "Rinse it and simmer it.",
            ]),
    );
    let v: serde_json::Value = serde_json::from_str(line.trim()).unwrap();
    let f = |k: &str| v[k].as_f64().unwrap();
    let expect = f("helpfulness") + 0.5 * f("correctness") - 0.25 * f("verbosity");
    assert!((f("reward") - expect).abs() < 1e-4, "{v}");
}

#[test]
fn eval_reports_sections_calibration_and_the_length_baseline() {
    let s = Setup::new();
    let bundle = s.path("b");
    run_ok(
        rk().arg("init")
            .arg("--backbone")
            .arg(s.path("tiny"))
            .arg("--out")
            .arg(&bundle),
    );
    // A section mapping over the generated families.
    let sections = s.path("sections.json");
    std::fs::write(
        &sections,
        r#"{"Helpful": ["science", "cooking", "travel", "coding"], "Safety": ["safety"]}"#,
    )
    .unwrap();
    let report = s.path("report.json");
    let out = run_ok(
        rk().arg("eval")
            .arg("--model")
            .arg(&bundle)
            .arg("--data")
            .arg(s.path("data/heldout.jsonl"))
            .arg(s.path("data/train.jsonl"))
            .arg("--sections")
            .arg(&sections)
            .args(["--baseline", "length", "--report"])
            .arg(&report),
    );
    assert!(
        out.contains("section Safety") && out.contains("ECE"),
        "{out}"
    );
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(r["pairs"], 64);
    let sec = r["sections"].as_object().unwrap();
    assert_eq!(sec.len(), 2);
    let (h, sa) = (&sec["Helpful"], &sec["Safety"]);
    assert_eq!(
        h["pairs"].as_u64().unwrap() + sa["pairs"].as_u64().unwrap(),
        64
    );
    // The score is the plain mean of the sections.
    let mean = (h["accuracy"].as_f64().unwrap() + sa["accuracy"].as_f64().unwrap()) / 2.0;
    assert!((r["score"].as_f64().unwrap() - mean).abs() < 1e-12);
    // Each section is the example-weighted mean of its subsets.
    let subsets = r["subsets"].as_object().unwrap();
    let right: f64 = ["science", "cooking", "travel", "coding"]
        .iter()
        .filter_map(|k| subsets.get(*k))
        .map(|t| t["accuracy"].as_f64().unwrap() * t["pairs"].as_f64().unwrap())
        .sum();
    assert!((h["accuracy"].as_f64().unwrap() - right / h["pairs"].as_f64().unwrap()).abs() < 1e-12);
    let ece = r["ece"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&ece));
    // The length baseline, counted independently here.
    let mut longer = 0;
    let mut total = 0;
    for f in ["heldout.jsonl", "train.jsonl"] {
        for line in std::fs::read_to_string(s.path("data").join(f))
            .unwrap()
            .lines()
        {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let len = |k: &str| v[k].as_str().unwrap().chars().count();
            longer += usize::from(len("chosen") > len("rejected"));
            total += 1;
        }
    }
    let b = r["baseline"]["accuracy"].as_f64().unwrap();
    assert!((b - longer as f64 / total as f64).abs() < 1e-12, "{b}");

    // Ratings give MSE and Pearson per attribute.
    let b5 = s.path("b5");
    run_ok(
        rk().arg("init")
            .arg("--backbone")
            .arg(s.path("tiny"))
            .arg("--out")
            .arg(&b5)
            .args(["--outputs", "helpsteer2"]),
    );
    let report = s.path("ratings.json");
    run_ok(
        rk().arg("eval")
            .arg("--model")
            .arg(&b5)
            .arg("--data")
            .arg(s.path("data/heldout_ratings.jsonl"))
            .arg("--report")
            .arg(&report),
    );
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    for a in [
        "helpfulness",
        "correctness",
        "coherence",
        "complexity",
        "verbosity",
    ] {
        assert_eq!(r["regression"][a]["rows"], 32, "{a}");
        assert!(r["regression"][a]["mse"].as_f64().unwrap() >= 0.0);
    }

    // Pairs with no text are refused.
    let empty = s.path("empty.jsonl");
    std::fs::write(
        &empty,
        "{\"prompt\": \"p\", \"chosen\": \" \", \"rejected\": \"\"}\n",
    )
    .unwrap();
    let e = run_err(
        rk().arg("eval")
            .arg("--model")
            .arg(&bundle)
            .arg("--data")
            .arg(&empty),
    );
    assert!(
        e.contains("empty.jsonl") && e.contains("no response text"),
        "{e}"
    );
}

#[test]
fn convert_and_stats() {
    let s = Setup::new();
    let hh = s.path("hh.jsonl");
    std::fs::write(
        &hh,
        concat!(
            r#"{"chosen": "\n\nHuman: How do I bake bread?\n\nAssistant: Mix flour, water, yeast and salt, knead, let it rise, and bake.", "rejected": "\n\nHuman: How do I bake bread?\n\nAssistant: Buy some."}"#,
            "\n",
            r#"{"chosen": "\n\nHuman: hi\n\nAssistant: hello", "rejected": 5}"#,
            "\n"
        ),
    )
    .unwrap();
    let out = s.path("hh-pairs.jsonl");
    let e = run_err(
        rk().args(["data", "convert", "--from", "hh-rlhf", "--input"])
            .arg(&hh)
            .arg("--output")
            .arg(&out),
    );
    assert!(e.contains("hh.jsonl:2") && e.contains("1 of 2 rows"), "{e}");
    let msg = run_ok(
        rk().args([
            "data",
            "convert",
            "--from",
            "hh-rlhf",
            "--skip-bad",
            "--input",
        ])
        .arg(&hh)
        .arg("--output")
        .arg(&out),
    );
    assert!(
        msg.contains("wrote 1 rows") && msg.contains("1 skipped"),
        "{msg}"
    );
    let v: serde_json::Value =
        serde_json::from_str(std::fs::read_to_string(&out).unwrap().trim()).unwrap();
    assert_eq!(v["prompt"], "User: How do I bake bread?");
    assert_eq!(v["rejected"], "Buy some.");

    let report = s.path("stats.json");
    let text = run_ok(
        rk().args(["data", "stats", "--data"])
            .arg(s.path("data/train.jsonl"))
            .arg("--tokenizer")
            .arg(s.path("tiny"))
            .args(["--max-length", "16", "--report"])
            .arg(&report),
    );
    assert!(
        text.contains("48 pairs") && text.contains("strength"),
        "{text}"
    );
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(r["rows"], 48);
    assert_eq!(r["length_unit"], "tokens");
    let strengths: u64 = r["strengths"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(strengths, 48);
    assert!(
        r["truncated_rows"].as_u64().unwrap() > 0,
        "16 tokens truncates some pairs"
    );
    let subsets = r["subsets"].as_object().unwrap();
    assert_eq!(
        subsets.values().map(|v| v.as_u64().unwrap()).sum::<u64>(),
        48
    );
}

#[test]
fn expo_merge_extrapolates_and_refuses_mismatches() {
    let s = Setup::new();
    let (weak, strong) = (s.path("weak"), s.path("strong"));
    for (b, seed) in [(&weak, "1"), (&strong, "2")] {
        run_ok(
            rk().arg("init")
                .arg("--backbone")
                .arg(s.path("tiny"))
                .arg("--out")
                .arg(b)
                .args(["--seed", seed]),
        );
    }
    let score = |b: &Path| -> f64 {
        let line = run_ok(rk().arg("score").arg("--model").arg(b).args([
            "--prompt",
            "Why is the sky blue?",
            "--response",
            "Scattering.",
        ]));
        serde_json::from_str::<serde_json::Value>(line.trim()).unwrap()["reward"]
            .as_f64()
            .unwrap()
    };
    let merge = |alpha: &str, out: &str| {
        run_ok(
            rk().arg("merge")
                .arg("--weak")
                .arg(&weak)
                .arg("--strong")
                .arg(&strong)
                .args(["--alpha", alpha, "--out"])
                .arg(s.path(out)),
        )
    };
    merge("1", "m1");
    merge("0", "m0");
    merge("1.5", "m15");
    assert!((score(&s.path("m1")) - score(&strong)).abs() < 1e-5);
    assert!((score(&s.path("m0")) - score(&weak)).abs() < 1e-5);
    // The head differs between the two (the backbone is shared), so the
    // reward is affine in alpha: r(1.5) = r_w + 1.5 (r_s − r_w).
    let (rw, rs) = (score(&weak), score(&strong));
    assert!((score(&s.path("m15")) - (rw + 1.5 * (rs - rw))).abs() < 1e-4);
    assert_eq!(
        manifest(&s.path("m15"))["provenance"]["recipe"],
        "expo(alpha=1.5)"
    );

    // A bundle with other outputs, or another architecture, is refused.
    let five = s.path("five");
    run_ok(
        rk().arg("init")
            .arg("--backbone")
            .arg(s.path("tiny"))
            .arg("--out")
            .arg(&five)
            .args(["--outputs", "helpsteer2"]),
    );
    let e = run_err(
        rk().arg("merge")
            .arg("--weak")
            .arg(&weak)
            .arg("--strong")
            .arg(&five)
            .arg("--out")
            .arg(s.path("x")),
    );
    assert!(e.contains("outputs"), "{e}");
    let cls = s.path("cls");
    run_ok(
        rk().arg("init")
            .arg("--backbone")
            .arg(s.path("tiny"))
            .arg("--out")
            .arg(&cls)
            .args(["--pooling", "cls"]),
    );
    let e = run_err(
        rk().arg("merge")
            .arg("--weak")
            .arg(&weak)
            .arg("--strong")
            .arg(&cls)
            .arg("--out")
            .arg(s.path("y")),
    );
    assert!(e.contains("pooling"), "{e}");
    assert!(!s.path("x").exists() && !s.path("y").exists());
}
