//! The SMPC backend end to end: three real parties over loopback sockets run every
//! testdata model (a few test rows each) and must agree with the float IR; the bytes
//! and rounds they really send must be the plan's; a killed party must stop the others
//! (`secc party` processes over TLS). Other faults: `mpc_faults.rs`.

mod common;

use common::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const ROWS: usize = 3;
/// Largest logit difference allowed on the digits nets (fixed point 2^-18, polynomial
/// activations fitted to 1e-4 of their peak).
const LOGIT_BOUND: f64 = 0.05;

#[test]
fn every_model_agrees_with_the_float_ir_and_sends_what_the_plan_says() {
    let models = MODELS.iter().chain(&["unseen_cnn", "unseen_gelu"]).filter(|n| runs_on(n, "mpc"));
    for name in models {
        let (g, plan) = mpc_plan(name);
        let xs = samples(&g, name, "test.csv");
        let xs = &xs[..ROWS];
        let flat: Vec<Vec<f32>> = xs.iter().map(|s| s[0].as_f32().unwrap().iter().copied().collect()).collect();
        let reports = secc_runtime::mpc::session::run_local(&plan, &flat, Duration::from_secs(30), 1).unwrap();
        let got = reports[plan.roles.receiver].outputs.as_ref().unwrap();
        let task = meta(name).task;
        for (x, y) in xs.iter().zip(got) {
            let want = secc_ir::interp::run_graph(&g, x).unwrap()[0].to_f64_vec();
            let y: Vec<f64> = y.iter().map(|&v| v as f64).collect();
            if task == "classification" {
                assert_eq!(argmax(&y), argmax(&want), "{name}: argmax differs: {y:?} vs {want:?}");
                let worst = y.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
                assert!(worst <= LOGIT_BOUND, "{name}: logits off by {worst}");
            } else {
                for (a, b) in y.iter().zip(&want) {
                    assert!((a - b).abs() / b.abs().max(1.0) <= 1e-3, "{name}: {a} vs {b}");
                }
            }
        }
        let cost = plan.total(ROWS);
        for r in &reports {
            let (t, _) = r.runs[0];
            assert_eq!(t.rounds, cost.rounds, "{name}: rounds of party {}", r.id);
            assert_eq!(t.bytes, cost.bytes[r.id], "{name}: bytes of party {}", r.id);
        }
    }
}

#[test]
fn forests_match_the_float_model_on_every_test_row() {
    for name in MODELS.iter().filter(|n| is_tree(n) && runs_on(n, "mpc")) {
        let (g, plan) = mpc_plan(name);
        let xs = samples(&g, name, "test.csv");
        let got: Vec<Vec<f64>> = run_plan(&plan, &xs).iter().map(|y| y.iter().map(|&v| v as f64).collect()).collect();
        let want: Vec<Vec<f64>> =
            xs.iter().map(|x| secc_ir::interp::run_graph(&g, x).unwrap()[0].to_f64_vec()).collect();
        // Every path is exact: each output equals the float model's up to fixed-point
        // rounding of the leaf values (2^-32).
        for (row, (y, w)) in got.iter().zip(&want).enumerate() {
            for (a, b) in y.iter().zip(w) {
                assert!((a - b).abs() <= 1e-4 * b.abs().max(1.0), "{name} row {row}: {a} vs {b}");
            }
        }
        if meta(name).task == "classification" {
            assert!(got.iter().zip(&want).all(|(a, b)| argmax(a) == argmax(b)), "{name}: a label differs");
        }
    }
}

#[test]
fn killing_a_party_mid_run_stops_the_others_with_its_name() {
    let (_, plan) = mpc_plan("cnn_tiny");
    let dir = std::env::temp_dir().join(format!("secc-mpc-kill-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("owner.plan"), plan.to_bytes()).unwrap();
    std::fs::write(dir.join("other.plan"), plan.weightless().to_bytes()).unwrap();
    let ports: Vec<u16> =
        (0..3).map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()).collect();
    let pins: Vec<String> = (0..3)
        .map(|i| {
            let key = format!("p{i}.key");
            let out =
                Command::new(env!("CARGO_BIN_EXE_secc")).current_dir(&dir).args(["party-keygen", "-o", &key]).output();
            String::from_utf8(out.unwrap().stdout).unwrap().trim().to_string()
        })
        .collect();
    let list = |v: Vec<String>| v.iter().map(|p| format!("\"{p}\"")).collect::<Vec<_>>().join(", ");
    let addrs = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let toml = format!("parties = [{}]\npins = [{}]\n", list(addrs), list(pins));
    std::fs::write(dir.join("parties.toml"), toml).unwrap();
    std::fs::copy(model_dir("cnn_tiny").join("test.csv"), dir.join("x.csv")).unwrap();
    let spawn = |id: usize| {
        let plan = if id == plan.roles.model_owner { "owner.plan" } else { "other.plan" };
        let mut c = Command::new(env!("CARGO_BIN_EXE_secc"));
        c.current_dir(&dir)
            .args(["party", plan, "--id", &id.to_string(), "--parties", "parties.toml", "--timeout", "3"])
            .args(["--key", &format!("p{id}.key")])
            .args(["--repeat", "100000"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if id == 0 {
            c.args(["--input", "x.csv"]);
        }
        c.spawn().unwrap()
    };
    let mut parties: Vec<_> = (0..3).map(spawn).collect();
    std::thread::sleep(Duration::from_millis(1500));
    assert!(parties.iter_mut().all(|p| p.try_wait().unwrap().is_none()), "all parties still running");
    parties[2].kill().unwrap();
    parties[2].wait().unwrap();
    let start = Instant::now();
    for mut p in parties.into_iter().take(2) {
        let status = loop {
            if let Some(s) = p.try_wait().unwrap() {
                break s;
            }
            assert!(start.elapsed() < Duration::from_secs(10), "a party hangs after its peer died");
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut err = String::new();
        std::io::Read::read_to_string(p.stderr.as_mut().unwrap(), &mut err).unwrap();
        assert!(!status.success());
        assert!(err.contains("party 2"), "the error names the lost peer: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
    std::fs::remove_dir_all(&dir).ok();
}
