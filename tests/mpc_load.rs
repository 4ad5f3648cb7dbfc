//! One SMPC session serving a thousand inferences: memory stays flat and every run sends
//! the same traffic (latency is the benchmark's, not a pass/fail check: it moves with the
//! machine's load). A test binary of its own, so that no other test allocates in the process while the
//! memory is measured.

mod common;

use common::*;
use secc_runtime::mpc::session::{fresh_tls, run_local_with};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Resident memory of this process, in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn one_session_serves_a_thousand_inferences_with_flat_memory_and_latency() {
    let (_, plan) = mpc_plan("linreg_8");
    let xs = &rows("linreg_8", "test.csv", 8)[..1];
    // Sample the memory while the session runs: after the first tenth of it, and at the end.
    let done = Arc::new(AtomicBool::new(false));
    let samples = Arc::new(Mutex::new(Vec::new()));
    let sampler = {
        let (done, samples) = (done.clone(), samples.clone());
        std::thread::spawn(move || {
            let start = Instant::now();
            while !done.load(Ordering::Relaxed) {
                samples.lock().unwrap().push((start.elapsed(), rss_kib()));
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let start = Instant::now();
    let reports = run_local_with(&plan, xs, fresh_tls(), Duration::from_secs(10), 1000).unwrap();
    let took = start.elapsed();
    done.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    let runs = &reports[plan.roles.receiver].runs;
    assert_eq!(runs.len(), 1000);
    // Every run sends exactly what the first did.
    assert!(runs.iter().all(|(t, _)| *t == runs[0].0));
    let samples = samples.lock().unwrap();
    let early = samples.iter().filter(|(t, _)| *t <= took / 10).map(|(_, r)| *r).max().unwrap();
    let end = samples.iter().map(|(_, r)| *r).max().unwrap();
    eprintln!("1000 inferences in {took:?}; RSS {early} -> {end} KiB");
    assert!(end <= early + 4096, "memory grew from {early} KiB to {end} KiB over 900 inferences");
}
