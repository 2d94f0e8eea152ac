//! ONNX Runtime's worker threads go idle when a run returns instead of
//! spinning on: a scorer or trainer must not keep burning a core after a
//! call, which would slow the next session (the trainer alternates two) and
//! the host application's own threads.
//!
//! This file holds one test so that nothing else runs in its process while
//! it reads the process's CPU time.

#![cfg(target_os = "linux")]

use rewardkit::onnx::builder::{model, Dim};
use rewardkit::onnx::proto::data_type::FLOAT;
use rewardkit::runtime::{ModelRunner, RunnerOptions, TensorInput};

fn process_cpu_seconds() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-pointer for the call's duration.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime");
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

#[test]
fn worker_threads_do_not_spin_after_a_run() {
    // Elementwise work large enough that ONNX Runtime hands it to its
    // worker threads.
    let n = 1 << 22;
    let mut g = rewardkit::onnx::GraphBuilder::new();
    let x = g.input("x", FLOAT, &[Dim::Fixed(n)]);
    let mut y = g.op("Mul", &[&x, &x], vec![]);
    for _ in 0..8 {
        y = g.op("Mul", &[&y, &x], vec![]);
    }
    g.output(&y, "y", FLOAT, &[Dim::Fixed(n)]);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("work.onnx");
    rewardkit::onnx::io::write_model(&path, &model(g.build("work"), ""), usize::MAX)
        .expect("write model");
    let runner = ModelRunner::open(
        &path,
        RunnerOptions {
            threads: 2,
            ..RunnerOptions::default()
        },
    )
    .expect("open");
    let input = ndarray::ArrayD::from_elem(vec![n as usize], 1.0f32);
    let run = || {
        runner
            .run(vec![TensorInput::new("x", input.clone())], &["y"])
            .expect("run")
    };
    run();
    let mut idle_cpu = Vec::new();
    for _ in 0..3 {
        let out = run();
        assert_eq!(out[0].len(), n as usize);
        let before = process_cpu_seconds();
        std::thread::sleep(std::time::Duration::from_millis(300));
        idle_cpu.push(process_cpu_seconds() - before);
    }
    // Spinning workers burn tens of milliseconds after each run (about 50
    // on 2 cores without `session.force_spinning_stop`); parked ones next
    // to nothing.
    let least = idle_cpu.iter().cloned().fold(f64::INFINITY, f64::min);
    assert!(
        least < 0.010,
        "CPU time while idle after a run: {:?} s",
        idle_cpu
    );
}
