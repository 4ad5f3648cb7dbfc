//! Files one party hands another are verified before anything runs them: every plan
//! the compiler makes passes, with and without its weights; crafted plans and
//! tampered artifacts are named errors. `write_plan_seeds` (ignored) writes the
//! `plan` fuzz target's seed corpus from the same plans.

mod common;

use common::*;
use secc_ir::artifact::{Artifact, ArtifactError, ContentError};
use secc_ir::lowered::mpc::{Plan, PlanFileError, StepOp};
use secc_ir::lowered::{CircuitError, PlanError, PlanProblem, StepProblem};
use secc_ir::Op;
use std::process::Command;
use std::time::Duration;

fn models() -> impl Iterator<Item = &'static str> {
    MODELS.iter().copied().chain(["unseen_cnn", "unseen_gelu"]).filter(|n| runs_on(n, "mpc"))
}

#[test]
fn every_compiled_plan_verifies_with_and_without_its_weights() {
    for name in models() {
        let (_, plan) = mpc_plan(name);
        for p in [plan.clone(), plan.weightless()] {
            assert_eq!(Plan::from_bytes(&p.to_bytes()).unwrap_or_else(|e| panic!("{name}: {e}")), p);
        }
    }
}

/// The first step of `plan` of the kind `mnemonic`, to tamper with.
fn step<'a>(plan: &'a mut Plan, mnemonic: &str) -> &'a mut StepOp {
    plan.steps.iter_mut().map(|s| &mut s.op).find(|op| op.mnemonic() == mnemonic).expect("the plan has one")
}

/// Why a party refuses `plan` once it went through a file.
fn refused(plan: &Plan) -> PlanError {
    match Plan::from_bytes(&plan.to_bytes()) {
        Err(PlanFileError::Invalid(e)) => e,
        other => panic!("the plan must be refused as invalid: {other:?}"),
    }
}

/// The problem of the step that broke, checking the message names the step and its label.
fn step_problem(plan: &Plan) -> StepProblem {
    let e = refused(plan);
    let text = e.to_string();
    let PlanError::Step { index, label, problem } = e else { panic!("expected a step's error: {text}") };
    assert!(text.starts_with(&format!("step {index} ({label}): ")), "{text}");
    assert_eq!(plan.steps[index].label, label);
    problem
}

#[test]
fn crafted_weightless_plans_are_named_errors() {
    let cnn = mpc_plan("cnn").1.weightless();

    let mut p = cnn.clone();
    let StepOp::Relu { x, .. } = step(&mut p, "relu") else { unreachable!() };
    *x = 9999;
    assert!(matches!(step_problem(&p), StepProblem::RegisterOutOfRange { reg: 9999, .. }));

    let mut p = cnn.clone();
    let StepOp::Conv { w, .. } = step(&mut p, "conv") else { unreachable!() };
    *w = 200;
    assert!(matches!(step_problem(&p), StepProblem::WeightOutOfRange { index: 200, .. }));

    let mut p = cnn.clone();
    let StepOp::Conv { geometry, .. } = step(&mut p, "conv") else { unreachable!() };
    geometry.output[2] += 3;
    let problem = step_problem(&p);
    assert!(problem.to_string().contains("output rows from"), "{problem}");

    let mut p = cnn.clone();
    let StepOp::MaxPool { taps, .. } = step(&mut p, "max_pool") else { unreachable!() };
    taps.taps[0][0] = taps.input_len;
    assert!(step_problem(&p).to_string().contains("window 0 reads element"));

    let mut p = cnn.clone();
    let StepOp::Trunc { len, .. } = step(&mut p, "trunc") else { unreachable!() };
    *len += 1;
    assert!(matches!(step_problem(&p), StepProblem::Length { .. }));

    let mut p = cnn.clone();
    let StepOp::MatMul { m, k, .. } = step(&mut p, "matmul") else { unreachable!() };
    (*m, *k) = (1 << 40, 1 << 40);
    assert!(matches!(step_problem(&p), StepProblem::TooLarge { .. }));

    let mut p = mpc_plan("dense_gelu").1.weightless();
    let StepOp::Piecewise { function, .. } = step(&mut p, "piecewise") else { unreachable!() };
    function.breakpoints.reverse();
    assert!(step_problem(&p).to_string().starts_with("breakpoints out of order"));

    let mut p = mpc_plan("rf_10x4").1.weightless();
    let StepOp::Forest { forest, .. } = step(&mut p, "forest") else { unreachable!() };
    forest.paths[3].push((forest.comparisons as u32, true));
    assert!(step_problem(&p).to_string().starts_with("leaf 3 reads comparison"));

    let mut p = cnn.clone();
    p.regs = 1 << 40;
    assert!(matches!(refused(&p), PlanError::Plan(PlanProblem::TooLarge { what: "the number of registers", .. })));
    let mut p = cnn.clone();
    p.weights[0].len = 1 << 40;
    assert!(matches!(refused(&p), PlanError::Plan(PlanProblem::TooLarge { .. })));
    let mut p = cnn;
    p.frac_bits = 64;
    assert!(matches!(refused(&p), PlanError::Plan(PlanProblem::FracBits { frac_bits: 64 })));
}

/// A testdata model compiled by the CLI, read back.
fn compiled(name: &str) -> Artifact {
    let dir = std::env::temp_dir().join(format!("secc-untrusted-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (m, out) = (model_dir(name), dir.join("m.secc"));
    let o = Command::new(env!("CARGO_BIN_EXE_secc"))
        .args(["compile", m.join("model.onnx").to_str().unwrap(), "--calib", m.join("calib.csv").to_str().unwrap()])
        .args(["-o", out.to_str().unwrap(), "--force"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let art = Artifact::read(&out).unwrap();
    std::fs::remove_dir_all(&dir).ok();
    art
}

/// Why `art`, written with a valid checksum, is refused.
fn content_error(art: &Artifact) -> ContentError {
    match Artifact::from_bytes(&art.to_bytes(), "m.secc") {
        Err(ArtifactError::Invalid { source, .. }) => source,
        other => panic!("the artifact must be refused as invalid: {other:?}"),
    }
}

#[test]
fn tampered_artifacts_are_named_errors_despite_a_valid_checksum() {
    let art = compiled("dense_relu");
    let circuit = art.fhe.as_ref().expect("dense_relu has a TFHE circuit");
    let lut = art.quantized.as_ref().unwrap().nodes.iter().position(|n| matches!(n.op, Op::Lut(_))).expect("a table");

    // New weights without new types: the range analysis no longer matches.
    let mut t = art.clone();
    let Op::Const(c) =
        &mut t.quantized.as_mut().unwrap().nodes.iter_mut().find(|n| matches!(n.op, Op::Const(_))).unwrap().op
    else {
        unreachable!()
    };
    let secc_ir::Tensor::I64(w) = &mut c.value else { panic!("quantized weights are integers") };
    w.iter_mut().for_each(|v| *v = 127);
    let e = content_error(&t);
    assert!(matches!(e, ContentError::Quantized(_)), "{e}");
    assert!(e.to_string().contains("differs from the inferred"), "{e}");

    let mut t = art.clone();
    t.fhe.as_mut().unwrap().luts[lut] = None;
    let e = content_error(&t);
    assert!(matches!(e, ContentError::Circuit(CircuitError::Value { .. })), "{e}");
    assert!(e.to_string().ends_with("a `lut` without a bootstrap plan"), "{e}");

    let mut t = art.clone();
    t.fhe.as_mut().unwrap().log_delta[lut] = Some(64);
    assert!(content_error(&t).to_string().contains("encoding 2^64"));

    // A table's input encoded coarser than its bootstrap reads (finer is multiplied up).
    let mut t = art.clone();
    let input = t.quantized.as_ref().unwrap().nodes[lut].inputs[0].index();
    let delta = &mut t.fhe.as_mut().unwrap().log_delta[input];
    *delta = delta.map(|d| d + 1);
    assert!(content_error(&t).to_string().contains("reads its input at"), "{}", content_error(&t));

    let mut t = art.clone();
    t.fhe.as_mut().unwrap().luts[lut].as_mut().unwrap().precision =
        circuit.params[circuit.partition_of(lut)].bits() + 1;
    assert!(content_error(&t).to_string().contains("is beyond"));

    let mut t = art.clone();
    t.fhe.as_mut().unwrap().luts[lut].as_mut().unwrap().offset = i64::MAX - 2;
    assert!(content_error(&t).to_string().contains("overflows"));

    // Key partitions: a levelled op summing values of two partitions, a value in a
    // partition the circuit lacks, a one-set circuit that lists partitions.
    let mut t = art.clone();
    let c = t.fhe.as_mut().unwrap();
    let levelled = c.linear.iter().position(Option::is_some).expect("a linear map");
    c.params = vec![c.params[0].clone(), c.params[0].clone()];
    c.partition = c.log_delta.iter().map(|d| d.map(|_| 0)).collect();
    c.partition[levelled] = Some(1);
    assert!(content_error(&t).to_string().contains("in another key partition"), "{}", content_error(&t));
    t.fhe.as_mut().unwrap().partition[levelled] = Some(2);
    assert!(matches!(content_error(&t), ContentError::Circuit(CircuitError::Partitions(_))));
    let mut t = art.clone();
    let c = t.fhe.as_mut().unwrap();
    c.params.truncate(1);
    c.partition = c.log_delta.iter().map(|d| d.map(|_| 0)).collect();
    assert!(content_error(&t).to_string().contains("one-partition circuit lists partitions"));

    let mut t = art;
    t.fhe.as_mut().unwrap().log_delta.pop();
    assert!(matches!(content_error(&t), ContentError::Circuit(CircuitError::Length { .. })));
}

/// A searched parameter set is checked from its numbers before the runtime (or tfhe-rs,
/// which asserts) sees them: out of range, below the security curve, or not what its
/// dimensions make, it is a named error, from the artifact reader and the runtime alike.
#[test]
fn crafted_parameter_sets_are_named_errors() {
    use secc_ir::lowered::fhe::ParamSet;
    use secc_runtime::fhe::params::resolve_params;
    // Not dense_relu: `compiled` gives each model one directory, which another test uses.
    let art = compiled("dense_sigmoid");
    let own = art.fhe.as_ref().unwrap().params[0].clone();
    let searched = ParamSet::searched(own.lattice, own.bits(), own.log2_p_fail).unwrap();
    let crafted: [(fn(&mut ParamSet), &str); 6] = [
        (|s| s.lattice.polynomial_size = 3000, "polynomial size"),
        (|s| s.lattice.pbs_level = 64, "PBS decomposition"),
        (|s| s.lattice.ks_base_log = 0, "KS decomposition"),
        (|s| s.lattice.lwe_std = f64::NAN, "noise not a positive"),
        (|s| s.lattice.lwe_std /= 2.0, "below the 128-bit security curve"),
        (|s| s.name = "V1_6_PARAM_MESSAGE_2_CARRY_2_KS_PBS_GAUSSIAN_2M128".into(), "not what its numbers make"),
    ];
    for (craft, why) in crafted {
        let mut t = art.clone();
        let c = t.fhe.as_mut().unwrap();
        c.partition.clear();
        c.params = vec![searched.clone()];
        craft(&mut c.params[0]);
        let e = content_error(&t);
        assert!(matches!(e, ContentError::Circuit(CircuitError::Searched { .. })), "{e}");
        assert!(e.to_string().contains(why), "{e}");
        if why.contains("decomposition") || why.contains("size") || why.contains("noise not") {
            assert!(resolve_params(&t.fhe.unwrap().params[0]).unwrap_err().to_string().contains(why));
        }
    }
    // A catalog name with another set's numbers.
    let mut t = art;
    let c = t.fhe.as_mut().unwrap();
    c.partition.clear();
    c.params = vec![secc_ir::lowered::fhe::catalog(-128).remove(4)];
    c.params[0].lattice.lwe_dimension += 16;
    assert!(matches!(content_error(&t), ContentError::Circuit(CircuitError::Params(_))));
}

/// Every plan of the fuzz corpus that a party accepts runs to its end in three parties
/// without a panic (the verifier's promise, on the plans the fuzzer kept): over plain
/// loopback TCP, zero weights where the plan has none, one sample of halves. Small
/// plans only (the corpus's seeds are the testdata models, which the MPC tests run).
#[test]
fn every_accepted_corpus_plan_runs_without_a_panic() {
    use secc_runtime::mpc::net::Security;
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/plan");
    let mut ran = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let Ok(mut plan) = Plan::from_bytes(&std::fs::read(entry.unwrap().path()).unwrap()) else { continue };
        if plan.total(1).bytes.iter().sum::<u64>() > 1 << 21 {
            continue;
        }
        let zeros = plan.weights.iter().map(|w| vec![0; w.len]).collect();
        plan.weight_values.get_or_insert(zeros);
        let samples = vec![vec![0.5f32; plan.input_shape.iter().product()]];
        let plain = [Security::Plain, Security::Plain, Security::Plain];
        // An error is a fair answer to a strange plan; a panic in a party is not (it
        // would fail the join inside).
        let _ = secc_runtime::mpc::session::run_local_with(&plan, &samples, plain, Duration::from_secs(5), 1);
        ran += 1;
    }
    assert!(ran > 0, "no corpus plan was small enough to run");
}

/// Writes the `plan` fuzz target's seeds: every testdata model's plan, the model
/// owner's and the weightless one (`cargo test --test untrusted -- --ignored`).
#[test]
#[ignore]
fn write_plan_seeds() {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/plan");
    std::fs::create_dir_all(&dir).unwrap();
    for name in models() {
        let (_, plan) = mpc_plan(name);
        std::fs::write(dir.join(format!("seed-{name}-owner")), plan.to_bytes()).unwrap();
        std::fs::write(dir.join(format!("seed-{name}-weightless")), plan.weightless().to_bytes()).unwrap();
    }
}
