#!/usr/bin/env python3
"""Classifier heads as torch exports them: a final Softmax and a final LogSoftmax.

Usage (repository root): /path/to/venv/bin/python testdata/make_head_models.py
Writes testdata/models/torch_head_{softmax,logsoftmax}/ (layout in testdata/README.md) and
testdata/models/broken/unsupported_op.onnx.
"""
import json
import os

import numpy as np
import onnxruntime as ort
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "models")


def main():
    torch.manual_seed(0)
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.2, random_state=42, stratify=y)
    body = torch.nn.Sequential(torch.nn.Linear(64, 16), torch.nn.ReLU(), torch.nn.Linear(16, 10))
    opt = torch.optim.Adam(body.parameters(), lr=0.01)
    xt, yt = torch.from_numpy(xtr), torch.from_numpy(ytr).long()
    for _ in range(200):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(body(xt), yt).backward()
        opt.step()
    body.eval()
    for name, head, opset in [("softmax", torch.nn.Softmax(dim=1), 17), ("logsoftmax", torch.nn.LogSoftmax(dim=-1), 13)]:
        model = torch.nn.Sequential(body, head).eval()
        d = os.path.join(OUT, f"torch_head_{name}")
        os.makedirs(d, exist_ok=True)
        path = os.path.join(d, "model.onnx")
        torch.onnx.export(model, torch.zeros(1, 64), path, opset_version=opset, dynamo=False,
                          input_names=["input"], output_names=["output"],
                          dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
        sess = ort.InferenceSession(path)
        test = xte[:100]
        out = np.concatenate([sess.run(None, {"input": r[None]})[0] for r in test])
        acc = float((out.argmax(1) == yte[:100]).mean())
        fmt = lambda rows, f: "\n".join(",".join(f(v) for v in r) for r in rows) + "\n"
        open(os.path.join(d, "calib.csv"), "w").write(fmt(xtr[:150], lambda v: f"{v:.9g}"))
        open(os.path.join(d, "test.csv"), "w").write(fmt(test, lambda v: f"{v:.9g}"))
        open(os.path.join(d, "labels.csv"), "w").write("".join(f"{v}\n" for v in yte[:100]))
        open(os.path.join(d, "expected.csv"), "w").write(fmt(out, lambda v: f"{v:.9g}"))
        meta = {
            "task": "classification", "metric": "accuracy", "float_metric": acc,
            "input_shape": [1, 64], "output_shape": [1, 10],
            "description": f"Dense 64-16-10 with a final {head.__class__.__name__} on sklearn digits (pixels/16).",
            "exporter": f"torch {torch.__version__} dynamo=False opset {opset}, dynamic batch",
            "opset": opset, "n_test": 100, "n_calib": 150, "backends": ["float", "sim", "mpc"],
        }
        json.dump(meta, open(os.path.join(d, "meta.json"), "w"), indent=2)
        print(name, acc)


def unsupported_op():
    """broken/unsupported_op.onnx: a running sum (ONNX `CumSum`), which secc does not
    compile, over 8 input values, as torch exports it."""

    class RunningSum(torch.nn.Module):
        def forward(self, x):
            return torch.cumsum(x, dim=1)

    path = os.path.join(OUT, "broken", "unsupported_op.onnx")
    torch.onnx.export(RunningSum().eval(), torch.zeros(1, 8), path, opset_version=17, dynamo=False,
                      input_names=["input"], output_names=["output"])


if __name__ == "__main__":
    main()
    unsupported_op()
