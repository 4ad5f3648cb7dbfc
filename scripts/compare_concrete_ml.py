"""secc against Concrete-ML 1.9 on the same ONNX files, in one run on one machine.

TFHE time moves with the machine (a 2-vCPU Xeon ran it 2.5x slower than a 2-vCPU EPYC), so
the comparison that means something is the ratio of two systems timed side by side. For each
model this script converts the ONNX file to opset 14 (the only one Concrete-ML 1.9 reads),
gives that same file to both systems, and times the server's FHE evaluation per sample, keys
excluded:

- secc: `secc compile` (defaults: p_fail 2^-128 per bootstrap, 128-bit security, the accuracy
  budget's widths), `keygen`, `encrypt`, then `eval`, which prints the median per sample;
- Concrete-ML: `compile_onnx_model` (n_bits 6, approximate rounding to 6 bits, p_error 2^-40:
  its fastest setting), keygen, then `fhe_circuit.run` on each encrypted sample.

It also reports the accuracy of float (onnxruntime), Concrete-ML's simulation and secc's
simulation on the test rows, so a faster row is not a less accurate one.

Set-up (once; ~6 GB with torch), from the repository root:
    python3 -m venv cml && cml/bin/pip install concrete-ml==1.9.0 onnx onnxruntime
    cargo build --release
Run (a quiet machine; ~15 minutes with the defaults):
    cml/bin/python scripts/compare_concrete_ml.py --out cml-compare.md
    cml/bin/python scripts/compare_concrete_ml.py --models dense_relu --samples 5

Models: `relu100` (100 ReLUs, outputs kept encrypted: secc `--output-tables`; generated here
with torch), and testdata directories (`model.onnx`, `calib.csv`, `test.csv`, `labels.csv`)
by name under testdata/models or by path.
"""
import argparse, json, os, re, statistics, subprocess, sys, tempfile, time
from pathlib import Path

import numpy as np
import onnx
import onnx.version_converter

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODELS = "relu100,dense_relu,cnn_tiny,cnn"


def make_relu100(d: Path, rows: int) -> dict:
    """100 independent ReLUs on a (1, 100) input, as torch exports them."""
    import torch

    rng = np.random.default_rng(7)
    calib = rng.normal(size=(200, 100)).astype(np.float32)
    test = rng.normal(size=(rows, 100)).astype(np.float32)
    torch.onnx.export(torch.nn.ReLU(), torch.zeros(1, 100), d / "model.onnx", opset_version=14)
    np.savetxt(d / "calib.csv", calib, delimiter=",")
    np.savetxt(d / "test.csv", test, delimiter=",")
    # 6-bit tables, as Concrete-ML's: the accuracy budget's argmax test means nothing on 100
    # independent outputs (near-ties among the positive ones) and widens the table to 8 bits.
    return {"dir": d, "labels": None, "secc_flags": ["--output-tables", "--table-bits", "6"]}


def model_dir(name: str, work: Path, rows: int) -> dict:
    if name == "relu100":
        d = work / name
        d.mkdir()
        return make_relu100(d, rows)
    d = Path(name) if Path(name).is_dir() else ROOT / "testdata" / "models" / name
    if not (d / "model.onnx").exists():
        sys.exit(f"{name}: no model.onnx in {d}")
    labels = d / "labels.csv"
    return {"dir": d, "labels": labels if labels.exists() else None, "secc_flags": []}


def to_opset14(src: Path, dst: Path) -> onnx.ModelProto:
    model = onnx.load(src)
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    if opset != 14:
        model = onnx.version_converter.convert_version(model, 14)
    onnx.save(model, dst)
    return model


def load_rows(path: Path, shape) -> np.ndarray:
    return np.loadtxt(path, delimiter=",", dtype=np.float32, ndmin=2).reshape(shape)


def accuracy(outputs: np.ndarray, labels) -> float | None:
    if labels is None:
        return None
    y = np.loadtxt(labels).astype(int).reshape(-1)
    out = outputs.reshape(len(outputs), -1)
    return float((out.argmax(1) == y[: len(out)]).mean())


def secc(binary: str, *args: str) -> str:
    r = subprocess.run([binary, *args], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"secc {' '.join(args)}: {r.stderr.strip()}")
    return r.stderr


def run_secc(binary: str, onnx_path: Path, m: dict, work: Path, test_rows: Path) -> dict:
    art = work / "model.secc"
    log = secc(binary, "compile", str(onnx_path), "--calib", str(m["dir"] / "calib.csv"), "-o", str(art), *m["secc_flags"])
    res = {"compile": [l for l in log.splitlines() if l.startswith("TFHE:")]}
    keys, server = work / "keys", work / "server"
    server.mkdir()
    secc(binary, "keygen", str(art), "--keys", str(keys))
    (keys / "server.key").rename(server / "server.key")
    secc(binary, "encrypt", str(art), "--keys", str(keys), "--input", str(test_rows), "-o", str(work / "x.enc"))
    log = secc(binary, "eval", str(art), "--server-key", str(server / "server.key"), str(work / "x.enc"), "-o", str(server / "y.enc"))
    med = re.search(r"median ([0-9.]+) s", log)
    res["fhe_s_per_sample"] = float(med.group(1))
    expanded = re.search(r"server key expanded in ([0-9.]+) s", log)
    res["key_load_s"] = float(expanded.group(1)) if expanded else None
    pbs = re.search(r"(\d+) bootstraps per inference with (\S+)", "\n".join(res["compile"]))
    res["pbs"], res["params"] = (int(pbs.group(1)), pbs.group(2)) if pbs else (None, None)
    sim = subprocess.run(
        [binary, "run", str(art), "--input", str(m["dir"] / "test.csv"), "--backend", "sim"],
        capture_output=True, text=True, check=True,
    ).stdout
    res["sim_outputs"] = np.loadtxt(sim.splitlines(), delimiter=",", ndmin=2)
    return res


def run_cml(model: onnx.ModelProto, calib: np.ndarray, test: np.ndarray, samples: int, p_error: float) -> dict:
    from concrete.ml.torch.compile import compile_onnx_model

    rounding = {"n_bits": 6, "method": "approximate"}
    t = time.time()
    qm = compile_onnx_model(model, calib, n_bits=6, rounding_threshold_bits=rounding, p_error=p_error)
    res = {"compile_s": time.time() - t}
    res["pbs"] = qm.fhe_circuit.statistics.get("programmable_bootstrap_count")
    qm.fhe_circuit.keygen()
    times = []
    for i in range(samples):
        q = qm.quantize_input(test[i : i + 1])
        enc = qm.fhe_circuit.encrypt(q)
        t = time.time()
        qm.fhe_circuit.run(enc)
        times.append(time.time() - t)
    res["fhe_s_per_sample"] = statistics.median(times)
    res["sim_outputs"] = qm.forward(test, fhe="simulate")
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=DEFAULT_MODELS, help=f"comma-separated [default: {DEFAULT_MODELS}]")
    ap.add_argument("--samples", type=int, default=5, help="timed samples per system and model [default: 5]")
    ap.add_argument("--secc", default=str(ROOT / "target" / "release" / "secc"), help="the secc binary")
    ap.add_argument("--p-error", type=float, default=2.0**-40, help="Concrete-ML's p_error [default: 2^-40]")
    ap.add_argument(
        "--secc-p-fail",
        help="secc's failure probability per bootstrap (`secc compile --p-fail`, e.g. 2^-40 to compare at "
        "Concrete-ML's) [default: secc's, 2^-128]",
    )
    ap.add_argument("--out", help="also write the markdown table here")
    a = ap.parse_args()
    if not Path(a.secc).exists():
        sys.exit(f"{a.secc} does not exist: run `cargo build --release` or pass --secc")

    rows, load = [], [os.getloadavg()[0]]
    for name in a.models.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            m = model_dir(name, work, a.samples)
            if a.secc_p_fail:
                m["secc_flags"] = [*m["secc_flags"], "--p-fail", a.secc_p_fail]
            onnx_path = work / "model14.onnx"
            model = to_opset14(m["dir"] / "model.onnx", onnx_path)
            dims = [d.dim_value or 1 for d in model.graph.input[0].type.tensor_type.shape.dim]
            shape = (-1, *dims[1:])
            calib, test = load_rows(m["dir"] / "calib.csv", shape), load_rows(m["dir"] / "test.csv", shape)
            timed = work / "timed.csv"
            np.savetxt(timed, test[: a.samples].reshape(min(a.samples, len(test)), -1), delimiter=",")
            import onnxruntime as ort

            sess = ort.InferenceSession(str(onnx_path))
            inp = sess.get_inputs()[0].name
            floats = np.concatenate([sess.run(None, {inp: test[i : i + 1]})[0] for i in range(len(test))])
            (work / "secc").mkdir()
            s = run_secc(a.secc, onnx_path, m, work / "secc", timed)
            c = run_cml(model, calib, test, min(a.samples, len(test)), a.p_error)
            row = {
                "model": name,
                "cml_s": c["fhe_s_per_sample"],
                "secc_s": s["fhe_s_per_sample"],
                "ratio": s["fhe_s_per_sample"] / c["fhe_s_per_sample"],
                "cml_pbs": c["pbs"],
                "secc_pbs": s["pbs"],
                "secc_params": s["params"],
                "acc_float": accuracy(floats, m["labels"]),
                "acc_cml_sim": accuracy(c["sim_outputs"], m["labels"]),
                "acc_secc_sim": accuracy(s["sim_outputs"], m["labels"]),
                "secc_key_load_s": s["key_load_s"],
            }
            print(json.dumps(row), flush=True)
            rows.append(row)
    load.append(os.getloadavg()[0])

    pct = lambda x: "" if x is None else f"{100 * x:.1f}%"
    lines = [
        f"secc (p_fail {a.secc_p_fail or '2^-128'}) vs Concrete-ML 1.9 (p_error {a.p_error:.3g}), "
        f"FHE evaluation per sample (median of {a.samples}, keys excluded); "
        f"1-minute load average {load[0]:.2f} before, {load[1]:.2f} after",
        "",
        "| model | Concrete-ML s | secc s | secc / Concrete-ML | bootstraps CML / secc | secc set | accuracy float / CML sim / secc sim |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        acc = " / ".join(pct(r[k]) for k in ("acc_float", "acc_cml_sim", "acc_secc_sim")) if r["acc_float"] is not None else ""
        params = (r["secc_params"] or "").replace("V1_6_PARAM_", "").replace("_KS_PBS_GAUSSIAN_2M128", "")
        lines.append(
            f"| {r['model']} | {r['cml_s']:.3f} | {r['secc_s']:.3f} | **{r['ratio']:.2f}** | "
            f"{r['cml_pbs']} / {r['secc_pbs']} | {params} | {acc} |"
        )
    table = "\n".join(lines) + "\n"
    print(table)
    if a.out:
        Path(a.out).write_text(table)


if __name__ == "__main__":
    main()
