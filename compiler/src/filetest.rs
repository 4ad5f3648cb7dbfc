//! Text filetests of the pipeline's stages, in Cranelift's style: one `.ir` file holds
//! the input program, the stages to run and what they must produce. `cargo test` runs
//! every file under `tests/filetests/` (`tests/filetests.rs`), and `secc ir test FILE...`
//! runs any. A file reads:
//!
//! ```text
//! ; test: fold_affine                 stages to run, in order (`verify`: parse and verify only)
//! ; set: bits=4, table_bits=3         pipeline options (see [`apply_setting`])
//! ; sample: 0.5, -1, 2                one calibration sample per line, the input flattened
//! graph "t" { ... }                   the input: a graph in the IR's text form
//! ; check: %3 = lut                   text that must occur in the output, in this order
//! ; not: max_pool                     text that must not occur in the output
//! ; error: not defined before         the stage (or the parser, or the verifier) must fail
//!                                     with this in its message; on a line of the input
//!                                     after code, the error must point at that line (the
//!                                     parser's line, the node the verifier rejects, or
//!                                     the node the first stage's pass names)
//! ; output:                           or: the whole expected output, each line after
//! ;   graph "t" {                     `; ` (rewritten by SECC_BLESS=1)
//! ```
//!
//! A file without any expectation is an error, unless blessing writes its `; output:`.

use crate::pipeline::{run_stage, Coverage, Options, Output, ParamChoice, Stage};
use crate::CompileError;
use secc_ir::text::parse_graph;
use secc_ir::{verify_graph, IrError, Tensor, ValueId};
use std::path::Path;

/// A filetest that failed: what differs, for the person reading the test output.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct FiletestError {
    /// The file.
    pub path: String,
    /// What went wrong.
    pub message: String,
}

/// What a file expects.
#[derive(Debug, Default)]
struct Expect {
    checks: Vec<String>,
    nots: Vec<String>,
    /// The message substring, and the input line the annotation sits on after code.
    error: Option<(String, Option<u32>)>,
    /// The whole output, when the file gives one.
    output: Option<String>,
}

/// A parsed filetest.
struct Filetest {
    stages: Vec<Option<Stage>>,
    options: Options,
    samples: Vec<Vec<f32>>,
    input: String,
    expect: Expect,
}

/// Runs the filetest at `path`. With `bless`, a file whose output differs (or that has
/// no expectation) gets its `; output:` section rewritten instead of failing.
pub fn run_filetest(path: &Path, bless: bool) -> Result<(), FiletestError> {
    let fail = |message: String| FiletestError { path: path.display().to_string(), message };
    let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
    let test = parse_filetest(&text).map_err(fail)?;
    let result = run(&test);
    let e = &test.expect;
    match (&e.error, result) {
        (Some((want, line)), Err((got, at))) => {
            if !got.contains(want.as_str()) {
                return Err(fail(format!("expected an error containing `{want}`, got: {got}")));
            }
            match (line, at) {
                (Some(l), Some(a)) if *l != a => {
                    Err(fail(format!("error reported on line {a}, expected line {l}: {got}")))
                }
                (Some(l), None) => Err(fail(format!(
                    "`; error:` sits on line {l}, but the error names no input line (put it on a line of its own): {got}"
                ))),
                _ => Ok(()),
            }
        }
        (Some((want, _)), Ok(out)) => Err(fail(format!("expected an error containing `{want}`, got:\n{out}"))),
        (None, Err((got, _))) => Err(fail(format!("failed: {got}"))),
        (None, Ok(out)) => {
            let mut at = 0;
            for c in &e.checks {
                match out[at..].find(c.as_str()) {
                    Some(i) => at += i + c.len(),
                    None => return Err(fail(format!("`; check: {c}` not found (in order) in:\n{out}"))),
                }
            }
            if let Some(n) = e.nots.iter().find(|n| out.contains(n.as_str())) {
                return Err(fail(format!("`; not: {n}` found in:\n{out}")));
            }
            let described = !e.checks.is_empty() || !e.nots.is_empty();
            match &e.output {
                Some(want) if *want == out => Ok(()),
                _ if bless && (e.output.is_some() || !described) => {
                    std::fs::write(path, bless_output(&text, &out)).map_err(|e| fail(e.to_string()))
                }
                Some(want) => {
                    Err(fail(format!("output differs (SECC_BLESS=1 rewrites it):\n{}", line_diff(want, &out))))
                }
                None if described => Ok(()),
                None => Err(fail("no expectation: add `; check:` lines, or bless an `; output:`".into())),
            }
        }
    }
}

/// Runs the stages; an error comes with the input line it points at, if any: the
/// parser's line, the line defining the first value the verifier rejects, or the line
/// defining the value a pass names when the first stage (which reads the input) fails.
fn run(test: &Filetest) -> Result<String, (String, Option<u32>)> {
    let g = parse_graph(&test.input).map_err(|e| (e.to_string(), Some(e.line)))?;
    verify_graph(&g).map_err(|e| {
        let line = match &e {
            IrError::Verify { errors, .. } => errors.first().and_then(|e| defining_line(&test.input, e.value)),
            IrError::Build { value, .. } => defining_line(&test.input, *value),
        };
        (e.to_string(), line)
    })?;
    let samples = samples_for(&g, &test.samples).map_err(|e| (e, None))?;
    let mut current = Output::Graph(g);
    for (i, stage) in test.stages.iter().flatten().enumerate() {
        let Output::Graph(g) = &current else {
            return Err((format!("stage {stage} needs a graph, the previous stage made a lowered program"), None));
        };
        current = run_stage(*stage, g, &samples, &test.options).map_err(|e| {
            let line = match &e {
                CompileError::Pass { value, .. } if i == 0 => defining_line(&test.input, *value),
                _ => None,
            };
            (e.to_string(), line)
        })?;
    }
    let mut out = match current {
        Output::Graph(g) => g.to_string(),
        Output::Circuit(c) => c.to_string(),
        Output::Plan(p) => p.to_string(),
    };
    // As the `; output:` section reads back: every line ends with a newline.
    if !out.ends_with('\n') {
        out.push('\n');
    }
    Ok(out)
}

/// The line (from 1) of `input` that defines `v` (`%N = ...`).
fn defining_line(input: &str, v: ValueId) -> Option<u32> {
    let def = format!("{v} =");
    input.lines().position(|l| l.trim_start().starts_with(&def)).map(|i| i as u32 + 1)
}

/// The samples as tensors of the graph's one input.
fn samples_for(g: &secc_ir::Graph, rows: &[Vec<f32>]) -> Result<Vec<Vec<Tensor>>, String> {
    let [input] = g.inputs[..] else {
        return if rows.is_empty() { Ok(Vec::new()) } else { Err("samples need a graph with one input".into()) };
    };
    let shape = &g.ty(input).shape;
    rows.iter()
        .map(|r| {
            ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&shape.0), r.clone())
                .map(|a| vec![Tensor::F32(a)])
                .map_err(|_| format!("a sample has {} values, the input {shape} takes {}", r.len(), shape.numel()))
        })
        .collect()
}

fn parse_filetest(text: &str) -> Result<Filetest, String> {
    let mut t = Filetest {
        stages: Vec::new(),
        options: Options::default(),
        samples: Vec::new(),
        input: String::new(),
        expect: Expect::default(),
    };
    let mut in_output = false;
    let mut output = String::new();
    for (i, line) in text.lines().enumerate() {
        let n = i as u32 + 1;
        let (code, comment) = split_directive(line);
        if in_output {
            let Some(rest) = line.strip_prefix(';') else {
                return Err(format!("line {n}: the output section must run to the end"));
            };
            output.push_str(rest.strip_prefix(' ').unwrap_or(rest));
            output.push('\n');
            continue;
        }
        t.input.push_str(line);
        t.input.push('\n');
        let Some(c) = comment else { continue };
        let on_code = !code.trim().is_empty();
        if let Some(v) = c.strip_prefix("test:") {
            for name in v.split(',').map(str::trim) {
                let stage = match name {
                    "verify" => None,
                    _ => Some(Stage::from_name(name).ok_or_else(|| {
                        format!("line {n}: unknown stage `{name}` (stages: verify, {})", Stage::names())
                    })?),
                };
                t.stages.push(stage);
            }
        } else if let Some(v) = c.strip_prefix("set:") {
            for setting in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                apply_setting(&mut t.options, setting).map_err(|e| format!("line {n}: {e}"))?;
            }
        } else if let Some(v) = c.strip_prefix("sample:") {
            let row = v.split(',').map(|x| x.trim().parse::<f32>()).collect::<Result<Vec<_>, _>>();
            t.samples.push(row.map_err(|e| format!("line {n}: sample: {e}"))?);
        } else if let Some(v) = c.strip_prefix("check:") {
            t.expect.checks.push(v.trim().to_string());
        } else if let Some(v) = c.strip_prefix("not:") {
            t.expect.nots.push(v.trim().to_string());
        } else if let Some(v) = c.strip_prefix("error:") {
            t.expect.error = Some((v.trim().to_string(), on_code.then_some(n)));
        } else if c.trim_end() == "output:" {
            in_output = true;
        }
    }
    if t.stages.is_empty() {
        return Err("no `; test:` line naming the stages to run".into());
    }
    if in_output {
        t.expect.output = Some(output);
    }
    Ok(t)
}

/// What a filetest reads on a line: the code before its first comment, and the
/// directive comment, up to the end of the line. The directive is the first comment,
/// or the one after a node's name comment: `%1 = ... : f32[1]  ; "pool"  ; error: ...`.
fn split_directive(line: &str) -> (&str, Option<&str>) {
    const DIRECTIVES: [&str; 7] = ["test:", "set:", "sample:", "check:", "not:", "error:", "output:"];
    let comments: Vec<usize> =
        line.match_indices(';').map(|(at, _)| at).filter(|&at| !in_string(&line[..at])).collect();
    let Some(&first) = comments.first() else { return (line, None) };
    for (i, &at) in comments.iter().enumerate() {
        let rest = line[at + 1..].trim_start();
        if DIRECTIVES.iter().any(|d| rest.starts_with(d)) {
            return (&line[..first], Some(rest));
        }
        // Only a name comment (one string literal) may stand before the directive.
        let segment = line[at + 1..comments.get(i + 1).copied().unwrap_or(line.len())].trim();
        let is_name = segment.len() >= 2 && segment.starts_with('"') && segment.ends_with('"');
        if !is_name {
            break;
        }
    }
    (&line[..first], None)
}

/// Whether `prefix` ends inside a string literal (a `;` there is not a comment).
fn in_string(prefix: &str) -> bool {
    let mut open = false;
    let mut escaped = false;
    for c in prefix.chars() {
        match c {
            '\\' if open && !escaped => escaped = true,
            '"' if !escaped => open = !open,
            _ => escaped = false,
        }
    }
    open
}

/// Sets one `name=value` option of a filetest.
fn apply_setting(o: &mut Options, setting: &str) -> Result<(), String> {
    let (name, value) = setting.split_once('=').ok_or_else(|| format!("`{setting}` is not name=value"))?;
    let (name, value) = (name.trim(), value.trim());
    let int = || value.parse::<u32>().map_err(|e| format!("{name}: {e}"));
    let q = &mut o.quant;
    match name {
        "bits" => {
            *q = secc_ir::QuantConfig { output_tables: q.output_tables, ..secc_ir::QuantConfig::with_bits(int()?) }
        }
        "input_bits" => q.input_bits = int()?,
        "weight_bits" => q.weight_bits = int()?,
        "table_bits" => q.table_bits = int()?,
        "tree_bits" => q.tree_bits = int()?,
        "output_tables" => q.output_tables = value.parse().map_err(|e| format!("{name}: {e}"))?,
        "max_weight_norm" => {
            q.max_weight_norm = match value {
                "none" => None,
                v => Some(v.parse().map_err(|e| format!("{name}: {e}"))?),
            }
        }
        // As `secc compile --p-fail`: tfhe-rs publishes sets at these three only.
        "p_fail" => {
            o.fhe.log2_p_fail = match value {
                "-128" | "-64" | "-40" => value.parse().expect("listed"),
                v => return Err(format!("p_fail: `{v}` (-128, -64 or -40)")),
            }
        }
        "coverage" => {
            o.fhe.coverage = match value {
                "calibrated" => Coverage::Calibrated,
                "exact" => Coverage::Exact,
                v => return Err(format!("coverage: `{v}` (calibrated or exact)")),
            }
        }
        "fhe_params" => {
            o.fhe.params = match value {
                "catalog" => ParamChoice::Catalog,
                "search" => ParamChoice::Search,
                "partitions" => ParamChoice::Partitions,
                v => return Err(format!("fhe_params: `{v}` (catalog, search or partitions)")),
            }
        }
        "frac_bits" => o.mpc.frac_bits = int()?,
        _ => return Err(format!("unknown setting `{name}`")),
    }
    Ok(())
}

/// `text` with its `; output:` section (added at the end if missing) holding `out`.
fn bless_output(text: &str, out: &str) -> String {
    let starts_output =
        |l: &str| matches!(split_directive(l), (code, Some(c)) if code.trim().is_empty() && c.trim_end() == "output:");
    let head = match text.lines().position(starts_output) {
        Some(at) => text.lines().take(at).map(|l| format!("{l}\n")).collect::<String>(),
        None => text.to_string() + if text.ends_with('\n') { "" } else { "\n" },
    };
    let body: String = out.lines().map(|l| if l.is_empty() { ";\n".to_string() } else { format!("; {l}\n") }).collect();
    format!("{head}; output:\n{body}")
}

/// The first differing lines of two texts.
fn line_diff(want: &str, got: &str) -> String {
    let (w, g): (Vec<&str>, Vec<&str>) = (want.lines().collect(), got.lines().collect());
    let at = w.iter().zip(&g).position(|(a, b)| a != b).unwrap_or(w.len().min(g.len()));
    format!(
        "first difference at output line {}:\n  expected: {}\n  got:      {}",
        at + 1,
        w.get(at).unwrap_or(&"<end>"),
        g.get(at).unwrap_or(&"<end>")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directives_follow_code_or_a_name_comment() {
        assert_eq!(split_directive("; check: %1 = relu %0  ; \"y\""), ("", Some("check: %1 = relu %0  ; \"y\"")));
        let node = "  %1 = relu %0 : f32[1]  ; \"y\"  ; error: bad";
        assert_eq!(split_directive(node), ("  %1 = relu %0 : f32[1]  ", Some("error: bad")));
        assert_eq!(split_directive("  %1 = relu %0 : f32[1]  ; \"y\""), ("  %1 = relu %0 : f32[1]  ", None));
        // Prose that mentions a directive is not one.
        assert_eq!(split_directive("; Each `; sample:` row is one input"), ("", None));
        assert_eq!(
            split_directive("  %1 = const {value=f32[1] [1.0]} : f32[1]  ; \"a;b\"  ; not: x").1,
            Some("not: x")
        );
    }

    #[test]
    fn a_blessed_file_passes() {
        let path = std::env::temp_dir().join(format!("secc-filetest-{}.ir", std::process::id()));
        let text = "; test: fold_constants\ngraph \"t\" {\n  %0 = input {index=0} : f32[1]  ; \"x\"\n  return %0\n}\n";
        std::fs::write(&path, text).unwrap();
        assert!(run_filetest(&path, false).is_err(), "no expectation");
        run_filetest(&path, true).unwrap();
        let blessed = std::fs::read_to_string(&path).unwrap();
        assert!(blessed
            .ends_with("; output:\n; graph \"t\" {\n;   %0 = input {index=0} : f32[1]  ; \"x\"\n;   return %0\n; }\n"));
        run_filetest(&path, false).unwrap();
        // Blessing again changes nothing.
        run_filetest(&path, true).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), blessed);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn an_error_on_a_line_must_point_at_it() {
        let path = std::env::temp_dir().join(format!("secc-filetest-line-{}.ir", std::process::id()));
        let graph = |on: &str| {
            format!(
                "; test: verify\ngraph \"t\" {{\n  %0 = input {{index=0}} : f32[1]  ; \"x\"{}\n  %1 = relu %0 : f32[2]  ; \"y\"{}\n  return %1\n}}\n",
                if on == "0" { "  ; error: differs from the inferred" } else { "" },
                if on == "1" { "  ; error: differs from the inferred" } else { "" },
            )
        };
        std::fs::write(&path, graph("1")).unwrap();
        run_filetest(&path, false).unwrap();
        std::fs::write(&path, graph("0")).unwrap();
        let e = run_filetest(&path, false).unwrap_err();
        assert!(e.message.contains("reported on line 4, expected line 3"), "{e}");
        std::fs::remove_file(&path).unwrap();
    }
}
