//! The command line end to end: a model no other test has seen compiles and runs
//! with the documented commands, and bad input of every kind is a clear error with a
//! non-zero exit, never a panic; `secc bench` runs its smoke suite end to end (real keys,
//! real parties) and `compile --backend auto` records its prediction.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn secc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_secc")).args(args).output().expect("secc runs")
}

/// A scratch directory, removed when the test ends (keys run to hundreds of MB).
struct Scratch(PathBuf);

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tmp(name: &str) -> Scratch {
    let dir = std::env::temp_dir().join(format!("secc-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    Scratch(dir)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Runs a failing command and returns its stderr, checking it failed cleanly.
fn fails(args: &[&str]) -> String {
    let out = secc(args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{args:?} should fail with exit code 1; stderr: {err}");
    assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
    assert!(err.starts_with("error: "), "{args:?}: {err}");
    err
}

/// Runs a command whose flags clap must refuse, and returns its stderr: a usage error
/// (status 2) naming the flag, never a panic.
fn refused(args: &[&str]) -> String {
    let out = secc(args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{args:?} should be a usage error; stderr: {err}");
    assert!(!err.contains("panicked"), "{args:?} panicked: {err}");
    assert!(err.starts_with("error: "), "{args:?}: {err}");
    err
}

fn compile(name: &str, dir: &Path) -> PathBuf {
    let m = model_dir(name);
    let out = dir.join(format!("{name}.secc"));
    let o = secc(&["compile", s(&m.join("model.onnx")), "--calib", s(&m.join("calib.csv")), "-o", s(&out)]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    out
}

fn parse_rows(text: &str) -> Vec<Vec<f64>> {
    text.lines().map(|l| l.split(',').map(|v| v.parse().unwrap()).collect()).collect()
}

#[test]
fn unseen_models_compile_and_run_with_the_documented_commands() {
    let dir = tmp("unseen");
    for name in ["unseen_cnn", "unseen_gelu"] {
        let art = compile(name, &dir);
        let inspect = secc(&["inspect", s(&art)]);
        let text = String::from_utf8_lossy(&inspect.stdout);
        assert!(inspect.status.success() && text.contains("widest table input") && text.contains("input 0: f32["));
        let test = model_dir(name).join("test.csv");
        let labels = labels(name);
        let mut acc = Vec::new();
        for backend in ["float", "sim"] {
            let out = secc(&["run", s(&art), "--input", s(&test), "--backend", backend]);
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            let rows = parse_rows(&String::from_utf8_lossy(&out.stdout));
            assert_eq!(rows.len(), labels.len());
            acc.push(metric("classification", &rows, &labels));
        }
        assert!((acc[0] - meta(name).float_metric).abs() < 1e-5, "{name}: float backend accuracy {}", acc[0]);
        // How close the simulation must come is the model's meta.json's to say (its
        // `backends`, checked by tests/exporters.rs); here it must at least run.
        let sim_listed = meta(name).backends.iter().any(|b| b == "sim");
        assert!(!sim_listed || acc[1] >= acc[0] - 0.01 - 1e-9, "{name}: simulation {} vs float {}", acc[1], acc[0]);
    }
}

#[test]
fn run_writes_csv_and_npy_input_matches_csv() {
    let dir = tmp("npy");
    let art = compile("linreg_8", &dir);
    let test = model_dir("linreg_8").join("test.csv");
    let out = dir.join("y.csv");
    let first = secc(&["run", s(&art), "--input", s(&test), "-o", s(&out)]);
    assert!(first.status.success());
    let y = std::fs::read_to_string(&out).unwrap();
    assert_eq!(parse_rows(&y).len(), 100);
    // Refuses to overwrite, then overwrites with --force.
    let err = fails(&["run", s(&art), "--input", s(&test), "-o", s(&out)]);
    assert!(err.contains("exists; pass --force"), "{err}");
    assert!(secc(&["run", s(&art), "--input", s(&test), "-o", s(&out), "--force"]).status.success());
    // The same rows as .npy give the same outputs.
    let rows = rows("linreg_8", "test.csv", 8);
    let arr = ndarray::Array2::from_shape_vec((rows.len(), 8), rows.concat()).unwrap();
    let npy = dir.join("x.npy");
    ndarray_npy::write_npy(&npy, &arr).unwrap();
    let from_npy = secc(&["run", s(&art), "--input", s(&npy)]);
    assert_eq!(String::from_utf8_lossy(&from_npy.stdout), y);
}

#[test]
fn bad_inputs_are_clear_errors() {
    let dir = tmp("bad");
    let broken = model_dir("broken");
    let calib = model_dir("dense_relu").join("calib.csv");
    let err =
        fails(&["compile", s(&broken.join("unsupported_op.onnx")), "--calib", s(&calib), "-o", s(&dir.join("u.secc"))]);
    assert!(err.contains("unsupported ONNX op `CumSum`") && err.contains("/CumSum"), "{err}");
    let err = fails(&["compile", s(&broken.join("corrupt.onnx")), "--calib", s(&calib), "-o", s(&dir.join("c.secc"))]);
    assert!(err.contains("cannot read ONNX model"), "{err}");
    let err = fails(&["compile", s(&dir.join("missing.onnx")), "--calib", s(&calib)]);
    assert!(err.contains("missing.onnx"), "{err}");

    let art = compile("dense_relu", &dir);
    let err = fails(&["run", s(&art), "--input", s(&broken.join("bad_columns.csv"))]);
    assert!(err.contains("bad_columns.csv:1: 63 values, the model input has 64"), "{err}");
    let err = fails(&["run", s(&art), "--input", s(&broken.join("not_a_number.csv"))]);
    assert!(err.contains("not_a_number.csv:2: column 11: `abc` is not a number"), "{err}");
    let err = fails(&[
        "compile",
        s(&model_dir("dense_relu").join("model.onnx")),
        "--calib",
        s(&broken.join("bad_columns.csv")),
        "-o",
        s(&dir.join("x.secc")),
    ]);
    assert!(err.contains("calibration") && err.contains("63 values"), "{err}");

    let bytes = std::fs::read(&art).unwrap();
    let truncated = dir.join("truncated.secc");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let err = fails(&["inspect", s(&truncated)]);
    assert!(err.contains("is truncated"), "{err}");
    let err = fails(&["run", s(&truncated), "--input", s(&calib)]);
    assert!(err.contains("is truncated"), "{err}");
    let err = fails(&["inspect", s(&model_dir("dense_relu").join("model.onnx"))]);
    assert!(err.contains("is not a secc model"), "{err}");

    let err = fails(&["compile", s(&model_dir("dense_relu").join("model.onnx")), "--calib", s(&calib), "-o", s(&art)]);
    assert!(err.contains("exists; pass --force"), "{err}");
    let err = refused(&[
        "compile",
        s(&model_dir("dense_relu").join("model.onnx")),
        "--calib",
        s(&calib),
        "--bits",
        "1",
        "-o",
        s(&dir.join("b.secc")),
    ]);
    assert!(err.contains("'--bits <N>'") && err.contains("2..=16"), "{err}");
}

#[test]
fn numeric_flags_out_of_range_are_usage_errors() {
    let party = ["party", "p.plan", "--id", "0", "--parties", "p.toml", "--insecure"];
    let compile = ["compile", "m.onnx", "--calib", "c.csv", "-o", "m.secc"];
    for t in ["inf", "-inf", "nan", "0", "-1", "1e300", "1e-9", "ten"] {
        let err = refused(&[&party[..], &[&format!("--timeout={t}")]].concat());
        assert!(err.contains("--timeout") && err.contains("from 0.001 to 86400"), "{t}: {err}");
    }
    let err = refused(&[&party[..], &["--timeout", "-1"]].concat());
    assert!(err.contains("from 0.001 to 86400"), "{err}");
    let err = refused(&[&compile[..], &["--max-weight-norm", "-3"]].concat());
    assert!(err.contains("expected a finite number above 0"), "{err}");
    let err = refused(&[&party[..], &["--repeat", "0"]].concat());
    assert!(err.contains("--repeat"), "{err}");
    let err = refused(&["party", "p.plan", "--id", "3", "--parties", "p.toml", "--insecure"]);
    assert!(err.contains("the party id is 0, 1 or 2"), "{err}");
    for f in ["0", "32", "64", "-3"] {
        let err = refused(&["mpc-plan", "m.secc", "-o", "p.plan", &format!("--frac-bits={f}")]);
        assert!(err.contains("--frac-bits") && err.contains("1..=31"), "{f}: {err}");
    }
    for (flag, value) in [
        ("--bits", "17"),
        ("--bits", "4294967297"),
        ("--input-bits", "25"),
        ("--weight-bits", "0"),
        ("--table-bits", "99"),
        ("--tree-bits", "1"),
        ("--layer-table-bits", "x=1"),
        ("--layer-table-bits", "x"),
        ("--layer-table-bits", "=4"),
        ("--max-weight-norm", "0"),
        ("--max-weight-norm", "inf"),
        ("--max-weight-norm", "NaN"),
        ("--max-weight-norm", "-3"),
        ("--p-fail", "0.5"),
        ("--frac-bits", "0"),
        ("--frac-bits", "64"),
    ] {
        let err = refused(&[&compile[..], &[&format!("{flag}={value}")]].concat());
        assert!(err.contains(flag), "{flag} {value}: {err}");
    }
}

#[test]
fn layer_table_bits_narrow_the_named_layer_and_refuse_an_unknown_one() {
    let dir = tmp("layer-bits");
    let m = model_dir("dense_relu");
    let (model, calib, out) = (m.join("model.onnx"), m.join("calib.csv"), dir.join("d.secc"));
    let base = ["compile", s(&model), "--calib", s(&calib), "-o", s(&out), "--force", "--table-bits", "6"];
    let err = fails(&[&base[..], &["--layer-table-bits", "/1/Relu.typo=4"]].concat());
    assert!(
        err.contains("--layer-table-bits /1/Relu.typo: no table computes") && err.contains("/1/Relu.low, /3/Relu.low"),
        "{err}"
    );
    let tfhe = |extra: &[&str]| {
        let o = secc(&[&base[..], extra].concat());
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(o.status.success(), "{err}");
        err.lines().find(|l| l.starts_with("TFHE:")).unwrap().to_owned()
    };
    // Every table reads 6 bits on one set; the first hidden layer's 32 then read 4 on a
    // partition of their own.
    assert!(!tfhe(&[]).contains("per key partition"));
    let narrowed = tfhe(&["--layer-table-bits", "/1/Relu.low=4"]);
    assert!(narrowed.contains("+SECC_4B_") && narrowed.contains("16 + 32 bootstraps per key partition"), "{narrowed}");
    let inspect = String::from_utf8_lossy(&secc(&["inspect", s(&out)]).stdout).into_owned();
    assert!(inspect.contains("tables read ≤ 6 bits (4 at /1/Relu.low)"), "{inspect}");
}

#[test]
fn help_explains_every_command() {
    let top = String::from_utf8_lossy(&secc(&["--help"]).stdout).into_owned();
    for word in ["compile", "inspect", "run", "C order"] {
        assert!(top.contains(word), "--help lacks {word}: {top}");
    }
    let compile = String::from_utf8_lossy(&secc(&["compile", "--help"]).stdout).into_owned();
    for flag in ["--calib", "--bits", "--table-bits", "--dump-ir", "--force"] {
        assert!(compile.contains(flag), "compile --help lacks {flag}");
    }
    let run = String::from_utf8_lossy(&secc(&["run", "--help"]).stdout).into_owned();
    assert!(run.contains("--backend") && run.contains("sim") && run.contains("float"));
}

#[test]
fn fhe_client_server_split_and_its_errors() {
    let dir = tmp("fhe");
    let art = compile("linreg_8", &dir);
    let other = compile("linreg_2", &dir);
    let keys = dir.join("keys");
    let x = dir.join("x.csv");
    let rows = rows("linreg_8", "test.csv", 8);
    std::fs::write(&x, secc_runtime::csv::format_csv(&rows[..3])).unwrap();
    assert!(secc(&["keygen", s(&art), "--keys", s(&keys)]).status.success());
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(keys.join("client.key")).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "the client key must be private to its owner");
    let err = fails(&["keygen", s(&art), "--keys", s(&keys)]);
    assert!(err.contains("exists; pass --force"), "{err}");
    let (enc, out) = (dir.join("x.enc"), dir.join("y.enc"));
    assert!(secc(&["encrypt", s(&art), "--keys", s(&keys), "--input", s(&x), "-o", s(&enc)]).status.success());
    // The server runs where no client key lies.
    let err = fails(&["eval", s(&art), "--server-key", s(&keys.join("server.key")), s(&enc), "-o", s(&out)]);
    assert!(err.contains("client secret key in the server's directory"), "{err}");
    let server = dir.join("server");
    std::fs::create_dir_all(&server).unwrap();
    let server_key = server.join("server.key");
    std::fs::copy(keys.join("server.key"), &server_key).unwrap();
    let (enc, out) = (server.join("x.enc"), server.join("y.enc"));
    std::fs::copy(dir.join("x.enc"), &enc).unwrap();
    assert!(secc(&["eval", s(&art), "--server-key", s(&server_key), s(&enc), "-o", s(&out)]).status.success());
    let dec = secc(&["decrypt", s(&art), "--keys", s(&keys), s(&out)]);
    let sim = secc(&["run", s(&art), "--input", s(&x), "--backend", "sim"]);
    // A levelled circuit: decryption rounds the noise away, the outputs are the simulation's.
    assert_eq!(String::from_utf8_lossy(&dec.stdout), String::from_utf8_lossy(&sim.stdout));

    // Keys and ciphertexts of another model, another key pair, or damaged files.
    let err = fails(&["eval", s(&other), "--server-key", s(&server_key), s(&enc), "-o", s(&server.join("z.enc"))]);
    assert!(err.contains("made for another compiled model"), "{err}");
    let keys2 = dir.join("keys2");
    assert!(secc(&["keygen", s(&art), "--keys", s(&keys2)]).status.success());
    let err = fails(&["decrypt", s(&art), "--keys", s(&keys2), s(&out)]);
    assert!(err.contains("belongs to other keys"), "{err}");
    let bytes = std::fs::read(&out).unwrap();
    let cut = dir.join("cut.enc");
    std::fs::write(&cut, &bytes[..bytes.len() / 3]).unwrap();
    let err = fails(&["decrypt", s(&art), "--keys", s(&keys), s(&cut)]);
    assert!(err.contains("truncated"), "{err}");
    let err = fails(&["eval", s(&art), "--server-key", s(&enc), s(&enc), "-o", s(&server.join("w.enc"))]);
    assert!(err.contains("not a secc server key"), "{err}");
}

#[test]
fn the_client_spec_stands_in_for_the_model_on_the_client_side() {
    let dir = tmp("spec");
    let m = model_dir("linreg_8");
    let (art, spec) = (dir.join("m.secc"), dir.join("m.spec"));
    let (onnx, calib) = (m.join("model.onnx"), m.join("calib.csv"));
    let o = secc(&["compile", s(&onnx), "--calib", s(&calib), "-o", s(&art), "--client-spec", s(&spec)]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // The spec is the artifact's, without a weight.
    let read = secc_ir::client_spec::ClientSpec::read(&spec).unwrap();
    let whole = secc_ir::artifact::Artifact::read(&art).unwrap();
    assert_eq!(read, secc_ir::client_spec::ClientSpec::from_artifact(&whole).unwrap());
    for g in [&read.encode, &read.decode] {
        assert!(g.nodes.iter().all(|n| !matches!(n.op, secc_ir::Op::Const(_) | secc_ir::Op::Lut(_))), "{g}");
    }
    // keygen, encrypt and decrypt with the spec; eval with the model.
    let (keys, server) = (dir.join("keys"), dir.join("server"));
    let x = dir.join("x.csv");
    std::fs::write(&x, secc_runtime::csv::format_csv(&rows("linreg_8", "test.csv", 8)[..2])).unwrap();
    assert!(secc(&["keygen", s(&spec), "--keys", s(&keys)]).status.success());
    std::fs::create_dir_all(&server).unwrap();
    std::fs::rename(keys.join("server.key"), server.join("server.key")).unwrap();
    let (enc, out) = (server.join("x.enc"), server.join("y.enc"));
    assert!(secc(&["encrypt", s(&spec), "--keys", s(&keys), "--input", s(&x), "-o", s(&enc)]).status.success());
    let o = secc(&["eval", s(&art), "--server-key", s(&server.join("server.key")), s(&enc), "-o", s(&out)]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let by_spec = secc(&["decrypt", s(&spec), "--keys", s(&keys), s(&out)]);
    let by_model = secc(&["decrypt", s(&art), "--keys", s(&keys), s(&out)]);
    assert!(by_spec.status.success(), "{}", String::from_utf8_lossy(&by_spec.stderr));
    assert_eq!(by_spec.stdout, by_model.stdout);
    // A levelled circuit: decryption rounds the noise away, the outputs are the simulation's.
    let sim = secc(&["run", s(&art), "--input", s(&x), "--backend", "sim"]);
    assert_eq!(String::from_utf8_lossy(&by_spec.stdout), String::from_utf8_lossy(&sim.stdout));
}

#[test]
fn inconsistent_tree_ensembles_are_named_errors() {
    let dir = tmp("trees");
    let broken = model_dir("broken");
    let calib = model_dir("rf_10x4").join("calib.csv");
    for (file, message) in [
        ("tree_bad_child.onnx", "tree 0, node 0: true child 999 does not exist"),
        ("tree_missing_values.onnx", "nodes_values"),
    ] {
        let err = fails(&["compile", s(&broken.join(file)), "--calib", s(&calib), "-o", s(&dir.join("t.secc"))]);
        assert!(err.contains("TreeEnsembleRegressor") && err.contains(message), "{file}: {err}");
    }
}

#[test]
fn the_smoke_suite_writes_consistent_json_markdown_and_charts() {
    let dir = tmp("smoke");
    let out = dir.join("out");
    let o = secc(&["bench", "--suite", "smoke", "--out", s(&out)]);
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
        assert!(row["winner"].is_object(), "{name}: both backends ran, so a winner is named (or a tie)");
    }
    assert!(md.contains("prediction within 2x of measurement: TFHE"));
    for suite in ["matmul", "activations", "linreg"] {
        let svg = std::fs::read_to_string(out.join(format!("{suite}.svg"))).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("TFHE measured") && svg.contains("<circle"), "{suite}.svg");
        assert!(md.contains(&format!("![{suite}]({suite}.svg)")));
    }
}

#[test]
fn backend_auto_picks_fhe_for_a_small_linear_regression_and_says_why() {
    let dir = tmp("auto");
    let m = model_dir("linreg_2");
    let art = dir.join("linreg_2.secc");
    // The built-in costs by name: a `secc calibrate-costs` run on this machine must not change the test.
    let costs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("compiler/src/cost/builtin_costs.json");
    let (model, calib) = (m.join("model.onnx"), m.join("calib.csv"));
    let o =
        secc(&["compile", s(&model), "--calib", s(&calib), "-o", s(&art), "--backend", "auto", "--costs", s(&costs)]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert!(stderr.contains("backend: fhe: "), "{stderr}");
    let o = secc(&["inspect", s(&art), "--costs", s(&costs)]);
    let text = String::from_utf8_lossy(&o.stdout);
    let line = text.lines().find(|l| l.starts_with("backend (compile --backend auto): ")).expect("the choice is shown");
    assert!(
        line.contains("fhe: ")
            && line.contains(" vs mpc ")
            && line.contains("on LAN (0.2 ms RTT")
            && line.contains("costs: ")
            && line.contains("builtin_costs.json"),
        "{line}"
    );
    for network in ["loopback:", "LAN (0.2 ms RTT, 1000 Mbit/s):", "WAN (40 ms RTT, 100 Mbit/s):"] {
        assert!(text.contains(network), "inspect shows no prediction for {network}");
    }
    // Without --backend auto nothing is chosen.
    let plain = dir.join("plain.secc");
    let o = secc(&["compile", s(&model), "--calib", s(&calib), "-o", s(&plain)]);
    assert!(o.status.success());
    let text = String::from_utf8_lossy(&secc(&["inspect", s(&plain)]).stdout).into_owned();
    assert!(text.contains("backend: not chosen"));
}

#[test]
fn party_keys_are_private_never_overwritten_and_plain_links_warn() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tmp("party-keys");
    let key = dir.join("p.key");
    let first = secc(&["party-keygen", "-o", s(&key)]);
    assert!(first.status.success());
    let pin = String::from_utf8_lossy(&first.stdout).trim().to_string();
    assert!(pin.starts_with("sha256:") && pin.len() == 71, "{pin}");
    let text = std::fs::read_to_string(&key).unwrap();
    assert!(text.contains("PRIVATE KEY") && !String::from_utf8_lossy(&first.stderr).contains("PRIVATE"));
    assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o077, 0, "the key is private");
    let err = fails(&["party-keygen", "-o", s(&key)]);
    assert!(err.contains("exists; pass --force"), "{err}");
    assert_eq!(std::fs::read_to_string(&key).unwrap(), text, "the key is left as it was");
    // --force replaces it, owner-only even where the old file had lost that.
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert!(secc(&["party-keygen", "-o", s(&key), "--force"]).status.success());
    assert_ne!(std::fs::read_to_string(&key).unwrap(), text);
    assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o077, 0);
    // Plain TCP only when asked, and then with a warning.
    let art = compile("linreg_8", &dir);
    let plan = dir.join("p.plan");
    assert!(secc(&["mpc-plan", s(&art), "--weightless", "-o", s(&plan)]).status.success());
    let parties = dir.join("parties.toml");
    std::fs::write(&parties, "parties = [\"127.0.0.1:1\", \"127.0.0.1:2\", \"127.0.0.1:3\"]\n").unwrap();
    let out = secc(&["party", s(&plan), "--id", "2", "--parties", s(&parties), "--insecure", "--timeout", "0.3"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("warning: --insecure: the links are plain TCP"), "{err}");
    assert!(!out.status.success() && err.contains("error: party 2: cannot connect to party"), "{err}");
}

/// `secc ir print M --stage S | secc ir check -` gives back the printed text at every
/// stage (the artifact's and, before it, the ONNX model's), and an edited IR file with
/// an error is refused with its line.
#[test]
fn every_printed_stage_checks_back_to_the_same_text() {
    let dir = tmp("ir");
    let art = compile("unseen_gelu", &dir);
    let m = model_dir("unseen_gelu");
    let check_back = |text: &str| -> Output {
        let mut child = Command::new(env!("CARGO_BIN_EXE_secc"))
            .args(["ir", "check", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    };
    let mut printed = Vec::new();
    for stage in
        ["import", "fold_constants", "fold_affine", "calibrate", "quantize", "bit_width", "lower_fhe", "lower_mpc"]
    {
        let from_onnx = ["import", "fold_constants"].contains(&stage);
        let source = if from_onnx { m.join("model.onnx") } else { art.clone() };
        let out = secc(&["ir", "print", s(&source), "--stage", stage]);
        assert!(out.status.success(), "{stage}: {}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8(out.stdout).unwrap();
        let back = check_back(&text);
        assert!(back.status.success(), "{stage}: {}", String::from_utf8_lossy(&back.stderr));
        assert_eq!(String::from_utf8(back.stdout).unwrap(), text, "{stage}: checking the print changed it");
        printed.push(text);
    }
    // The artifact's float IR is the pipeline's fold_affine stage run on the ONNX model.
    let onnx = secc(&["ir", "print", s(&m.join("model.onnx")), "--stage", "fold_affine"]);
    assert_eq!(String::from_utf8(onnx.stdout).unwrap(), printed[2]);
    // A hand edit: the first matmul now reads a value that does not exist.
    let quantized = &printed[4];
    let mut lines: Vec<String> = quantized.lines().map(String::from).collect();
    let at = lines.iter().position(|l| l.contains("= matmul %")).unwrap();
    let operand = lines[at].split("= matmul ").nth(1).unwrap().split(',').next().unwrap().to_string();
    lines[at] = lines[at].replacen(&format!("= matmul {operand},"), "= matmul %99,", 1);
    let line = at + 1;
    let bad = lines;
    let path = dir.join("bad.ir");
    std::fs::write(&path, bad.join("\n")).unwrap();
    let err = fails(&["ir", "check", s(&path)]);
    assert!(err.contains(&format!("line {line}: ")), "{err}");
    let err = fails(&["ir", "print", s(&art), "--stage", "import"]);
    assert!(err.contains("print stage import from the ONNX model"), "{err}");
}

/// A torch classifier whose last op is a Softmax (or LogSoftmax): the receiver applies
/// it after the private part, so float matches onnxruntime, the simulation's rows are
/// probabilities, and the accuracy budget picks widths that keep the simulation's
/// accuracy within a point of float's; widths given by hand turn the search off.
#[test]
fn a_final_softmax_runs_on_the_receiver_within_the_accuracy_budget() {
    let dir = tmp("softmax_head");
    for name in ["torch_head_softmax", "torch_head_logsoftmax"] {
        let m = model_dir(name);
        let out = dir.join(format!("{name}.secc"));
        let o = secc(&["compile", s(&m.join("model.onnx")), "--calib", s(&m.join("calib.csv")), "-o", s(&out)]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success() && err.contains("quantization: ") && err.contains("same argmax on"), "{err}");
        let run = |backend: &str| {
            let o = secc(&["run", s(&out), "--input", s(&m.join("test.csv")), "--backend", backend]);
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            parse_rows(&String::from_utf8_lossy(&o.stdout))
        };
        let (float, sim) = (run("float"), run("sim"));
        let expected = parse_rows(&std::fs::read_to_string(m.join("expected.csv")).unwrap());
        for (f, e) in float.iter().flatten().zip(expected.iter().flatten()) {
            assert!((f - e).abs() <= 1e-4 * e.abs().max(1.0), "{name}: float {f} vs onnxruntime {e}");
        }
        let probabilities =
            |r: &Vec<f64>| if name.contains("log") { r.iter().map(|x| x.exp()).sum() } else { r.iter().sum::<f64>() };
        assert!(sim.iter().all(|r| (probabilities(r) - 1.0).abs() < 1e-5), "{name}: rows are not distributions");
        let labels = labels(name);
        let (fa, sa) = (metric("classification", &float, &labels), metric("classification", &sim, &labels));
        assert!(sa >= fa - 0.01, "{name}: simulated accuracy {sa} vs float {fa}");
    }
    let m = model_dir("torch_head_softmax");
    let o = secc(&[
        "compile",
        s(&m.join("model.onnx")),
        "--calib",
        s(&m.join("calib.csv")),
        "--table-bits",
        "5",
        "-o",
        s(&dir.join("fixed.secc")),
    ]);
    assert!(o.status.success() && !String::from_utf8_lossy(&o.stderr).contains("quantization: "));
}

#[test]
fn compile_output_picks_a_graph_output_and_notes_the_default() {
    let dir = tmp("outputs");
    let m = model_dir("skl_rf_multi");
    let (model, calib) = (m.join("model.onnx"), m.join("calib.csv"));
    let out = dir.join("rf.secc");
    let base = ["compile", s(&model), "--calib", s(&calib), "-o", s(&out), "--force"];
    // Default: the probabilities (what the ZipMap reads), with a note saying so.
    let o = secc(&base);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("note: computing output `output_probability` (left out: `output_label`")
            && err.contains("--output NAME"),
        "{err}"
    );
    // Asked for by name: no note.
    let o = secc(&[&base[..], &["--output", "output_probability"]].concat());
    assert!(o.status.success() && !String::from_utf8_lossy(&o.stderr).contains("note:"));
    // A label is the receiver's to derive; an unknown name lists the outputs.
    let err = fails(&[&base[..], &["--output", "output_label"]].concat());
    assert!(
        err.contains("output `output_label` is a tensor of element type 7") && err.contains("`output_probability`"),
        "{err}"
    );
    let err = fails(&[&base[..], &["--output", "scores"]].concat());
    assert!(err.contains("no output `scores`; the outputs are `output_label`, `output_probability`"), "{err}");
}
