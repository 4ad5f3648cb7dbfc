#!/usr/bin/env python3
"""Small torch MLPs using every activation secc reads as one univariate op, trained
briefly on sklearn's breast-cancer set and exported with torch.onnx.export, as users
do. Writes testdata/models/torch_act*/ (see the layout in testdata/README.md).

Usage (from the repository root):
    /work/pyenv/bin/python testdata/make_unary_models.py

torch, onnx, onnxruntime and scikit-learn (testdata/requirements.txt). Fixed seeds.
"""
import json
import os

import numpy as np
import onnx
import onnxruntime as ort
import torch
from sklearn.datasets import load_breast_cancer
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from modelfiles import read_csv, write_csv

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "models")
N_TEST, N_CALIB = 100, 200

# name -> (activations, opset, dynamic batch axis)
MODELS = {
    "torch_act_leaky_prelu": (lambda: [torch.nn.LeakyReLU(0.1), torch.nn.PReLU()], 17, False),
    "torch_act_elu_selu": (lambda: [torch.nn.ELU(0.8), torch.nn.SELU()], 17, True),
    "torch_act_celu_hardsigmoid": (lambda: [torch.nn.CELU(1.5), torch.nn.Hardsigmoid()], 17, False),
    "torch_act_hardswish_softplus": (lambda: [torch.nn.Hardswish(), torch.nn.Softplus()], 17, True),
    "torch_act_mish_gelu_tanh": (lambda: [torch.nn.Mish(), torch.nn.GELU(approximate="tanh")], 17, False),
    "torch_act_silu_op13": (lambda: [torch.nn.SiLU(), torch.nn.LeakyReLU(0.2)], 13, True),
    "torch_act_elu_hardsigmoid_op13": (lambda: [torch.nn.ELU(), torch.nn.Hardsigmoid()], 13, False),
}


class Affine(torch.nn.Module):
    """`x · scale + shift` with a learnt value per feature: torch writes Mul and Add with
    per-channel constants; `(x − mean) / std` likewise writes Sub and Div."""

    def __init__(self, n):
        super().__init__()
        self.scale, self.shift = torch.nn.Parameter(torch.ones(n)), torch.nn.Parameter(torch.zeros(n))
        self.register_buffer("mean", torch.linspace(-0.5, 0.5, n))
        self.register_buffer("std", torch.linspace(0.5, 2.0, n))

    def forward(self, x):
        return ((x * self.scale + self.shift) - self.mean) / self.std


# Per-channel affine maps the exporters do not fold into a neighbouring layer: secc folds
# those that feed a Linear into it (torch_act_affine); a BatchNormalization between a
# ReLU and a Tanh stays a per-channel map (per-channel tables; one product under SMPC).
CHANNEL_MODELS = {
    "torch_act_bn1d": lambda n: torch.nn.Sequential(
        torch.nn.Linear(n, 16), torch.nn.ReLU(), torch.nn.BatchNorm1d(16), torch.nn.Tanh(), torch.nn.Linear(16, 2)),
    "torch_act_affine": lambda n: torch.nn.Sequential(
        Affine(n), torch.nn.Linear(n, 16), torch.nn.Sigmoid(), Affine(16), torch.nn.Linear(16, 2)),
}


def net(acts, n_in, width=16):
    layers, d = [], n_in
    for a in acts:
        layers += [torch.nn.Linear(d, width), a]
        d = width
    return torch.nn.Sequential(*layers, torch.nn.Linear(d, 2))


# Measured: the simulation loses 2 points on these on the test rows, even at the widths
# the accuracy budget picks (it agrees with float on every calibration row).
SIM_SHORT = {
    "torch_act_affine": "sim: accuracy 0.95 against float 0.97 on the 100 test rows even at the widths the "
                        "accuracy budget picks (same argmax on the calibration rows)",
    "torch_act_celu_hardsigmoid": "sim: accuracy 0.96 against float 0.98 on the 100 test rows even at the widths "
                                  "the accuracy budget picks (same argmax on the calibration rows)",
}


def main():
    X, y = load_breast_cancer(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.2, random_state=0, stratify=y)
    sc = StandardScaler().fit(Xtr)
    Xtr, Xte = sc.transform(Xtr).astype(np.float32), sc.transform(Xte).astype(np.float32)
    builds = {name: (lambda acts=acts: net(acts(), X.shape[1]), opset, dynamic, [type(a).__name__ for a in acts()])
              for name, (acts, opset, dynamic) in MODELS.items()}
    builds.update({name: (lambda make=make: make(X.shape[1]), 17, False, None) for name, make in CHANNEL_MODELS.items()})
    for name, (build, opset, dynamic, act_names) in builds.items():
        torch.manual_seed(0)
        model = build()
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        xt, yt = torch.tensor(Xtr), torch.tensor(ytr)
        for _ in range(150):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(xt), yt).backward()
            opt.step()
        model.eval()
        d = os.path.join(OUT, name)
        os.makedirs(d, exist_ok=True)
        path = os.path.join(d, "model.onnx")
        kwargs = {"dynamic_axes": {"input": {0: "batch"}, "output": {0: "batch"}}} if dynamic else {}
        torch.onnx.export(model, (torch.tensor(Xtr[:1]),), path, input_names=["input"], output_names=["output"],
                          opset_version=opset, dynamo=False, **kwargs)
        write_csv(os.path.join(d, "calib.csv"), Xtr[:N_CALIB])
        write_csv(os.path.join(d, "test.csv"), Xte[:N_TEST])
        with open(os.path.join(d, "labels.csv"), "w") as f:
            f.writelines("%d\n" % v for v in yte[:N_TEST])
        sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        xt_back = read_csv(os.path.join(d, "test.csv"))
        out = np.concatenate([sess.run(None, {"input": r[None]})[0] for r in xt_back])
        write_csv(os.path.join(d, "expected.csv"), out)
        acc = float((out.argmax(1) == yte[:N_TEST]).mean())
        ops = sorted({n.op_type for n in onnx.load(path).graph.node})
        meta = {
            "task": "classification", "metric": "accuracy", "float_metric": acc,
            "input_shape": [1, X.shape[1]], "output_shape": [1, 2],
            "description": (f"torch MLP 30-16-16-2, activations {act_names}, " if act_names
                            else f"torch {' '.join(str(model).split())}, ")
                           + f"150 Adam steps on standardized load_breast_cancer (80/20 split, random_state=0); "
                           f"ONNX ops {ops}. Output: 2 logits.",
            "n_test": int(len(xt_back)), "n_calib": int(min(N_CALIB, len(Xtr))),
            "exporter": f"torch {torch.__version__.split('+')[0]} dynamo=False opset {opset}"
                        + (" dynamic batch" if dynamic else ""),
            # TFHE keys cost a minute each in a debug test: one net stands for the rest
            # (tests/fhe.rs runs the ELU/SELU net too).
            "backends": ["float"] + ([] if name in SIM_SHORT else ["sim"]) + ["mpc"]
                        + (["fhe"] if name == "torch_act_bn1d" else []),
        }
        if name in SIM_SHORT:
            meta["blocked_by"] = SIM_SHORT[name]
        with open(os.path.join(d, "meta.json"), "w") as f:
            json.dump(meta, f, indent=2)
            f.write("\n")
        print(f"{name}: accuracy {acc:.3f}, ops {ops}, {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
