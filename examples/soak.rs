//! Soak run for issue 8: many threads score one scorer through the C ABI for
//! a long, bounded run; every result must equal the sequential score of the
//! same pair, and resident memory must stay flat.
//!
//!   cargo run --release --example soak -- [PAIRS=1000000] [THREADS=4]
//!
//! Uses a tiny random bundle (so a million pairs take minutes, not hours)
//! and prints the RSS every tenth of the run, then the growth from the first
//! sample after warm-up to the end.

use std::ffi::CString;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use rewardkit::ffi::*;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

struct Handle(*mut rk_scorer);
// SAFETY: rk_scorer is documented as safe to share between threads.
unsafe impl Send for Handle {}
unsafe impl Sync for Handle {}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let total = args.first().copied().unwrap_or(1_000_000);
    let threads = args.get(1).copied().unwrap_or(4);
    let dir = tempfile::tempdir().expect("tempdir");
    rewardkit::testing::write_tiny_bert(&dir.path().join("tiny"), Default::default())
        .expect("tiny");
    rewardkit::bundle::init_from_backbone(
        &dir.path().join("tiny"),
        &dir.path().join("bundle"),
        &Default::default(),
    )
    .expect("bundle");

    // A pool of distinct pairs of varied lengths, and their sequential scores.
    let words = [
        "alpha", "beta", "gamma", "delta", "water", "fire", "answer", "question",
    ];
    let pairs: Vec<(CString, CString)> = (0..256)
        .map(|i| {
            let p: Vec<&str> = (0..(i % 13 + 1)).map(|k| words[(i + k) % 8]).collect();
            let r: Vec<&str> = (0..(i % 29 + 1)).map(|k| words[(i * 3 + k) % 8]).collect();
            (
                CString::new(p.join(" ")).unwrap(),
                CString::new(r.join(" ")).unwrap(),
            )
        })
        .collect();
    let mut opts = rk_scorer_options_default();
    opts.threads = 1;
    opts.max_sessions = threads;
    let path = CString::new(dir.path().join("bundle").to_str().unwrap()).unwrap();
    let mut s: *mut rk_scorer = std::ptr::null_mut();
    // SAFETY: valid strings, options and out-pointer.
    let err = unsafe { rk_scorer_open(path.as_ptr(), &opts, &mut s) };
    assert!(err.is_null(), "open failed");
    let expected: Vec<f32> = pairs
        .iter()
        .map(|(p, r)| {
            let mut v = 0f32;
            // SAFETY: live scorer and strings.
            assert!(unsafe { rk_scorer_score(s, p.as_ptr(), r.as_ptr(), &mut v) }.is_null());
            v
        })
        .collect();
    let expected = Arc::new(expected);
    let pairs = Arc::new(pairs);
    let handle = Arc::new(Handle(s));
    let done = Arc::new(AtomicUsize::new(0));
    let batch = 32;
    let start = std::time::Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let (h, pairs, expected, done) = (
                handle.clone(),
                pairs.clone(),
                expected.clone(),
                done.clone(),
            );
            std::thread::spawn(move || {
                let mut mismatches = 0usize;
                let mut out = vec![0f32; batch];
                let mut k = t * 7919;
                while done.fetch_add(batch, Ordering::Relaxed) < total {
                    let idx: Vec<usize> = (0..batch).map(|j| (k + j * 31) % pairs.len()).collect();
                    k += 17;
                    let ps: Vec<_> = idx.iter().map(|&i| pairs[i].0.as_ptr()).collect();
                    let rs: Vec<_> = idx.iter().map(|&i| pairs[i].1.as_ptr()).collect();
                    // SAFETY: arrays of `batch` live strings and room for `batch` floats.
                    let err = unsafe {
                        rk_scorer_score_batch(
                            h.0,
                            batch,
                            ps.as_ptr(),
                            rs.as_ptr(),
                            out.as_mut_ptr(),
                        )
                    };
                    assert!(err.is_null(), "score_batch failed");
                    for (j, &i) in idx.iter().enumerate() {
                        if (out[j] - expected[i]).abs() > 1e-5 {
                            mismatches += 1;
                        }
                    }
                }
                mismatches
            })
        })
        .collect();
    let mut samples = vec![(0usize, rss_kib())];
    while samples.len() <= 10 && !workers.iter().all(|w| w.is_finished()) {
        let next = total * samples.len() / 10;
        while done.load(Ordering::Relaxed) < next && !workers.iter().all(|w| w.is_finished()) {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        samples.push((done.load(Ordering::Relaxed).min(total), rss_kib()));
    }
    let mismatches: usize = workers.into_iter().map(|w| w.join().expect("worker")).sum();
    let secs = start.elapsed().as_secs_f64();
    // SAFETY: no call is running any more.
    unsafe { rk_scorer_free(handle.0) };
    println!("| pairs scored | RSS (MiB) |\n| ---: | ---: |");
    for (n, kib) in &samples {
        println!("| {n} | {:.1} |", *kib as f64 / 1024.0);
    }
    let warm = samples.get(1).map_or(0, |s| s.1) as f64 / 1024.0;
    let end = samples.last().map_or(0, |s| s.1) as f64 / 1024.0;
    println!(
        "\n{total} pairs on {threads} threads in {secs:.1} s ({:.0} pairs/s); RSS {warm:.1} MiB after 10% → {end:.1} MiB at the end ({:+.1} MiB); {mismatches} results differ from sequential scoring",
        total as f64 / secs,
        end - warm
    );
    assert_eq!(mismatches, 0);
}
