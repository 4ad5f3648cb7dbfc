//! Every text filetest under `tests/filetests/<stage>/` passes (Cranelift's `clif-util
//! test`, here `secc ir test`): each file's input IR runs through the stages its
//! `; test:` line names and must produce what it states. `SECC_BLESS=1 cargo test --test
//! filetests` rewrites the `; output:` sections. docs in `compiler/src/filetest.rs`.

use secc_compiler::filetest::run_filetest;
use secc_compiler::pipeline::Stage;
use std::path::{Path, PathBuf};

fn filetests() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/filetests");
    let mut files = Vec::new();
    for dir in std::fs::read_dir(&root).unwrap() {
        let dir = dir.unwrap().path();
        for f in std::fs::read_dir(&dir).unwrap() {
            let f = f.unwrap().path();
            if f.extension().is_some_and(|e| e == "ir") {
                files.push(f);
            }
        }
    }
    files.sort();
    files
}

#[test]
fn every_filetest_passes() {
    let bless = std::env::var_os("SECC_BLESS").is_some_and(|v| v == "1");
    let files = filetests();
    let failures: Vec<String> =
        files.iter().filter_map(|f| run_filetest(f, bless).err()).map(|e| e.to_string()).collect();
    assert!(
        failures.is_empty(),
        "{} of {} filetests failed:\n\n{}",
        failures.len(),
        files.len(),
        failures.join("\n\n")
    );
}

#[test]
fn every_stage_on_ir_has_filetests() {
    let files = filetests();
    assert!(files.len() >= 40, "only {} filetests", files.len());
    // `import` reads ONNX, not IR: the snapshot and oracle tests cover it.
    for stage in Stage::ALL.into_iter().filter(|&s| s != Stage::Import) {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/filetests").join(stage.name());
        let n = files.iter().filter(|f| f.starts_with(&dir)).count();
        assert!(n >= 2, "stage {stage} has {n} filetests in {}", dir.display());
    }
}
