//! `secc bench` end to end on its smoke suite (real keys, real parties), and the
//! backend prediction of `secc compile --backend auto`.

mod common;

use common::model_dir;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn secc(args: &[&str], cache: &Path) -> Output {
    // A private cache folder: a `secc calibrate-costs` run on this machine must not change the tests.
    Command::new(env!("CARGO_BIN_EXE_secc")).env("XDG_CACHE_HOME", cache).args(args).output().expect("secc runs")
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("secc-bench-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn the_smoke_suite_writes_consistent_json_markdown_and_charts() {
    let dir = tmp("smoke");
    let out = dir.join("out");
    let o = secc(&["bench", "--suite", "smoke", "--out", s(&out)], &dir);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("bench.json")).unwrap()).unwrap();
    let md = std::fs::read_to_string(out.join("bench.md")).unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    let rows = json["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 3, "{json}");
    for row in rows {
        let name = row["name"].as_str().unwrap();
        let line =
            md.lines().find(|l| l.contains(&format!("| {name} |"))).unwrap_or_else(|| panic!("{name} not in bench.md"));
        assert!(stdout.contains(line), "stdout and bench.md differ on {name}");
        for backend in ["fhe", "mpc"] {
            let m = &row[backend]["measured"];
            let (median, predicted) = (m["median_ms"].as_f64().unwrap(), m["predicted_ms"].as_f64().unwrap());
            assert!(median > 0.0 && predicted > 0.0, "{name} {backend}: {m}");
            let shown = if median >= 1000.0 { format!("{:.3} s", median / 1e3) } else { format!("{median:.3} ms") };
            assert!(line.contains(&shown), "{name}: {backend} median {median} missing from {line}");
            assert_eq!(m["repetitions"], 1);
        }
        let mpc = &row["mpc"]["measured"];
        assert_eq!(mpc["plan_matches"], true, "{name}: the parties sent other traffic than the plan states");
        assert!(mpc["accuracy"]["max_abs_error"].as_f64().unwrap() < 1e-3, "{name}: {mpc}");
        assert!(row["winner"]["measured"].is_string());
    }
    assert!(md.contains("prediction within 2x of measurement: TFHE"));
    for suite in ["matmul", "activations", "linreg"] {
        let svg = std::fs::read_to_string(out.join(format!("{suite}.svg"))).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("TFHE measured") && svg.contains("<circle"), "{suite}.svg");
        assert!(md.contains(&format!("![{suite}]({suite}.svg)")));
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn backend_auto_picks_fhe_for_a_small_linear_regression_and_says_why() {
    let dir = tmp("auto");
    let m = model_dir("linreg_2");
    let art = dir.join("linreg_2.secc");
    let o = secc(
        &["compile", s(&m.join("model.onnx")), "--calib", s(&m.join("calib.csv")), "-o", s(&art), "--backend", "auto"],
        &dir,
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert!(stderr.contains("backend: fhe: "), "{stderr}");
    let o = secc(&["inspect", s(&art)], &dir);
    let text = String::from_utf8_lossy(&o.stdout);
    let line = text.lines().find(|l| l.starts_with("backend (compile --backend auto): ")).expect("the choice is shown");
    assert!(
        line.contains("fhe: ")
            && line.contains(" vs mpc ")
            && line.contains("on LAN (0.2 ms RTT")
            && line.contains("costs: built-in"),
        "{line}"
    );
    for network in ["loopback:", "LAN (0.2 ms RTT, 1000 Mbit/s):", "WAN (40 ms RTT, 100 Mbit/s):"] {
        assert!(text.contains(network), "inspect shows no prediction for {network}");
    }
    // Without --backend auto nothing is chosen.
    let plain = dir.join("plain.secc");
    let o = secc(&["compile", s(&m.join("model.onnx")), "--calib", s(&m.join("calib.csv")), "-o", s(&plain)], &dir);
    assert!(o.status.success());
    let text = String::from_utf8_lossy(&secc(&["inspect", s(&plain)], &dir).stdout).into_owned();
    assert!(text.contains("backend: not chosen"));
    std::fs::remove_dir_all(&dir).ok();
}
