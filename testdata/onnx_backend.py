"""Writes the ONNX backend test suite to a scratch directory, for tests/onnx_backend.rs.

onnx >= 1.23 no longer ships the node tests' generated data, only their generators
(`onnx.backend.test.case.node.collect_testcases()`); this writes every node case the
way `onnx.backend.test.cmd_tools` writes a case (model.onnx, test_data_set_N/input_K.pb
and output_K.pb), and copies the pytorch-converted and pytorch-operator models that
still ship in onnx/backend/test/data/.

    /work/pyenv/bin/python testdata/onnx_backend.py /tmp/onnx-backend
    SECC_ONNX_BACKEND=/tmp/onnx-backend SECC_BLESS=1 cargo test --test onnx_backend -- --ignored

Layout: DIR/<suite>/<case>/..., and DIR/index.tsv: suite, case, class, reason. The
class is `single_float` for secc's contract (one float tensor input once initializers
are left out, float tensor outputs) and `other` for the rest, with the reason.
"""

import os
import shutil
import sys
import warnings

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper
from onnx.backend.test.case import node as node_cases

SHIPPED_SUITES = ["pytorch-converted", "pytorch-operator"]


def classify(model: onnx.ModelProto) -> tuple[str, str]:
    """`single_float` or `other`, and why not."""
    g = model.graph
    inits = {t.name for t in g.initializer}
    inputs = [i for i in g.input if i.name not in inits]
    if len(inputs) != 1:
        return "other", f"{len(inputs)} inputs"
    for kind, values in (("input", inputs), ("output", g.output)):
        for v in values:
            if not v.type.HasField("tensor_type"):
                return "other", f"non-tensor {kind}"
            if v.type.tensor_type.elem_type != TensorProto.FLOAT:
                name = TensorProto.DataType.Name(v.type.tensor_type.elem_type)
                return "other", f"{name} {kind}"
    return "single_float", ""


def to_proto(value, name: str):
    if isinstance(value, TensorProto):
        return value
    if isinstance(value, np.ndarray) or np.isscalar(value):
        return numpy_helper.from_array(np.asarray(value), name)
    return None  # sequences, maps, optionals: not secc's contract, no data written


def write_node_case(case, out: str) -> bool:
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "model.onnx"), "wb") as f:
        f.write(case.model.SerializeToString())
    g = case.model.graph
    for i, (inputs, outputs) in enumerate(case.data_sets):
        d = os.path.join(out, f"test_data_set_{i}")
        os.makedirs(d, exist_ok=True)
        for prefix, values, infos in (("input", inputs, g.input), ("output", outputs, g.output)):
            for j, v in enumerate(values):
                name = infos[j].name if j < len(infos) else f"{prefix}_{j}"
                p = to_proto(v, name)
                if p is None:
                    return False
                with open(os.path.join(d, f"{prefix}_{j}.pb"), "wb") as f:
                    f.write(p.SerializeToString())
    return True


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} SCRATCH_DIR")
    root = sys.argv[1]
    if os.path.exists(root):
        shutil.rmtree(root)
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the generators divide by zero on purpose
        cases = node_cases.collect_testcases(None)
    for case in sorted(cases, key=lambda c: c.name):
        out = os.path.join(root, "node", case.name)
        cls, why = classify(case.model)
        if not write_node_case(case, out) and cls == "single_float":
            cls, why = "other", "non-tensor data"
        rows.append(("node", case.name, cls, why))
    data = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data")
    for suite in SHIPPED_SUITES:
        for name in sorted(os.listdir(os.path.join(data, suite))):
            src = os.path.join(data, suite, name)
            shutil.copytree(src, os.path.join(root, suite, name))
            cls, why = classify(onnx.load(os.path.join(src, "model.onnx")))
            rows.append((suite, name, cls, why))
    with open(os.path.join(root, "index.tsv"), "w") as f:
        f.write(f"# onnx {onnx.__version__}\n")
        for r in rows:
            f.write("\t".join(r) + "\n")
    for suite in ["node"] + SHIPPED_SUITES:
        mine = [r for r in rows if r[0] == suite]
        single = sum(r[2] == "single_float" for r in mine)
        print(f"{suite}: {len(mine)} cases, {single} single-input float, {len(mine) - single} other")


if __name__ == "__main__":
    main()
