#!/usr/bin/env python3
"""Single-op cases of the ONNX backend test suite for the activations secc reads as one
univariate op (onnx.backend.test.case.node, as onnx.backend.test.cmd_tools writes
them), with their inputs and the suite's expected outputs as CSV. The conformance
suite commits the whole suite; these few back tests/unary.rs on every backend.

Usage (from the repository root):
    /work/pyenv/bin/python testdata/make_unary_cases.py
"""
import json
import os
import shutil

import numpy as np
import onnx
from onnx.backend.test.case.node import collect_testcases

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "unary_cases")
CASES = [
    "test_celu", "test_dropout_default", "test_elu", "test_elu_default", "test_gelu_default_2", "test_gelu_tanh_2",
    "test_hardsigmoid", "test_hardsigmoid_default", "test_hardswish", "test_leakyrelu", "test_leakyrelu_default",
    "test_log", "test_mish", "test_reciprocal", "test_selu", "test_selu_default", "test_softplus",
]


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    found = {c.name: c for c in collect_testcases()}
    for name in CASES:
        case = found[name]
        (inputs, outputs), = case.data_sets
        d = os.path.join(OUT, name)
        os.makedirs(d)
        onnx.save(case.model, os.path.join(d, "model.onnx"))
        for file, t in [("input.csv", inputs[0]), ("expected.csv", outputs[0])]:
            np.savetxt(os.path.join(d, file), np.asarray(t, dtype=np.float32).reshape(1, -1), delimiter=",", fmt="%.9g")
        with open(os.path.join(d, "meta.json"), "w") as f:
            json.dump({"input_shape": list(inputs[0].shape), "op": case.model.graph.node[0].op_type}, f)
            f.write("\n")
        print(name, inputs[0].shape)


if __name__ == "__main__":
    main()
