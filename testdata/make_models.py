#!/usr/bin/env python3
"""Train small real models and export them to ONNX for the secc Rust tests.

Usage (from the repository root):
    python testdata/make_models.py

Writes testdata/models/<name>/{model.onnx,calib.csv,test.csv,labels.csv,
expected.csv,meta.json} and testdata/models/broken/*.

Only numpy, scikit-learn, onnx, skl2onnx and onnxruntime are needed (see
testdata/requirements.txt). The neural nets are trained with plain numpy
(hand-written backprop + Adam) and the ONNX graphs are built with onnx.helper,
following the naming conventions of torch.onnx.export (opset 17, IR 8).
All randomness uses fixed seeds.
"""
import json
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from scipy.special import erf
from sklearn.datasets import (load_breast_cancer, load_diabetes, load_digits,
                              make_regression)
from sklearn.ensemble import RandomForestRegressor
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "models")
OPSET = 17
ML_OPSET = 3
IR_VERSION = 8
N_TEST = 100
N_CALIB = 150  # digits; tabular models calibrate on their whole training split
EPOCHS_DENSE = 150
EPOCHS_CNN = 80

SUMMARY = []


# ----------------------------------------------------------------------------
# numpy layers with hand-written backprop and ONNX export
# ----------------------------------------------------------------------------
class Layer:
    params = ()

    def grads(self):
        return ()


class Linear(Layer):
    """torch.nn.Linear layout: weight [out, in], bias [out]."""

    def __init__(self, name, n_in, n_out, rng, style="gemm"):
        self.name, self.style = name, style
        bound = np.sqrt(6.0 / n_in) if n_in else 1.0
        self.W = rng.uniform(-bound, bound, (n_out, n_in)) * 0.7
        self.b = np.zeros(n_out)
        self.params = (self.W, self.b)

    def forward(self, x):
        self.x = x
        return x @ self.W.T + self.b

    def backward(self, g):
        self.dW = g.T @ self.x
        self.db = g.sum(0)
        return g @ self.W

    def grads(self):
        return (self.dW, self.db)

    def export(self, gb, x):
        n = self.name
        if self.style == "gemm":
            gb.init(f"{n}.weight", self.W)
            gb.init(f"{n}.bias", self.b)
            return gb.node("Gemm", [x, f"{n}.weight", f"{n}.bias"], f"/{n}/Gemm",
                           alpha=1.0, beta=1.0, transB=1)
        # MatMul + Add, weight stored transposed ([in, out]) as torch does
        gb.init(f"onnx::MatMul_{n}", self.W.T)
        gb.init(f"{n}.bias", self.b)
        y = gb.node("MatMul", [x, f"onnx::MatMul_{n}"], f"/{n}/MatMul")
        return gb.node("Add", [f"{n}.bias", y], f"/{n}/Add")


class Conv2d(Layer):
    def __init__(self, name, cin, cout, k, rng, stride=1, pad=0):
        self.name, self.k, self.s, self.p = name, k, stride, pad
        fan_in = cin * k * k
        self.W = rng.normal(0, np.sqrt(2.0 / fan_in), (cout, cin, k, k))
        self.b = np.zeros(cout)
        self.params = (self.W, self.b)

    def forward(self, x):
        k, s, p = self.k, self.s, self.p
        xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
        N, C, H, W = xp.shape
        OH, OW = (H - k) // s + 1, (W - k) // s + 1
        patches = np.empty((N, C, k, k, OH, OW))
        for i in range(k):
            for j in range(k):
                patches[:, :, i, j] = xp[:, :, i:i + s * OH:s, j:j + s * OW:s]
        cols = patches.transpose(0, 4, 5, 1, 2, 3).reshape(N * OH * OW, -1)
        self.cache = (xp.shape, cols, OH, OW)
        out = cols @ self.W.reshape(self.W.shape[0], -1).T + self.b
        return out.reshape(N, OH, OW, -1).transpose(0, 3, 1, 2)

    def backward(self, g):
        k, s, p = self.k, self.s, self.p
        xshape, cols, OH, OW = self.cache
        N, C, H, W = xshape
        cout = self.W.shape[0]
        g2 = g.transpose(0, 2, 3, 1).reshape(-1, cout)
        self.dW = (g2.T @ cols).reshape(self.W.shape)
        self.db = g2.sum(0)
        dcols = (g2 @ self.W.reshape(cout, -1)).reshape(N, OH, OW, C, k, k)
        dcols = dcols.transpose(0, 3, 4, 5, 1, 2)
        dxp = np.zeros(xshape)
        for i in range(k):
            for j in range(k):
                dxp[:, :, i:i + s * OH:s, j:j + s * OW:s] += dcols[:, :, i, j]
        return dxp[:, :, p:H - p, p:W - p] if p else dxp

    def grads(self):
        return (self.dW, self.db)

    def export(self, gb, x):
        n = self.name
        gb.init(f"{n}.weight", self.W)
        gb.init(f"{n}.bias", self.b)
        return gb.node("Conv", [x, f"{n}.weight", f"{n}.bias"], f"/{n}/Conv",
                       dilations=[1, 1], group=1, kernel_shape=[self.k, self.k],
                       pads=[self.p] * 4, strides=[self.s, self.s])


class Pool2(Layer):
    """2x2 pooling, stride 2, no padding (floor mode)."""

    def __init__(self, name, kind):
        self.name, self.kind = name, kind

    def forward(self, x):
        N, C, H, W = x.shape
        H2, W2 = H // 2, W // 2
        self.shape = x.shape
        xr = x[:, :, :2 * H2, :2 * W2].reshape(N, C, H2, 2, W2, 2)
        if self.kind == "max":
            out = xr.max(axis=(3, 5))
            self.mask = (xr == out[:, :, :, None, :, None])
        else:
            out = xr.mean(axis=(3, 5))
        return out

    def backward(self, g):
        N, C, H, W = self.shape
        H2, W2 = H // 2, W // 2
        if self.kind == "max":
            gr = self.mask * g[:, :, :, None, :, None]
        else:
            gr = np.broadcast_to(g[:, :, :, None, :, None] / 4.0, (N, C, H2, 2, W2, 2))
        dx = np.zeros(self.shape)
        dx[:, :, :2 * H2, :2 * W2] = gr.reshape(N, C, 2 * H2, 2 * W2)
        return dx

    def export(self, gb, x):
        if self.kind == "max":
            return gb.node("MaxPool", [x], f"/{self.name}/MaxPool", ceil_mode=0,
                           kernel_shape=[2, 2], pads=[0, 0, 0, 0], strides=[2, 2])
        return gb.node("AveragePool", [x], f"/{self.name}/AveragePool", ceil_mode=0,
                       kernel_shape=[2, 2], pads=[0, 0, 0, 0], strides=[2, 2])


class Flatten(Layer):
    name = "flatten"

    def forward(self, x):
        self.shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, g):
        return g.reshape(self.shape)

    def export(self, gb, x):
        return gb.node("Flatten", [x], "/flatten/Flatten", axis=1)


class Act(Layer):
    def __init__(self, name, kind):
        self.name, self.kind = name, kind

    def forward(self, x):
        self.x = x
        if self.kind == "relu":
            self.y = np.maximum(x, 0)
        elif self.kind == "sigmoid":
            self.y = 1 / (1 + np.exp(-x))
        elif self.kind == "tanh":
            self.y = np.tanh(x)
        elif self.kind == "gelu":
            self.y = 0.5 * x * (1 + erf(x / np.sqrt(2)))
        return self.y

    def backward(self, g):
        x, y = self.x, self.y
        if self.kind == "relu":
            return g * (x > 0)
        if self.kind == "sigmoid":
            return g * y * (1 - y)
        if self.kind == "tanh":
            return g * (1 - y * y)
        cdf = 0.5 * (1 + erf(x / np.sqrt(2)))
        pdf = np.exp(-0.5 * x * x) / np.sqrt(2 * np.pi)
        return g * (cdf + x * pdf)

    def export(self, gb, x):
        n = self.name
        if self.kind == "relu":
            return gb.node("Relu", [x], f"/{n}/Relu")
        if self.kind == "sigmoid":
            return gb.node("Sigmoid", [x], f"/{n}/Sigmoid")
        if self.kind == "tanh":
            return gb.node("Tanh", [x], f"/{n}/Tanh")
        # exact GELU as exported by torch at opset 17:
        # Div(x, sqrt2) -> Erf -> Add(1) -> Mul(x, .) -> Mul(0.5)
        c_sqrt2 = gb.init(f"/{n}/Constant_output_0", np.array(np.sqrt(2.0)))
        c_one = gb.init(f"/{n}/Constant_1_output_0", np.array(1.0))
        c_half = gb.init(f"/{n}/Constant_2_output_0", np.array(0.5))
        d = gb.node("Div", [x, c_sqrt2], f"/{n}/Div")
        e = gb.node("Erf", [d], f"/{n}/Erf")
        a = gb.node("Add", [e, c_one], f"/{n}/Add")
        m = gb.node("Mul", [x, a], f"/{n}/Mul")
        return gb.node("Mul", [m, c_half], f"/{n}/Mul_1")


class Net:
    def __init__(self, layers):
        self.layers = layers

    def forward(self, x):
        for l in self.layers:
            x = l.forward(x)
        return x

    def backward(self, g):
        for l in reversed(self.layers):
            g = l.backward(g)

    def params_grads(self):
        for l in self.layers:
            for p, g in zip(l.params, l.grads()):
                yield p, g


def train_classifier(net, X, y, rng, epochs, lr=3e-3, batch=32, wd=1e-4):
    params = [p for l in net.layers for p in l.params]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    b1, b2, eps, t = 0.9, 0.999, 1e-8, 0
    n = len(X)
    for ep in range(epochs):
        lr_ep = lr * 0.5 * (1 + np.cos(np.pi * ep / epochs))  # cosine decay
        perm = rng.permutation(n)
        for s in range(0, n, batch):
            idx = perm[s:s + batch]
            logits = net.forward(X[idx])
            z = logits - logits.max(1, keepdims=True)
            p = np.exp(z)
            p /= p.sum(1, keepdims=True)
            p[np.arange(len(idx)), y[idx]] -= 1
            net.backward(p / len(idx))
            t += 1
            for i, (prm, g) in enumerate(net.params_grads()):
                g = g + wd * prm
                m[i] = b1 * m[i] + (1 - b1) * g
                v[i] = b2 * v[i] + (1 - b2) * g * g
                mh = m[i] / (1 - b1 ** t)
                vh = v[i] / (1 - b2 ** t)
                prm -= lr_ep * mh / (np.sqrt(vh) + eps)
    return net


# ----------------------------------------------------------------------------
# ONNX graph builder
# ----------------------------------------------------------------------------
class GraphBuilder:
    def __init__(self):
        self.nodes, self.inits, self.names = [], [], set()

    def init(self, name, arr):
        assert name not in self.names, name
        self.names.add(name)
        self.inits.append(numpy_helper.from_array(np.asarray(arr, dtype=np.float32), name))
        return name

    def node(self, op, inputs, name, **attrs):
        assert name not in self.names, name
        self.names.add(name)
        out = f"{name}_output_0"
        self.nodes.append(helper.make_node(op, inputs, [out], name=name, **attrs))
        return out

    def build(self, graph_name, in_shape, out_shape, doc=""):
        # rename the last node's output to "output"
        last = self.nodes[-1]
        old = last.output[0]
        last.output[0] = "output"
        for nd in self.nodes:
            for i, v in enumerate(nd.input):
                if v == old:
                    nd.input[i] = "output"
        g = helper.make_graph(
            self.nodes, graph_name,
            [helper.make_tensor_value_info("input", TensorProto.FLOAT, in_shape)],
            [helper.make_tensor_value_info("output", TensorProto.FLOAT, out_shape)],
            initializer=self.inits)
        model = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)],
                                  producer_name="secc-testdata", producer_version="1",
                                  doc_string=doc)
        model.ir_version = IR_VERSION
        return model


def export_net(net, name, in_shape, out_shape, doc):
    gb = GraphBuilder()
    x = "input"
    for l in net.layers:
        x = l.export(gb, x)
    return gb.build(name, in_shape, out_shape, doc)


# ----------------------------------------------------------------------------
# IO helpers
# ----------------------------------------------------------------------------
def write_csv(path, rows, fmt="%.9g"):
    rows = np.asarray(rows).reshape(len(rows), -1)
    with open(path, "w") as f:
        for r in rows:
            f.write(",".join(fmt % v for v in r) + "\n")


def read_csv(path):
    with open(path) as f:
        return np.array([[float(v) for v in line.split(",")] for line in f if line.strip()],
                        dtype=np.float32)


def ort_run(model_path, X, in_shape):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(model_path, so, providers=["CPUExecutionProvider"])
    outs = []
    if in_shape[0] is None or isinstance(in_shape[0], str):
        shape = [len(X)] + list(in_shape[1:])
        outs = sess.run(["output"], {"input": X.reshape(shape)})[0]
        return np.asarray(outs, dtype=np.float32).reshape(len(X), -1)
    for r in X:
        o = sess.run(["output"], {"input": r.reshape(in_shape).astype(np.float32)})[0]
        outs.append(np.asarray(o, dtype=np.float32).reshape(-1))
    return np.stack(outs)


def save_model(name, model, calib, test, labels, task, in_shape, out_shape, desc,
               ref_fn=None, extra=None, ort_model=None):
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    onnx.checker.check_model(model, full_check=True)
    path = os.path.join(d, "model.onnx")
    onnx.save(model, path)
    write_csv(os.path.join(d, "calib.csv"), calib)
    write_csv(os.path.join(d, "test.csv"), test)
    with open(os.path.join(d, "labels.csv"), "w") as f:
        for v in labels:
            f.write(("%d" % v if task != "regression" else "%.9g" % v) + "\n")
    # expected outputs from the values as parsed back from the CSV, float32
    Xt = read_csv(os.path.join(d, "test.csv"))
    Xc = read_csv(os.path.join(d, "calib.csv"))
    ort_run(path, Xc[:5], in_shape)  # smoke-test the calib rows
    out = ort_run(ort_model or path, Xt, in_shape)
    write_csv(os.path.join(d, "expected.csv"), out)
    labels = np.asarray(labels)
    if task == "classification":
        metric, val = "accuracy", float((out.argmax(1) == labels).mean())
    elif task == "binary":
        metric, val = "accuracy", float(((out[:, 0] > 0.5).astype(int) == labels).mean())
    else:
        metric, val = "rmse", float(np.sqrt(((out[:, 0] - labels) ** 2).mean()))
    if ref_fn is not None:  # numpy/sklearn reference must agree with onnxruntime
        ref = np.asarray(ref_fn(Xt.astype(np.float64))).reshape(len(Xt), -1)
        err = float((np.abs(ref - out) / (1 + np.abs(ref))).max())
        assert err < 1e-3, (name, err)
    meta = {"task": task, "float_metric": round(val, 6), "metric": metric,
            "input_shape": [d_ if isinstance(d_, int) else -1 for d_ in in_shape],
            "output_shape": [d_ if isinstance(d_, int) else -1 for d_ in out_shape],
            "description": desc, "n_test": int(len(Xt)), "n_calib": int(len(Xc))}
    if extra:
        meta.update(extra)
    with open(os.path.join(d, "meta.json"), "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")
    ops = sorted({n.op_type for n in model.graph.node})
    SUMMARY.append((name, metric, val, ops, os.path.getsize(path)))
    print(f"{name:14s} {metric}={val:.4f} ops={ops} size={os.path.getsize(path)}", flush=True)
    return path


# ----------------------------------------------------------------------------
# models
# ----------------------------------------------------------------------------
def make_linreg():
    for nf, seed in ((2, 1), (8, 2), (32, 3)):
        X, y = make_regression(n_samples=600, n_features=nf, n_informative=nf,
                               noise=10.0, random_state=seed)
        X = X.astype(np.float32)
        Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=N_TEST, random_state=seed)
        lr = LinearRegression().fit(Xtr, ytr)
        gb = GraphBuilder()
        gb.init("onnx::MatMul_linear", lr.coef_.reshape(nf, 1))
        gb.init("linear.bias", np.array([lr.intercept_]))
        h = gb.node("MatMul", ["input", "onnx::MatMul_linear"], "/linear/MatMul")
        gb.node("Add", ["linear.bias", h], "/linear/Add")
        model = gb.build(f"linreg_{nf}", [1, nf], [1, 1],
                         f"sklearn LinearRegression, make_regression({nf} features)")
        save_model(f"linreg_{nf}", model, Xtr, Xte, yte, "regression",
                   [1, nf], [1, 1],
                   f"Linear regression (sklearn LinearRegression) on make_regression(n_samples=600, "
                   f"n_features={nf}, n_informative={nf}, noise=10, random_state={seed}); "
                   f"MatMul + Add.",
                   ref_fn=lambda X: lr.predict(X))


def make_logreg():
    data = load_breast_cancer()
    Xtr, Xte, ytr, yte = train_test_split(data.data, data.target, test_size=N_TEST,
                                          random_state=0, stratify=data.target)
    sc = StandardScaler().fit(Xtr)
    Xtr = sc.transform(Xtr).astype(np.float32)
    Xte = sc.transform(Xte).astype(np.float32)
    clf = LogisticRegression(C=1.0, max_iter=1000).fit(Xtr, ytr)
    gb = GraphBuilder()
    gb.init("linear.weight", clf.coef_.reshape(1, 30))
    gb.init("linear.bias", clf.intercept_.reshape(1))
    h = gb.node("Gemm", ["input", "linear.weight", "linear.bias"], "/linear/Gemm",
                alpha=1.0, beta=1.0, transB=1)
    gb.node("Sigmoid", [h], "/sigmoid/Sigmoid")
    model = gb.build("logreg", [1, 30], [1, 1], "sklearn LogisticRegression, breast_cancer")
    save_model("logreg", model, Xtr, Xte, yte, "binary", [1, 30], [1, 1],
               "Binary logistic regression (sklearn LogisticRegression, C=1) on breast_cancer "
               "(30 features, standardized with a StandardScaler fit on the training split BEFORE "
               "export; the CSVs hold standardized features). Gemm(transB=1) -> Sigmoid; output "
               "is P(class 1) (1 = benign); predicted class = output > 0.5.",
               ref_fn=lambda X: clf.predict_proba(X)[:, 1])


def digits_split():
    d = load_digits()
    X = (d.data / 16.0).astype(np.float32)
    y = d.target.astype(np.int64)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.2, random_state=42, stratify=y)
    return Xtr, Xte, ytr, yte


def full_acc(net, X, y):
    return float((net.forward(X.astype(np.float64)).argmax(1) == y).mean())


def make_digits_models():
    Xtr, Xte, ytr, yte = digits_split()
    calib, test, labels = Xtr[:N_CALIB], Xte, yte  # the whole 360-row digits test split
    Xtr64 = Xtr.astype(np.float64)

    def dense(name, hidden, act, styles, seed, epochs=EPOCHS_DENSE, lr=3e-3):
        rng = np.random.RandomState(seed)
        sizes = [64] + hidden + [10]
        layers = []
        for i in range(len(sizes) - 1):
            layers.append(Linear(f"fc{i + 1}", sizes[i], sizes[i + 1], rng, styles[i]))
            if i < len(sizes) - 2:
                layers.append(Act(f"act{i + 1}", act))
        net = train_classifier(Net(layers), Xtr64, ytr, rng, epochs, lr=lr)
        model = export_net(net, name, [1, 64], [1, 10], f"digits MLP {sizes} {act}")
        style_desc = ", ".join(f"fc{i + 1}={'Gemm(transB=1)' if s == 'gemm' else 'MatMul+Add'}"
                               for i, s in enumerate(styles))
        save_model(name, model, calib, test, labels, "classification", [1, 64], [1, 10],
                   f"Dense net {'-'.join(map(str, sizes))} with {act.upper()} after each hidden "
                   f"layer, trained (numpy, Adam) on sklearn load_digits (pixels/16, 80/20 "
                   f"stratified split, random_state=42). Output: 10 logits. {style_desc}.",
                   ref_fn=lambda X: net.forward(X),
                   extra={"accuracy_full_test_split": full_acc(net, Xte, yte)})

    def cnn(name, layers, seed, epochs, desc, lr=3e-3):
        rng = np.random.RandomState(seed)
        net = Net(layers(rng))
        net = train_classifier(net, Xtr64.reshape(-1, 1, 8, 8), ytr, rng, epochs, lr=lr)
        model = export_net(net, name, [1, 1, 8, 8], [1, 10], desc)
        save_model(name, model, calib, test, labels, "classification", [1, 1, 8, 8], [1, 10],
                   desc + " Trained (numpy, Adam) on sklearn load_digits (pixels/16, 80/20 "
                   "stratified split, random_state=42). Output: 10 logits.",
                   ref_fn=lambda X: net.forward(X.reshape(-1, 1, 8, 8)),
                   extra={"accuracy_full_test_split":
                          full_acc(net, Xte.reshape(-1, 1, 8, 8), yte)})

    dense("dense_relu", [32, 16], "relu", ["gemm", "gemm", "gemm"], 10)
    dense("dense_sigmoid", [32, 16], "sigmoid", ["matmul", "matmul", "matmul"], 11,
          epochs=EPOCHS_DENSE + 20, lr=1e-2)
    dense("dense_gelu", [32, 16], "gelu", ["gemm", "gemm", "gemm"], 12)

    cnn("cnn", lambda rng: [Conv2d("conv1", 1, 8, 3, rng), Act("act1", "relu"),
                            Pool2("pool1", "max"), Flatten(),
                            Linear("fc1", 72, 10, rng)], 20, EPOCHS_CNN,
        "CNN: Conv(1->8, 3x3, no pad) -> Relu -> MaxPool(2x2, s2) -> Flatten -> Gemm(72->10).")
    cnn("cnn_tiny", lambda rng: [Conv2d("conv1", 1, 8, 3, rng), Act("act1", "relu"),
                                 Conv2d("conv2", 8, 16, 3, rng, stride=2), Act("act2", "relu"),
                                 Conv2d("conv3", 16, 32, 2, rng), Act("act3", "relu"),
                                 Flatten(), Linear("fc1", 32, 10, rng)], 21, EPOCHS_CNN + 10,
        "Concrete-ML TinyCNN: Conv(1->8, 3x3, s1, p0) -> Relu -> Conv(8->16, 3x3, s2, p0) -> "
        "Relu -> Conv(16->32, 2x2, s1, p0) -> Relu -> Flatten -> Gemm(32->10) "
        "(288+64+32 = 384 ReLUs).")
    cnn("unseen_cnn", lambda rng: [Conv2d("conv1", 1, 4, 3, rng, pad=1), Act("act1", "relu"),
                                   Pool2("pool1", "avg"),
                                   Conv2d("conv2", 4, 8, 3, rng, pad=1), Act("act2", "tanh"),
                                   Flatten(), Linear("fc1", 128, 10, rng)], 22, EPOCHS_CNN,
        "Unseen CNN (not special-cased): Conv(1->4, 3x3, pad 1) -> Relu -> AveragePool(2x2, s2) "
        "-> Conv(4->8, 3x3, pad 1) -> Tanh -> Flatten -> Gemm(128->10).")
    dense("unseen_gelu", [24], "gelu", ["matmul", "matmul"], 13)


def export_forest(model, name, n_features, zipmap=False):
    """skl2onnx export with input "input" [N, n_features] and output "output"."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType
    opts = {id(model): {"zipmap": False}} if zipmap is False and hasattr(model, "classes_") else None
    m = convert_sklearn(model, name, initial_types=[("input", FloatTensorType([None, n_features]))],
                        target_opset={"": OPSET, "ai.onnx.ml": ML_OPSET}, options=opts)
    # rename the scores output to "output" (final_types would add a float->float Cast node)
    old = m.graph.output[-1].name
    m.graph.output[-1].name = "output"
    for nd in m.graph.node:
        for i, v in enumerate(nd.output):
            if v == old:
                nd.output[i] = "output"
    for vi in list(m.graph.input) + list(m.graph.output):
        vi.type.tensor_type.shape.dim[0].dim_param = "N"
    m.ir_version = IR_VERSION
    del m.opset_import[:]
    m.opset_import.extend([helper.make_opsetid("", OPSET), helper.make_opsetid("ai.onnx.ml", ML_OPSET)])
    return m


def make_rf():
    d = load_diabetes()
    X = d.data.astype(np.float32)
    Xtr, Xte, ytr, yte = train_test_split(X, d.target, test_size=N_TEST, random_state=0)
    for name, trees, depth in [("rf_regressor", 15, 5), ("rf_20x4", 20, 4), ("rf_10x4", 10, 4)]:
        rf = RandomForestRegressor(n_estimators=trees, max_depth=depth, random_state=0).fit(Xtr, ytr)
        model = export_forest(rf, name, 10)
        save_model(name, model, Xtr, Xte, yte, "regression", [None, 10], [None, 1],
                   f"RandomForestRegressor(n_estimators={trees}, max_depth={depth}, random_state=0) on "
                   "sklearn load_diabetes (10 features, as provided by sklearn, already scaled); exported "
                   "with skl2onnx as ai.onnx.ml TreeEnsembleRegressor (dynamic batch dim).",
                   ref_fn=lambda X, rf=rf: rf.predict(X.astype(np.float32)),
                   extra={"r2_float": round(float(1 - ((rf.predict(Xte) - yte) ** 2).sum()
                                                  / ((yte - yte.mean()) ** 2).sum()), 6)})


def make_gb():
    """A 3-class gradient-boosted classifier on sklearn's wine data (13 features).

    The committed model is skl2onnx's export as is (post_transform SOFTMAX, outputs
    label and probabilities); expected.csv holds onnxruntime's probabilities, which
    secc computes (the softmax on the receiving side).
    """
    from sklearn.datasets import load_wine
    from sklearn.ensemble import GradientBoostingClassifier
    w = load_wine()
    X = w.data.astype(np.float32)
    Xtr, Xte, ytr, yte = train_test_split(X, w.target, test_size=60, random_state=0, stratify=w.target)
    gb = GradientBoostingClassifier(n_estimators=10, max_depth=3, random_state=0).fit(Xtr, ytr)
    model = export_forest(gb, "gb_classifier", 13)
    node = next(n for n in model.graph.node if n.op_type == "TreeEnsembleClassifier")
    assert [a.s for a in node.attribute if a.name == "post_transform"] == [b"SOFTMAX"], node
    save_model("gb_classifier", model, Xtr, Xte, yte, "classification", [None, 13], [None, 3],
               "GradientBoostingClassifier(n_estimators=10, max_depth=3, random_state=0) on sklearn "
               "load_wine (13 raw features, 3 classes); exported with skl2onnx as ai.onnx.ml "
               "TreeEnsembleClassifier (post_transform SOFTMAX, outputs label and probabilities). "
               "expected.csv holds the probabilities.",
               ref_fn=lambda X: gb.predict_proba(X.astype(np.float32)))


def make_broken():
    d = os.path.join(OUT, "broken")
    os.makedirs(d, exist_ok=True)
    rng = np.random.RandomState(99)
    gb = GraphBuilder()
    gb.init("fc.weight", rng.normal(0, 0.1, (10, 64)))
    gb.init("fc.bias", np.zeros(10))
    h = gb.node("Gemm", ["input", "fc.weight", "fc.bias"], "/fc/Gemm",
                alpha=1.0, beta=1.0, transB=1)
    gb.node("Softmax", [h], "/softmax/Softmax", axis=1)
    m = gb.build("unsupported_op", [1, 64], [1, 10], "Gemm -> Softmax (unsupported op)")
    onnx.checker.check_model(m, full_check=True)
    p = os.path.join(d, "unsupported_op.onnx")
    onnx.save(m, p)
    ort_run(p, np.zeros((1, 64), np.float32), [1, 64])

    good = open(os.path.join(OUT, "dense_relu", "model.onnx"), "rb").read()
    bad = good[:300] + bytes(np.random.RandomState(7).randint(0, 256, 700, dtype=np.uint8))
    p = os.path.join(d, "corrupt.onnx")
    with open(p, "wb") as f:
        f.write(bad)
    try:
        onnx.load(p)
        raise SystemExit("corrupt.onnx unexpectedly parsed")
    except SystemExit:
        raise
    except Exception:
        pass

    # Tree ensembles whose attributes contradict each other.
    forest = onnx.load(os.path.join(OUT, "rf_10x4", "model.onnx"))
    for fname, edit in [("tree_bad_child.onnx", "child"), ("tree_missing_values.onnx", "values")]:
        m = onnx.ModelProto()
        m.CopyFrom(forest)
        attrs = m.graph.node[0].attribute
        if edit == "child":
            next(a for a in attrs if a.name == "nodes_truenodeids").ints[0] = 999
        else:
            attrs.remove(next(a for a in attrs if a.name == "nodes_values"))
        onnx.save(m, os.path.join(d, fname))

    r = np.random.RandomState(5)
    write_csv(os.path.join(d, "bad_columns.csv"), r.randint(0, 17, (3, 63)) / 16.0)
    rows = [[("%.9g" % v) for v in r.randint(0, 17, 64) / 16.0] for _ in range(3)]
    rows[1][10] = "abc"
    with open(os.path.join(d, "not_a_number.csv"), "w") as f:
        for row in rows:
            f.write(",".join(row) + "\n")


def main():
    os.makedirs(OUT, exist_ok=True)
    make_linreg()
    make_logreg()
    make_digits_models()
    make_rf()
    make_gb()
    make_broken()
    print("\nsummary:")
    for name, metric, val, ops, size in SUMMARY:
        print(f"  {name:14s} {metric:8s} {val:10.4f}  {size:8d} B  {' '.join(ops)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
