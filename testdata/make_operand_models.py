#!/usr/bin/env python3
"""Models whose ops read two computed tensors, exported by torch.onnx.export.

Usage (from the repository root):
    /work/pyenv/bin/python testdata/make_operand_models.py

Writes testdata/models/{torch_res*,torch_mul*,torch_attn*,torch_two_heads}/ with model.onnx,
calib.csv, test.csv, labels.csv, expected.csv (onnxruntime's outputs on the test
rows) and meta.json:

- torch_res_block*: a ResNet basic block (conv-bn-relu-conv-bn + identity shortcut,
  relu) after a conv stem, then flatten + linear: the residual `Add` of two computed
  tensors.
- torch_mul_gate*: `relu(fc1(x)) * sigmoid(fc2(x))` then a linear head: the `Mul` of
  two computed tensors.
- torch_attn*: a one-block transformer encoder (d_model 8, sequence 8, the rows of
  a digit image as tokens): attention's `Q·Kᵀ` and `A·V` (MatMul of two computed
  tensors), Softmax inside the graph, LayerNormalization, residual adds.
- torch_two_heads: an MLP trunk with two heads, two graph outputs (the digit's
  logits, then an even/odd head); expected.csv holds both, end to end per row.

All trained on scikit-learn's digits (pixels / 16, 80/20 stratified split,
random_state=42) for a few epochs with fixed seeds; the models are tiny, the point
is the graph structure as the exporters write it.
"""
import json
import os

import numpy as np
import onnxruntime as ort
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn
from modelfiles import read_csv, write_csv

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "models")
N_TEST = 100
N_CALIB = 150


def digits():
    d = load_digits()
    X = (d.data / 16.0).astype(np.float32)
    Xtr, Xte, ytr, yte = train_test_split(X, d.target, test_size=0.2, stratify=d.target, random_state=42)
    return Xtr, Xte, ytr, yte


def train(model, X, y, shape, epochs, lr=3e-3, seed=0):
    torch.manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    Xt = torch.tensor(X).reshape([len(X)] + shape)
    yt = torch.tensor(y, dtype=torch.long)
    for _ in range(epochs):
        perm = torch.randperm(len(X))
        for i in range(0, len(X), 32):
            idx = perm[i:i + 32]
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(Xt[idx]), yt[idx])
            loss.backward()
            opt.step()
    model.eval()
    return model


def export(model, name, shape, opset, dynamic, dynamo=False, outputs=("output",)):
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, "model.onnx")
    x = torch.zeros([1] + shape)
    kw = {}
    if dynamic:
        kw["dynamic_axes"] = {"input": {0: "batch"}, **{o: {0: "batch"} for o in outputs}}
    torch.onnx.export(model, (x,), path, input_names=["input"], output_names=list(outputs), opset_version=opset,
                      dynamo=dynamo, **kw)
    return d, path


def ort_run(path, X, shape):
    """Every output of the model on each row of X, flattened and laid end to end."""
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    return np.stack([np.concatenate([o.reshape(-1) for o in sess.run(None, {"input": r.reshape([1] + shape)})])
                     for r in X])


def save(model, name, shape, opset, dynamic, desc, backends, data, dynamo=False, outputs=("output",)):
    Xtr, Xte, ytr, yte = data
    d, path = export(model, name, shape, opset, dynamic, dynamo, outputs)
    write_csv(os.path.join(d, "calib.csv"), Xtr[:N_CALIB])
    write_csv(os.path.join(d, "test.csv"), Xte[:N_TEST])
    with open(os.path.join(d, "labels.csv"), "w") as f:
        f.writelines("%d\n" % v for v in yte[:N_TEST])
    Xt = read_csv(os.path.join(d, "test.csv"))
    out = ort_run(path, Xt, shape)
    write_csv(os.path.join(d, "expected.csv"), out)
    with torch.no_grad():
        ref = model(torch.tensor(Xt).reshape([len(Xt)] + shape))
        ref = torch.cat(ref, 1) if isinstance(ref, tuple) else ref
    assert np.abs(ref.numpy() - out).max() < 1e-4, (name, np.abs(ref.numpy() - out).max())
    # The first output is the digit's logits.
    acc = float((out[:, :10].argmax(1) == yte[:N_TEST]).mean())
    exporter = "torch %s %s opset %d%s" % (torch.__version__.split("+")[0], "dynamo=True" if dynamo else "dynamo=False",
                                           opset, ", dynamic batch" if dynamic else "")
    meta = {"task": "classification", "metric": "accuracy", "float_metric": round(acc, 6),
            "input_shape": [1] + shape, "output_shape": [1, 10], "description": desc,
            "n_test": int(len(Xt)), "n_calib": int(min(N_CALIB, len(Xtr))), "exporter": exporter,
            "backends": backends}
    if "sim" not in backends:
        meta["blocked_by"] = ("sim and fhe: the softmax inside the model has no quantized form (each output reads "
                              "its whole row), so the artifact has no quantized IR; float and SMPC run it")
    with open(os.path.join(d, "meta.json"), "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")
    print("%-22s %-45s accuracy %.3f" % (name, exporter, acc))


class ResBlock(nn.Module):
    """A conv stem, one ResNet basic block (identity shortcut), flatten + linear."""

    def __init__(self, c=4):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, c, 3, padding=1), nn.BatchNorm2d(c), nn.ReLU())
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)
        self.head = nn.Linear(c * 64, 10)

    def forward(self, x):
        x = self.stem(x)
        y = torch.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        y = torch.relu(y + x)
        return self.head(torch.flatten(y, 1))


class Gate(nn.Module):
    """`relu(fc1(x)) * sigmoid(fc2(x))`, then a linear head."""

    def __init__(self, h=16):
        super().__init__()
        self.fc1, self.fc2, self.head = nn.Linear(64, h), nn.Linear(64, h), nn.Linear(h, 10)

    def forward(self, x):
        return self.head(torch.relu(self.fc1(x)) * torch.sigmoid(self.fc2(x)))


class TwoHeads(nn.Module):
    """An MLP trunk, a digit head and an even/odd head: two graph outputs."""

    def __init__(self, h=32):
        super().__init__()
        self.trunk = nn.Sequential(nn.Linear(64, h), nn.ReLU())
        self.digit, self.parity = nn.Linear(h, 10), nn.Linear(h, 2)

    def forward(self, x):
        h = self.trunk(x)
        return self.digit(h), self.parity(h)


class Encoder(nn.Module):
    """One post-norm transformer encoder block over the 8 rows of a digit (tokens of 8
    pixels), single-head attention written out, then flatten + linear."""

    def __init__(self, d=8, s=8, ff=16, norm=True):
        super().__init__()
        self.norm = norm
        self.embed = nn.Linear(8, d)
        self.pos = nn.Parameter(torch.randn(s, d) * 0.1)
        self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.ff1, self.ff2 = nn.Linear(d, ff), nn.Linear(ff, d)
        self.head = nn.Linear(s * d, 10)
        self.scale = d ** -0.5

    def forward(self, x):
        h = self.embed(x) + self.pos
        a = torch.softmax(self.q(h) @ self.k(h).transpose(-2, -1) * self.scale, dim=-1)
        h = h + self.o(a @ self.v(h))
        h = self.ln1(h) if self.norm else h
        h = h + self.ff2(torch.relu(self.ff1(h)))
        h = self.ln2(h) if self.norm else h
        return self.head(torch.flatten(h, 1))


def main(only=None):
    data = digits()
    if only == "attn_nonorm":
        return attn_nonorm(data)
    if only == "two_heads":
        return two_heads(data)
    Xtr, _, ytr, _ = data
    torch.manual_seed(1)
    res = train(ResBlock(), Xtr, ytr, [1, 8, 8], epochs=8)
    desc = ("conv(1->4,3x3)-bn-relu stem, a ResNet basic block (conv-bn-relu-conv-bn + identity shortcut, relu), "
            "flatten, linear 256->10; digits 8x8. The block's Add reads two computed tensors.")
    save(res, "torch_res_block", [1, 8, 8], 13, True, desc, ["float", "sim", "mpc"], data)
    save(res, "torch_res_block_o17", [1, 8, 8], 17, False, desc, ["float", "sim", "mpc"], data)

    torch.manual_seed(2)
    gate = train(Gate(), Xtr, ytr, [64], epochs=15)
    desc = "relu(fc1(x)) * sigmoid(fc2(x)) (64->16 each), linear 16->10; digits. The Mul reads two computed tensors."
    save(gate, "torch_mul_gate", [64], 13, True, desc, ["float", "sim", "mpc"], data)
    save(gate, "torch_mul_gate_o17", [64], 17, False, desc, ["float", "sim", "mpc"], data)

    torch.manual_seed(3)
    enc = train(Encoder(), Xtr, ytr, [8, 8], epochs=15)
    desc = ("one post-norm transformer encoder block, d_model 8, one head, sequence 8 (the rows of a digit), "
            "feed-forward 16, LayerNorm, flatten, linear 64->10; digits. Q·K^T and A·V multiply two computed "
            "tensors; Softmax inside the graph.")
    save(enc, "torch_attn_block", [8, 8], 17, False, desc, ["float", "mpc"], data)
    save(enc, "torch_attn_block_o13", [8, 8], 13, True, desc, ["float", "mpc"], data)
    attn_nonorm(data)
    two_heads(data)


def two_heads(data):
    Xtr, _, ytr, _ = data
    torch.manual_seed(5)
    model = TwoHeads()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    Xt, yt = torch.tensor(Xtr), torch.tensor(ytr, dtype=torch.long)
    for _ in range(15):
        perm = torch.randperm(len(Xtr))
        for i in range(0, len(Xtr), 32):
            idx = perm[i:i + 32]
            opt.zero_grad()
            digit, parity = model(Xt[idx])
            loss = nn.functional.cross_entropy(digit, yt[idx]) + nn.functional.cross_entropy(parity, yt[idx] % 2)
            loss.backward()
            opt.step()
    model.eval()
    desc = ("MLP 64-32 ReLU with two heads, two graph outputs: the digit's logits (10) and even/odd logits (2); "
            "digits.")
    save(model, "torch_two_heads", [64], 17, True, desc, ["float", "sim", "mpc"], data, outputs=("digit", "parity"))


def attn_nonorm(data):
    Xtr, _, ytr, _ = data
    torch.manual_seed(4)
    enc = train(Encoder(norm=False), Xtr, ytr, [8, 8], epochs=10)
    desc = ("the torch_attn_block encoder without its LayerNorms: embedding, single-head attention (Q·K^T, "
            "Softmax inside the graph, A·V), residual adds, feed-forward 16, flatten, linear 64->10; digits.")
    save(enc, "torch_attn_nonorm", [8, 8], 17, False, desc, ["float", "mpc"], data)


if __name__ == "__main__":
    import sys
    main(*sys.argv[1:])
