#!/usr/bin/env python3
"""Train small real models and export them to ONNX with the exporters users run.

Usage (from the repository root, with the pinned requirements installed):
    python testdata/make_models.py

Writes testdata/models/<name>/{model.onnx,calib.csv,test.csv,labels.csv,
expected.csv,meta.json} and testdata/models/broken/*.

Every model comes from a real exporter with its default options: the neural nets
are trained with torch and written by torch.onnx.export (the legacy TorchScript
exporter, dynamo=False, at opsets 13-18 with and without a dynamic batch axis, and
the dynamo exporter); the scikit-learn models are written by skl2onnx's
convert_sklearn with default options (LinearRegressor, LinearClassifier + ZipMap,
TreeEnsembleRegressor, TreeEnsembleClassifier + ZipMap). Only the deliberately
broken files under broken/ are assembled by hand. expected.csv holds onnxruntime's
output of the tensor secc computes: the logits of the nets, the prediction of the
regressors, and the probabilities of the scikit-learn classifiers (the tensor
before ZipMap). All randomness uses fixed seeds; training runs on one CPU thread.
"""
import os
import sys

# skl2onnx lists a model's opsets in set order: fix Python's hash seed (by running the
# script again with it set) so that two runs write the same bytes.
if os.environ.get("PYTHONHASHSEED") != "0":
    os.environ["PYTHONHASHSEED"] = "0"
    os.execv(sys.executable, [sys.executable] + sys.argv)

# MKL's results may depend on how its buffers are aligned, which may differ between
# runs: its conditional numerical reproducibility mode keeps the trained weights
# repeatable.
os.environ.setdefault("MKL_CBWR", "COMPATIBLE")

import json

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import TensorProto, helper, numpy_helper
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType
from sklearn.datasets import (load_breast_cancer, load_diabetes, load_digits,
                              load_wine, make_regression)
from sklearn.ensemble import GradientBoostingClassifier, RandomForestRegressor
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from torch import nn
from modelfiles import read_csv, write_csv

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "models")
N_TEST = 100
N_CALIB_DIGITS = 150
N_CALIB_MAX = 200
SUMMARY = []

# Backends (float, sim, mpc, fhe) each model passes in tests/exporters.rs (fhe is
# slow: listed for two small models; tests/fhe.rs runs others). A model with none
# must be refused with an error; `blocked_by` says what it waits for, or why a
# backend is missing from the list.
TORCH_NETS = ["torch_mlp_op13", "torch_mlp_op15", "torch_mlp_op17", "torch_mlp_op18",
              "torch_mlp_op13_dyn", "torch_mlp_op18_dyn", "torch_mlp_dynamo",
              "torch_lenet_op13_dyn", "torch_lenet_op17_dyn", "torch_lenet_dynamo"]
BACKENDS = {
    "linreg_2": ["float", "sim", "mpc"],
    "linreg_8": ["float", "sim", "mpc", "fhe"],
    "linreg_32": ["float", "sim", "mpc"],
    "logreg": ["float", "sim", "mpc"],
    "gb_classifier": ["float", "sim", "mpc"],
    "dense_relu": ["float", "sim", "mpc"],
    "dense_sigmoid": ["float", "sim", "mpc"],
    "dense_gelu": ["float", "sim", "mpc"],
    "cnn": ["float", "sim", "mpc"],
    "cnn_tiny": ["float", "sim", "mpc"],
    "unseen_cnn": ["float", "sim", "mpc"],
    "unseen_gelu": ["float", "sim", "mpc"],  # TFHE: tests/cli.rs runs it
    "rf_regressor": ["float", "sim", "mpc"],
    "rf_20x4": ["float", "sim", "mpc"],
    "rf_10x4": ["float", "sim", "mpc", "fhe"],
    **{name: ["float", "sim", "mpc"] for name in TORCH_NETS},
}
BLOCKED_BY = {}


# ----------------------------------------------------------------------------
# files
# ----------------------------------------------------------------------------
def input_shape(model):
    """The model's input dims, a symbolic dim as -1."""
    dims = model.graph.input[0].type.tensor_type.shape.dim
    return [d.dim_value if d.HasField("dim_value") else -1 for d in dims]


def ort_outputs(path, X, output, classes=None):
    """onnxruntime's `output` for each row of X, flattened. A ZipMap output (a list of
    {class: probability}) becomes the probability rows in `classes` order."""
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    shape = input_shape(onnx.load(path))
    name = sess.get_inputs()[0].name
    outs = []
    # A fixed batch of 1 runs row by row; a dynamic batch runs every row at once.
    batches = [X] if shape[0] == -1 else [r[None] for r in X]
    for b in batches:
        y = sess.run([output], {name: b.reshape([len(b)] + shape[1:])})[0]
        if classes is not None and isinstance(y, list):
            y = [[d[c] for c in classes] for d in y]
        outs.append(np.asarray(y, dtype=np.float32).reshape(len(b), -1))
    return np.concatenate(outs)


def save_model(name, model, calib, test, labels, task, desc, exporter, output="output",
               classes=None, ref=None, extra=None):
    """Writes a model's directory; `ref` (the framework's own outputs on `test`) must
    agree with onnxruntime."""
    assert len(test) <= N_TEST and len(calib) <= N_CALIB_MAX, name
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    for f in os.listdir(d):
        os.remove(os.path.join(d, f))
    onnx.checker.check_model(model, full_check=True)
    path = os.path.join(d, "model.onnx")
    onnx.save(model, path)
    write_csv(os.path.join(d, "calib.csv"), calib)
    write_csv(os.path.join(d, "test.csv"), test)
    with open(os.path.join(d, "labels.csv"), "w") as f:
        for v in labels:
            f.write(("%d" % v if task == "classification" else "%.9g" % v) + "\n")
    # Expected outputs from the values as parsed back from the CSV, float32.
    Xt = read_csv(os.path.join(d, "test.csv"))
    Xc = read_csv(os.path.join(d, "calib.csv"))
    ort_outputs(path, Xc[:5], output, classes)
    out = ort_outputs(path, Xt, output, classes)
    write_csv(os.path.join(d, "expected.csv"), out)
    if ref is not None:
        ref = np.asarray(ref, dtype=np.float64).reshape(out.shape)
        err = float((np.abs(ref - out) / (1 + np.abs(ref))).max())
        assert err < 1e-3, (name, err)
    labels = np.asarray(labels)
    meta = {"task": task}
    if task == "classification":
        meta.update(metric="accuracy", float_metric=round(float((out.argmax(1) == labels).mean()), 6))
    else:
        rmse = float(np.sqrt(((out[:, 0] - labels) ** 2).mean()))
        r2 = 1 - float(((out[:, 0] - labels) ** 2).sum() / ((labels - labels.mean()) ** 2).sum())
        meta.update(metric="rmse", float_metric=round(rmse, 6), r2_float=round(r2, 6))
    meta.update({
        "input_shape": input_shape(model),
        "output_shape": [-1 if input_shape(model)[0] == -1 else 1, out.shape[1]],
        "output": output,
        "description": desc,
        "exporter": exporter,
        "n_test": int(len(Xt)),
        "n_calib": int(len(Xc)),
        "backends": BACKENDS.get(name, []),
    })
    if name in BLOCKED_BY:
        meta["blocked_by"] = BLOCKED_BY[name]
    meta.update(extra or {})
    with open(os.path.join(d, "meta.json"), "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")
    ops = sorted({n.op_type for n in model.graph.node})
    SUMMARY.append((name, meta["metric"], meta["float_metric"], ops, os.path.getsize(path)))
    print(f"{name:22s} {meta['metric']}={meta['float_metric']:.4f} ops={ops} "
          f"size={os.path.getsize(path)}", flush=True)


# ----------------------------------------------------------------------------
# torch: training and export
# ----------------------------------------------------------------------------
def digits_split():
    """load_digits, pixels / 16, 80/20 stratified split, random_state=42."""
    d = load_digits()
    X = (d.data / 16.0).astype(np.float32)
    y = d.target.astype(np.int64)
    return train_test_split(X, y, test_size=0.2, random_state=42, stratify=y)


def train(net, X, y, seed, epochs, lr=3e-3, batch=32, wd=1e-4):
    """Adam with cosine learning-rate decay on the cross-entropy of the logits."""
    torch.manual_seed(seed)
    opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=wd)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    X, y = torch.from_numpy(X), torch.from_numpy(y)
    g = torch.Generator().manual_seed(seed)
    net.train()
    for _ in range(epochs):
        perm = torch.randperm(len(X), generator=g)
        for s in range(0, len(X), batch):
            idx = perm[s:s + batch]
            opt.zero_grad()
            nn.functional.cross_entropy(net(X[idx]), y[idx]).backward()
            opt.step()
        sched.step()
    return net.eval()


def torch_logits(net, X):
    with torch.no_grad():
        return net(torch.from_numpy(X)).numpy()


def export_torch(net, sample_shape, opset, dynamo=False, dynamic_batch=False):
    """torch.onnx.export as a user calls it: input "input", output "output"."""
    path = os.path.join(OUT, "_export.onnx")
    args = (torch.zeros([2 if dynamic_batch else 1] + sample_shape),)
    if dynamo:
        shapes = ({0: torch.export.Dim("batch")},) if dynamic_batch else None
        torch.onnx.export(net, args, path, input_names=["input"], output_names=["output"],
                          opset_version=opset, dynamo=True, external_data=False,
                          dynamic_shapes=shapes, verbose=False)
    else:
        axes = {"input": {0: "batch"}, "output": {0: "batch"}} if dynamic_batch else None
        torch.onnx.export(net, args, path, input_names=["input"], output_names=["output"],
                          opset_version=opset, dynamo=False, dynamic_axes=axes)
    model = onnx.load(path)
    os.remove(path)
    label = (f"torch {torch.__version__.split('+')[0]} torch.onnx.export "
             f"dynamo={dynamo} opset {opset}" + (" dynamic batch" if dynamic_batch else ""))
    return model, label


def make_digits_models():
    Xtr, Xte, ytr, yte = digits_split()
    calib, test, labels = Xtr[:N_CALIB_DIGITS], Xte[:N_TEST], yte[:N_TEST]
    split = ("sklearn load_digits (pixels/16, 80/20 stratified split, random_state=42; "
             "test.csv = the first 100 rows of the 360-row test split)")

    def save(name, net, image, opset=17, dynamo=False, dynamic_batch=False, what=""):
        shape = [1, 8, 8] if image else [64]
        model, exporter = export_torch(net, shape, opset, dynamo, dynamic_batch)
        full = float((torch_logits(net, Xte.reshape([-1] + shape)).argmax(1) == yte).mean())
        save_model(name, model, calib, test, labels, "classification",
                   f"{what} Trained with torch (Adam, cosine decay) on {split}. Output: 10 logits.",
                   exporter, ref=torch_logits(net, test.reshape([-1] + shape)),
                   extra={"accuracy_full_test_split": round(full, 6)})

    def mlp(hidden, act, seed, epochs=100, lr=3e-3):
        torch.manual_seed(seed)  # the layers' initial weights
        sizes = [64] + hidden + [10]
        layers = []
        for i in range(len(sizes) - 1):
            layers.append(nn.Linear(sizes[i], sizes[i + 1]))
            if i < len(sizes) - 2:
                layers.append(act())
        return train(nn.Sequential(*layers), Xtr, ytr, seed, epochs, lr)

    def conv(layers, seed, epochs=40, lr=3e-3):
        torch.manual_seed(seed)  # the layers' initial weights
        return train(nn.Sequential(*layers()), Xtr.reshape(-1, 1, 8, 8), ytr, seed, epochs, lr)

    # Train every net first, then export and run them.
    dense_relu = mlp([32, 16], nn.ReLU, 10)
    dense_sigmoid = mlp([32, 16], nn.Sigmoid, 11, lr=1e-2)
    dense_gelu = mlp([32, 16], nn.GELU, 12)
    unseen_gelu = mlp([24], nn.GELU, 13)
    cnn = conv(lambda: [nn.Conv2d(1, 8, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                        nn.Linear(72, 10)], 20)
    cnn_tiny = conv(lambda: [nn.Conv2d(1, 8, 3), nn.ReLU(), nn.Conv2d(8, 16, 3, stride=2),
                             nn.ReLU(), nn.Conv2d(16, 32, 2), nn.ReLU(), nn.Flatten(),
                             nn.Linear(32, 10)], 21, epochs=50)
    unseen_cnn = conv(lambda: [nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2),
                               nn.Conv2d(4, 8, 3, padding=1), nn.Tanh(), nn.Flatten(),
                               nn.Linear(128, 10)], 22)
    # One torch MLP and one LeNet, exported every way a user would.
    torch_mlp = mlp([48, 24], nn.ReLU, 30)
    lenet = conv(lambda: [nn.Conv2d(1, 6, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(6, 12, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(48, 32), nn.ReLU(), nn.Linear(32, 10)], 31)

    save("dense_relu", dense_relu, False,
         what="MLP 64-32-16-10, ReLU after each hidden layer (nn.Sequential of nn.Linear).")
    save("dense_sigmoid", dense_sigmoid, False, opset=13,
         what="MLP 64-32-16-10, Sigmoid after each hidden layer.")
    save("dense_gelu", dense_gelu, False,
         what="MLP 64-32-16-10, exact (erf) GELU after each hidden layer.")
    save("unseen_gelu", unseen_gelu, False, opset=18, dynamo=True,
         what="MLP 64-24-10, exact (erf) GELU; not special-cased anywhere.")
    save("cnn", cnn, True,
         what="CNN: Conv(1->8, 3x3, no pad) -> ReLU -> MaxPool(2x2, s2) -> Flatten -> Linear(72->10).")
    save("cnn_tiny", cnn_tiny, True,
         what="Concrete-ML TinyCNN: Conv(1->8, 3x3) -> ReLU -> Conv(8->16, 3x3, s2) -> ReLU -> "
              "Conv(16->32, 2x2) -> ReLU -> Flatten -> Linear(32->10) (288+64+32 = 384 ReLUs).")
    save("unseen_cnn", unseen_cnn, True, opset=15, dynamic_batch=True,
         what="Unseen CNN (not special-cased): Conv(1->4, 3x3, pad 1) -> ReLU -> AvgPool(2x2, s2) "
              "-> Conv(4->8, 3x3, pad 1) -> Tanh -> Flatten -> Linear(128->10).")
    what = "torch MLP 64-48-24-10 with ReLU (nn.Sequential)."
    for opset in (13, 15, 17, 18):
        save(f"torch_mlp_op{opset}", torch_mlp, False, opset=opset, what=what)
    for opset in (13, 18):
        save(f"torch_mlp_op{opset}_dyn", torch_mlp, False, opset=opset, dynamic_batch=True,
             what=what)
    save("torch_mlp_dynamo", torch_mlp, False, opset=18, dynamo=True, what=what)
    save("torch_mlp_dynamo_dyn", torch_mlp, False, opset=18, dynamo=True, dynamic_batch=True,
         what=what)
    what = ("LeNet-style CNN: Conv(1->6, 3x3, pad 1) -> ReLU -> MaxPool(2) -> Conv(6->12, 3x3, "
            "pad 1) -> ReLU -> MaxPool(2) -> Flatten -> Linear(48->32) -> ReLU -> Linear(32->10).")
    for opset in (13, 17):
        save(f"torch_lenet_op{opset}_dyn", lenet, True, opset=opset, dynamic_batch=True, what=what)
    save("torch_lenet_dynamo", lenet, True, opset=18, dynamo=True, what=what)


# ----------------------------------------------------------------------------
# scikit-learn through skl2onnx, default options
# ----------------------------------------------------------------------------
def skl2onnx_export(model, name, n_features):
    """convert_sklearn with default options, as the skl2onnx tutorial calls it (named,
    or skl2onnx names the graph with a random uuid)."""
    import skl2onnx
    onx = convert_sklearn(model, name, initial_types=[("input", FloatTensorType([None, n_features]))])
    return onx, f"skl2onnx {skl2onnx.__version__} convert_sklearn defaults"


def make_linreg():
    for nf, seed in ((2, 1), (8, 2), (32, 3)):
        X, y = make_regression(n_samples=600, n_features=nf, n_informative=nf,
                               noise=10.0, random_state=seed)
        X = X.astype(np.float32)
        Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=N_TEST, random_state=seed)
        lr = LinearRegression().fit(Xtr, ytr)
        model, exporter = skl2onnx_export(lr, f"linreg_{nf}", nf)
        save_model(f"linreg_{nf}", model, Xtr[:N_CALIB_MAX], Xte, yte, "regression",
                   f"sklearn LinearRegression on make_regression(n_samples=600, n_features={nf}, "
                   f"n_informative={nf}, noise=10, random_state={seed}); ai.onnx.ml "
                   "LinearRegressor, output `variable`.",
                   exporter, output="variable", ref=lr.predict(Xte))


def make_logreg():
    data = load_breast_cancer()
    Xtr, Xte, ytr, yte = train_test_split(data.data, data.target, test_size=N_TEST,
                                          random_state=0, stratify=data.target)
    sc = StandardScaler().fit(Xtr)
    Xtr = sc.transform(Xtr).astype(np.float32)
    Xte = sc.transform(Xte).astype(np.float32)
    clf = LogisticRegression(C=1.0, max_iter=1000).fit(Xtr, ytr)
    model, exporter = skl2onnx_export(clf, "logreg", 30)
    save_model("logreg", model, Xtr[:N_CALIB_MAX], Xte, yte, "classification",
               "Binary sklearn LogisticRegression(C=1) on breast_cancer (30 features, standardized "
               "with a StandardScaler fit on the training split before training; the CSVs hold "
               "standardized features). ai.onnx.ml LinearClassifier (post_transform LOGISTIC) -> "
               "outputs `output_label` and `output_probability` (ZipMap); expected.csv holds the "
               "probabilities [P(0), P(1)] (1 = benign).",
               exporter, output="output_probability", classes=list(clf.classes_),
               ref=clf.predict_proba(Xte))


def make_rf():
    d = load_diabetes()
    X = d.data.astype(np.float32)
    Xtr, Xte, ytr, yte = train_test_split(X, d.target, test_size=N_TEST, random_state=0)
    for name, trees, depth in [("rf_regressor", 15, 5), ("rf_20x4", 20, 4), ("rf_10x4", 10, 4)]:
        rf = RandomForestRegressor(n_estimators=trees, max_depth=depth, random_state=0).fit(Xtr, ytr)
        model, exporter = skl2onnx_export(rf, name, 10)
        save_model(name, model, Xtr[:N_CALIB_MAX], Xte, yte, "regression",
                   f"RandomForestRegressor(n_estimators={trees}, max_depth={depth}, random_state=0) "
                   "on sklearn load_diabetes (10 features, as provided by sklearn, already scaled); "
                   "ai.onnx.ml TreeEnsembleRegressor, output `variable`.",
                   exporter, output="variable", ref=rf.predict(Xte))


def make_gb():
    w = load_wine()
    X = w.data.astype(np.float32)
    Xtr, Xte, ytr, yte = train_test_split(X, w.target, test_size=60, random_state=0,
                                          stratify=w.target)
    gb = GradientBoostingClassifier(n_estimators=10, max_depth=3, random_state=0).fit(Xtr, ytr)
    model, exporter = skl2onnx_export(gb, "gb_classifier", 13)
    save_model("gb_classifier", model, Xtr, Xte, yte, "classification",
               "GradientBoostingClassifier(n_estimators=10, max_depth=3, random_state=0) on sklearn "
               "load_wine (13 raw features, 3 classes); ai.onnx.ml TreeEnsembleClassifier "
               "(post_transform SOFTMAX) -> outputs `output_label` and `output_probability` "
               "(ZipMap); expected.csv holds the probabilities.",
               exporter, output="output_probability", classes=list(gb.classes_),
               ref=gb.predict_proba(Xte))


# ----------------------------------------------------------------------------
# deliberately broken inputs (hand-built on purpose)
# ----------------------------------------------------------------------------
def make_broken():
    d = os.path.join(OUT, "broken")
    os.makedirs(d, exist_ok=True)
    # A valid model with an op secc does not import: Gemm -> Softmax.
    rng = np.random.RandomState(99)
    weight = numpy_helper.from_array(rng.normal(0, 0.1, (10, 64)).astype(np.float32), "fc.weight")
    bias = numpy_helper.from_array(np.zeros(10, np.float32), "fc.bias")
    nodes = [helper.make_node("Gemm", ["input", "fc.weight", "fc.bias"], ["/fc/Gemm_output_0"],
                              name="/fc/Gemm", alpha=1.0, beta=1.0, transB=1),
             helper.make_node("Softmax", ["/fc/Gemm_output_0"], ["output"],
                              name="/softmax/Softmax", axis=1)]
    g = helper.make_graph(nodes, "unsupported_op",
                          [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 64])],
                          [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 10])],
                          initializer=[weight, bias])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)],
                          producer_name="secc-testdata", producer_version="1",
                          doc_string="Gemm -> Softmax (unsupported op)")
    m.ir_version = 8
    onnx.checker.check_model(m, full_check=True)
    p = os.path.join(d, "unsupported_op.onnx")
    onnx.save(m, p)
    ort_outputs(p, np.zeros((1, 64), np.float32), "output")

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
    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)
    make_digits_models()
    make_linreg()
    make_logreg()
    make_rf()
    make_gb()
    make_broken()
    print("\nsummary:")
    for name, metric, val, ops, size in SUMMARY:
        print(f"  {name:22s} {metric:8s} {val:10.4f}  {size:8d} B  {' '.join(ops)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
