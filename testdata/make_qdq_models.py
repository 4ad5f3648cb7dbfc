#!/usr/bin/env python3
"""int8 QDQ models, made the way users make them: train a tiny torch net on sklearn
digits, export it with torch.onnx.export (opset 17, legacy exporter), then quantize it
with onnxruntime.quantization.quantize_static (QuantFormat.QDQ) over a
CalibrationDataReader of training rows.

Usage (from the repository root):
    /work/pyenv/bin/python testdata/make_qdq_models.py

Writes testdata/models/qdq_*/{model.onnx,calib.csv,test.csv,labels.csv,expected.csv,meta.json}.
`expected.csv` is onnxruntime's output on the QDQ model with graph optimizations off
(ORT_DISABLE_ALL): onnxruntime then evaluates every QuantizeLinear and DequantizeLinear
as written, which is the float meaning secc's `float` backend computes. With its default
optimizations onnxruntime fuses Q/DQ pairs into int8 kernels; meta.json records how far
the two modes differ (`ort_modes_max_abs_diff`).
"""
import json
import os
import tempfile

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                      quantize_static)
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "models")
N_TEST = 100
N_CALIB = 200


def digits():
    d = load_digits()
    x = (d.data / 16.0).astype(np.float32)
    return train_test_split(x, d.target, test_size=0.2, stratify=d.target, random_state=42)


class Dense(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(64, 32)
        self.fc2 = torch.nn.Linear(32, 16)
        self.fc3 = torch.nn.Linear(16, 10)

    def forward(self, x):
        x = torch.relu(self.fc1(x))
        x = torch.relu(self.fc2(x))
        return self.fc3(x)


class Cnn(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, 4, 3)
        self.pool = torch.nn.MaxPool2d(2)
        self.fc = torch.nn.Linear(4 * 3 * 3, 10)

    def forward(self, x):
        x = self.pool(torch.relu(self.conv1(x)))
        return self.fc(torch.flatten(x, 1))


def train(net, x, y, shape, epochs=300):
    torch.manual_seed(0)
    xt = torch.tensor(x).reshape(-1, *shape)
    yt = torch.tensor(y)
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    for _ in range(epochs):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(xt), yt)
        loss.backward()
        opt.step()
    return net


class Rows(CalibrationDataReader):
    def __init__(self, rows, shape):
        self.rows = iter([{"input": r.reshape(shape).astype(np.float32)} for r in rows])

    def get_next(self):
        return next(self.rows, None)


def run_ort(path, rows, shape, level):
    so = ort.SessionOptions()
    so.graph_optimization_level = level
    s = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    return np.concatenate([s.run(None, {"input": r.reshape(shape).astype(np.float32)})[0] for r in rows])


def write_csv(path, rows):
    np.savetxt(path, np.asarray(rows).reshape(len(rows), -1), fmt="%.9g", delimiter=",")


def make(name, net, shape, x_train, y_train, x_test, y_test, per_channel, act, weight, desc, fhe=False):
    torch.manual_seed(0)
    net = train(net, x_train, y_train, shape)
    net.eval()
    calib = x_train[:N_CALIB]
    test, labels = x_test[:N_TEST], y_test[:N_TEST]
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = os.path.join(tmp, "fp32.onnx")
        torch.onnx.export(net, torch.zeros(1, *shape), fp32, input_names=["input"], output_names=["output"],
                          opset_version=17, dynamo=False)
        fp32_out = run_ort(fp32, test, (1, *shape), ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
        path = os.path.join(d, "model.onnx")
        quantize_static(fp32, path, Rows(calib, (1, *shape)), quant_format=QuantFormat.QDQ,
                        per_channel=per_channel, activation_type=act, weight_type=weight)
    onnx.checker.check_model(onnx.load(path), full_check=True)
    exact = run_ort(path, test, (1, *shape), ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    fused = run_ort(path, test, (1, *shape), ort.GraphOptimizationLevel.ORT_ENABLE_ALL)
    write_csv(os.path.join(d, "calib.csv"), calib)
    write_csv(os.path.join(d, "test.csv"), test)
    write_csv(os.path.join(d, "expected.csv"), exact)
    np.savetxt(os.path.join(d, "labels.csv"), labels, fmt="%d")
    acc = float((exact.argmax(1) == labels).mean())
    meta = {
        "task": "classification",
        "metric": "accuracy",
        "float_metric": round(acc, 6),
        "fp32_model_metric": round(float((fp32_out.argmax(1) == labels).mean()), 6),
        "ort_modes_max_abs_diff": float(np.abs(exact - fused).max()),
        "ort_modes_argmax_differ": int((exact.argmax(1) != fused.argmax(1)).sum()),
        "input_shape": [1, *shape],
        "output_shape": [1, 10],
        "description": desc,
        "n_test": len(test),
        "n_calib": len(calib),
        "exporter": f"torch {torch.__version__.split('+')[0]} dynamo=False opset 17, then onnxruntime "
                    f"{ort.__version__} quantize_static (QDQ, per_channel={per_channel}, "
                    f"activation_type={act.name}, weight_type={weight.name})",
        "expected_from": "onnxruntime, graph_optimization_level=ORT_DISABLE_ALL",
        # tests/qdq.rs runs TFHE on qdq_dense_s8 only (the CNN's max pool has no TFHE lowering).
        "backends": ["float", "sim", "mpc"] + (["fhe"] if fhe else []),
    }
    with open(os.path.join(d, "meta.json"), "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")
    print(name, json.dumps({k: meta[k] for k in ("float_metric", "fp32_model_metric", "ort_modes_max_abs_diff",
                                                  "ort_modes_argmax_differ")}),
          os.path.getsize(path), "bytes")


def main():
    x_train, x_test, y_train, y_test = digits()
    dense = "Dense net 64-32-16-10, ReLU, trained with torch (Adam) on sklearn digits (pixels/16)."
    cnn = "Conv 1->4 3x3, ReLU, MaxPool 2, Linear 36->10, trained with torch (Adam) on sklearn digits (pixels/16)."
    make("qdq_dense_s8", Dense(), (64,), x_train, y_train, x_test, y_test, False, QuantType.QInt8,
         QuantType.QInt8, dense + " QDQ per tensor, int8 activations and weights.", fhe=True)
    make("qdq_dense_s8_pc", Dense(), (64,), x_train, y_train, x_test, y_test, True, QuantType.QInt8,
         QuantType.QInt8, dense + " QDQ per channel, int8 activations and weights.")
    make("qdq_dense_u8", Dense(), (64,), x_train, y_train, x_test, y_test, False, QuantType.QUInt8,
         QuantType.QUInt8, dense + " QDQ per tensor, uint8 activations and weights.")
    make("qdq_cnn_s8_pc", Cnn(), (1, 8, 8), x_train, y_train, x_test, y_test, True, QuantType.QInt8,
         QuantType.QInt8, cnn + " QDQ per channel, int8 activations and weights.")


if __name__ == "__main__":
    main()
