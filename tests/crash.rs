//! Crash-safe training: a run killed (SIGKILL) at arbitrary moments, over and
//! over, always leaves a loadable checkpoint, and resuming from the last one
//! ends with the same parameters as a run never interrupted. A checkpoint
//! write that fails (the file-size limit stands in for a full disk) is a
//! clear error and keeps the previous checkpoint.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use rewardkit::train::checkpoint;

const STEPS: &str = "60";

struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let rk = env!("CARGO_BIN_EXE_rewardkit");
        let ok = |c: &mut Command| assert!(c.status().expect("run").success());
        ok(Command::new(rk)
            .args(["dev", "tiny-backbone"])
            .arg(dir.path().join("tiny"))
            .stdout(Stdio::null()));
        ok(Command::new(rk)
            .args([
                "data",
                "generate",
                "--train-pairs",
                "96",
                "--heldout-pairs",
                "4",
                "--out",
            ])
            .arg(dir.path().join("data"))
            .stdout(Stdio::null()));
        Setup { dir }
    }

    /// `rewardkit train` into `out`, resuming when a checkpoint is there.
    fn train(&self, out: &Path) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_rewardkit"));
        c.arg("train")
            .arg("--config")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("training/recipes/bt.toml"))
            .arg("--data")
            .arg(self.dir.path().join("data/train.jsonl"))
            .arg("--backbone")
            .arg(self.dir.path().join("tiny"))
            .arg("--out")
            .arg(out)
            .args(["--max-steps", STEPS])
            .args([
                "--set",
                "model.max_length=48",
                "--set",
                "training.batch_size=4",
            ])
            .args([
                "--set",
                "training.checkpoint_every=1",
                "--set",
                "training.threads=1",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if has_checkpoint(out) {
            c.arg("--resume").arg(out);
        }
        c
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }
}

fn has_checkpoint(out: &Path) -> bool {
    out.join("checkpoint").exists() || out.join("checkpoint.prev").exists()
}

fn final_params(out: &Path) -> Vec<(String, Vec<f32>)> {
    let ck = checkpoint::load(out).expect("final checkpoint");
    assert_eq!(ck.state.step.to_string(), STEPS);
    ck.params
}

fn assert_same_params(a: &[(String, Vec<f32>)], b: &[(String, Vec<f32>)]) {
    assert_eq!(a.len(), b.len());
    for ((na, va), (nb, vb)) in a.iter().zip(b) {
        assert_eq!(na, nb);
        for (x, y) in va.iter().zip(vb) {
            assert!(
                (x - y).abs() <= 1e-6 * x.abs().max(1.0),
                "{na}: {x} vs {y} after resuming"
            );
        }
    }
}

#[test]
fn killed_again_and_again_then_resumed_equals_uninterrupted() {
    let s = Setup::new();
    let straight = s.path("straight");
    // The uninterrupted run, timed: start-up (until its first checkpoint
    // exists) and the whole run.
    let started = std::time::Instant::now();
    let mut child = s.train(&straight).spawn().expect("run");
    let mut startup = None;
    let status = loop {
        if startup.is_none() && has_checkpoint(&straight) {
            startup = Some(started.elapsed());
        }
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let full = started.elapsed();
    let mut err = String::new();
    use std::io::Read;
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut err)
        .expect("read stderr");
    assert!(status.success(), "{err}");
    let want = final_params(&straight);

    let crashed = s.path("crashed");
    // Deterministic "random" delays from a small LCG: from 75% of the
    // start-up to a twelfth of the way through the steps after it, so that
    // however the machine splits its time between start-up and steps,
    // several runs are killed: some in start-up, most in steps and
    // checkpoint writes.
    let full_ms = full.as_millis().max(100) as u64;
    let startup_ms = startup.unwrap_or(full).as_millis() as u64;
    let (lo, span) = (
        startup_ms * 3 / 4,
        (full_ms.saturating_sub(startup_ms) / 12).max(1),
    );
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let mut kills = 0;
    let mut steps_seen = Vec::new();
    let mut finished = false;
    // A resumed run starts up slower than a fresh one (it loads the
    // checkpoint) and the machine may be busy: while kills make no progress,
    // each waits a fifth of the start-up longer than the last.
    let mut extra = 0;
    for _ in 0..30 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let delay = lo + extra + (x >> 33) % span;
        let mut child = s.train(&crashed).spawn().expect("spawn");
        std::thread::sleep(Duration::from_millis(delay));
        if let Some(status) = child.try_wait().expect("wait") {
            let mut err = String::new();
            use std::io::Read;
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            assert!(status.success(), "a resumed run failed: {err}");
            finished = true;
            break;
        }
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
        kills += 1;
        // Whatever moment the kill hit, the last checkpoint loads.
        let before = steps_seen.last().copied();
        if has_checkpoint(&crashed) {
            let ck = checkpoint::load(&crashed).expect("a loadable checkpoint after SIGKILL");
            steps_seen.push(ck.state.step);
        }
        if steps_seen.last().copied() == before {
            extra += startup_ms / 5;
        } else {
            extra /= 2;
        }
    }
    if !finished {
        let out = s.train(&crashed).output().expect("run");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(
        kills >= 5,
        "only {kills} kills landed: the runs are too short"
    );
    eprintln!(
        "{kills} kills (an uninterrupted run takes {full_ms} ms, {startup_ms} ms to its first \
         checkpoint; checkpointed steps after each kill: {steps_seen:?}), then resumed to the end"
    );
    // The kills must land during training, not only in start-up.
    let distinct: std::collections::BTreeSet<_> = steps_seen.iter().collect();
    assert!(
        distinct.len() >= 3,
        "the kills never interrupted training itself: {steps_seen:?}"
    );
    assert_same_params(&want, &final_params(&crashed));
}

#[test]
fn a_failed_checkpoint_write_keeps_the_previous_one() {
    let s = Setup::new();
    let out = s.path("full");
    // A first run killed once it has checkpoints.
    let mut child = s.train(&out).spawn().expect("spawn");
    let t0 = std::time::Instant::now();
    while checkpoint::load(&out).map_or(true, |c| c.state.step < 3) {
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "no checkpoint appeared"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    let before = checkpoint::load(&out).expect("checkpoint");

    // Resume with a 200 KiB file-size limit: the graphs fit, the optimizer
    // state does not, so the next checkpoint write fails as on a full disk.
    let mut cmd = s.train(&out);
    let args: Vec<String> = std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| format!("'{}'", a.to_string_lossy()))
        .collect();
    let limited = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "trap '' XFSZ; ulimit -f 200; exec {}",
            args.join(" ")
        ))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("run under a file-size limit");
    let err = String::from_utf8_lossy(&limited.stderr);
    assert!(!limited.status.success(), "the write should have failed");
    assert!(
        err.contains("error [200]") && err.contains("checkpoint"),
        "{err}"
    );
    let kept = checkpoint::load(&out).expect("the previous checkpoint survives");
    assert_eq!(kept.state, before.state);
    assert_eq!(kept.params, before.params);

    // Without the limit the run resumes and ends like an uninterrupted one.
    let out2 = cmd.output().expect("resume");
    assert!(
        out2.status.success(),
        "{}",
        String::from_utf8_lossy(&out2.stderr)
    );
    let straight = s.path("straight");
    assert!(s.train(&straight).status().expect("run").success());
    assert_same_params(&final_params(&straight), &final_params(&out));
}
