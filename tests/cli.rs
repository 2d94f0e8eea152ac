//! The `rewardkit` command line, run as a user would.

mod common;

use std::process::Command;

fn rk() -> Command {
    Command::new(env!("CARGO_BIN_EXE_rewardkit"))
}

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run rewardkit");
    assert!(
        out.status.success(),
        "failed: {}",
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

#[test]
fn init_then_score_one_pair_and_a_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let backbone = dir.path().join("tiny");
    run_ok(rk().args(["dev", "tiny-backbone"]).arg(&backbone));
    let bundle = dir.path().join("b");
    let msg = run_ok(
        rk().arg("init")
            .arg("--backbone")
            .arg(&backbone)
            .arg("--out")
            .arg(&bundle)
            .args(["--outputs", "helpsteer2", "--seed", "7"]),
    );
    assert!(msg.contains("helpfulness"), "{msg}");

    let one = run_ok(rk().arg("score").arg("--model").arg(&bundle).args([
        "--prompt",
        "what is the sun?",
        "--response",
        "a star",
    ]));
    let v: serde_json::Value = serde_json::from_str(one.trim()).expect("json line");
    for k in [
        "reward",
        "helpfulness",
        "correctness",
        "coherence",
        "complexity",
        "verbosity",
    ] {
        assert!(v[k].as_f64().is_some(), "missing {k} in {one}");
    }
    assert_eq!(v["reward"], v["helpfulness"]);

    let input = dir.path().join("in.jsonl");
    std::fs::write(
        &input,
        "{\"prompt\": \"what is the sun?\", \"response\": \"a star\"}\n\n{\"prompt\": \"say yes\", \"chosen\": \"yes\", \"rejected\": \"no\"}\n",
    )
    .expect("write");
    let output = dir.path().join("out.jsonl");
    run_ok(
        rk().arg("score")
            .arg("--model")
            .arg(&bundle)
            .arg("--input")
            .arg(&input)
            .arg("--output")
            .arg(&output),
    );
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&output)
        .expect("read")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert_eq!(lines.len(), 2);
    // The file path and the single-pair path agree.
    assert!(
        (lines[0]["reward"].as_f64().expect("f") - v["reward"].as_f64().expect("f")).abs() < 1e-6
    );
    let margin = lines[1]["chosen"]["reward"].as_f64().expect("c")
        - lines[1]["rejected"]["reward"].as_f64().expect("r");
    assert!((lines[1]["margin"].as_f64().expect("m") - margin).abs() < 1e-5);
    assert_eq!(lines[1]["correct"].as_bool(), Some(margin > 0.0));

    let info = run_ok(rk().arg("info").arg("--model").arg(&bundle));
    assert!(info.contains("rewardkit-bundle"));
}

#[test]
fn bad_input_lines_are_reported_with_file_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bundle = common::reward_bundle(dir.path());
    let input = dir.path().join("bad.jsonl");
    std::fs::write(
        &input,
        "{\"prompt\": \"a\", \"response\": \"b\"}\n{\"prompt\": 3, \"response\": \"b\"}\n",
    )
    .expect("write");
    let err = run_err(
        rk().arg("score")
            .arg("--model")
            .arg(&bundle)
            .arg("--input")
            .arg(&input),
    );
    assert!(
        err.contains("bad.jsonl:2") && err.contains("prompt"),
        "{err}"
    );

    std::fs::write(&input, "{\"prompt\": \"a\"}\n").expect("write");
    let err = run_err(
        rk().arg("score")
            .arg("--model")
            .arg(&bundle)
            .arg("--input")
            .arg(&input),
    );
    assert!(err.contains("bad.jsonl:1"), "{err}");

    std::fs::write(&input, "not json\n").expect("write");
    let err = run_err(
        rk().arg("score")
            .arg("--model")
            .arg(&bundle)
            .arg("--input")
            .arg(&input),
    );
    assert!(err.contains("bad.jsonl:1") && err.contains("JSON"), "{err}");
}

#[test]
fn missing_runtime_lists_where_it_looked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bundle = common::reward_bundle(dir.path());
    let err = run_err(
        rk().env("REWARDKIT_ORT_LIB", "/nonexistent/libonnxruntime.so")
            .arg("score")
            .arg("--model")
            .arg(&bundle)
            .args(["--prompt", "a", "--response", "b"]),
    );
    assert!(
        err.contains("[300]") && err.contains("/nonexistent/libonnxruntime.so"),
        "{err}"
    );
}

#[test]
fn unknown_device_and_missing_bundle() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bundle = common::reward_bundle(dir.path());
    let err = run_err(rk().arg("score").arg("--model").arg(&bundle).args([
        "--prompt",
        "a",
        "--response",
        "b",
        "--device",
        "tpu",
    ]));
    assert!(err.contains("tpu"), "{err}");
    let err = run_err(rk().arg("score").args([
        "--model",
        "/no/such/bundle",
        "--prompt",
        "a",
        "--response",
        "b",
    ]));
    assert!(
        err.contains("[201]") && err.contains("/no/such/bundle"),
        "{err}"
    );
}

fn write_pairs(path: &std::path::Path, n: usize, subsets: bool) {
    let topics = ["water", "fire", "the sun", "the moon", "a cat", "a dog"];
    let mut s = String::new();
    for i in 0..n {
        let t = topics[i % topics.len()];
        let subset = if subsets {
            format!(
                ", \"subset\": \"{}\"",
                if i % 2 == 0 { "even" } else { "odd" }
            )
        } else {
            String::new()
        };
        s.push_str(&format!(
            "{{\"prompt\": \"explain {t} please\", \"chosen\": \"sure, {t} is good, a helpful and correct answer.\", \"rejected\": \"no. {t} is bad, wrong.\"{subset}}}\n"
        ));
    }
    std::fs::write(path, s).expect("write pairs");
}

#[test]
fn train_then_eval_from_the_command_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let backbone = dir.path().join("tiny");
    run_ok(rk().args(["dev", "tiny-backbone"]).arg(&backbone));
    let data = dir.path().join("train.jsonl");
    write_pairs(&data, 12, true);
    let recipe = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("training/recipes/bt.toml");
    let out = dir.path().join("rm");
    run_ok(
        rk().arg("train")
            .arg("--config")
            .arg(&recipe)
            .arg("--data")
            .arg(&data)
            .arg("--eval-data")
            .arg(&data)
            .arg("--backbone")
            .arg(&backbone)
            .arg("--out")
            .arg(&out)
            .args([
                "--max-steps",
                "4",
                "--set",
                "model.max_length=48",
                "--set",
                "optimizer.lr=3e-3",
                "--set",
                "training.threads=1",
            ]),
    );
    assert!(out.join("rewardkit.json").exists() && out.join("checkpoint/state.json").exists());
    let metrics = std::fs::read_to_string(out.join("metrics.jsonl")).expect("metrics");
    assert_eq!(metrics.lines().count(), 4);

    let report = dir.path().join("report.json");
    let table = run_ok(
        rk().arg("eval")
            .arg("--model")
            .arg(&out)
            .arg("--data")
            .arg(&data)
            .arg("--report")
            .arg(&report),
    );
    assert!(
        table.contains("even") && table.contains("odd") && table.contains("overall"),
        "{table}"
    );
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).expect("report")).expect("json");
    assert_eq!(r["pairs"], 12);
    assert_eq!(r["subsets"]["even"]["pairs"], 6);
    let acc = r["accuracy"].as_f64().expect("accuracy");
    assert!((0.0..=1.0).contains(&acc));

    // Resume from the checkpoint with more steps.
    run_ok(
        rk().arg("train")
            .arg("--config")
            .arg(&recipe)
            .arg("--data")
            .arg(&data)
            .arg("--backbone")
            .arg(&backbone)
            .arg("--out")
            .arg(&out)
            .arg("--resume")
            .arg(&out)
            .args([
                "--max-steps",
                "4",
                "--set",
                "model.max_length=48",
                "--set",
                "optimizer.lr=3e-3",
                "--set",
                "training.threads=1",
            ]),
    );
}

#[test]
fn train_rejects_unknown_recipe_keys_and_bad_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    let backbone = dir.path().join("tiny");
    run_ok(rk().args(["dev", "tiny-backbone"]).arg(&backbone));
    let data = dir.path().join("train.jsonl");
    write_pairs(&data, 4, false);
    let recipe = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("training/recipes/bt.toml");
    let base = |c: &mut Command| {
        c.arg("train")
            .arg("--config")
            .arg(&recipe)
            .arg("--backbone")
            .arg(&backbone)
            .arg("--out")
            .arg(dir.path().join("o"));
    };
    let mut c = rk();
    base(&mut c);
    let err = run_err(
        c.arg("--data")
            .arg(&data)
            .args(["--set", "optimizer.learnig_rate=1"]),
    );
    assert!(err.contains("learnig_rate"), "{err}");

    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, "{\"prompt\": \"p\", \"chosen\": \"a\", \"rejected\": \"b\"}\n{\"prompt\": \"p\", \"chosen\": \"same\", \"rejected\": \"same\"}\n").expect("write");
    let mut c = rk();
    base(&mut c);
    let err = run_err(c.arg("--data").arg(&bad));
    assert!(
        err.contains("bad.jsonl:2") && err.contains("same text"),
        "{err}"
    );

    let empty = dir.path().join("empty.jsonl");
    std::fs::write(&empty, "\n").expect("write");
    let mut c = rk();
    base(&mut c);
    let err = run_err(c.arg("--data").arg(&empty));
    assert!(err.contains("no usable pairs"), "{err}");

    let nodata = dir.path().join("nodata.jsonl");
    std::fs::write(
        &nodata,
        "{\"prompt\": \"p\", \"chosen\": \"\", \"rejected\": \"\"}\n",
    )
    .expect("write");
    let bundle = dir.path().join("b");
    run_ok(
        rk().arg("init")
            .arg("--backbone")
            .arg(&backbone)
            .arg("--out")
            .arg(&bundle),
    );
    let err = run_err(
        rk().arg("eval")
            .arg("--model")
            .arg(&bundle)
            .arg("--data")
            .arg(&nodata),
    );
    assert!(err.contains("nodata.jsonl:1"), "{err}");
}
