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
