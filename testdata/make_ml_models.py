#!/usr/bin/env python3
"""scikit-learn, XGBoost and LightGBM models exported the way their users export them.

Usage (from the repository root, with the packages of testdata/requirements.txt plus
xgboost, lightgbm and onnxmltools):
    python testdata/make_ml_models.py

Writes testdata/models/{skl,xgb,lgbm}_*/{model.onnx,calib.csv,test.csv,labels.csv,
expected.csv,meta.json}. Every model goes through its exporter with default options:
skl2onnx's `to_onnx(model, X)` (ZipMap and label outputs included), onnxmltools'
`convert_xgboost` / `convert_lightgbm`. expected.csv is onnxruntime's output of the
tensor secc computes: a classifier's probabilities (ZipMap's input, in class order), a
regressor's predictions. Small models (at most 20 trees of depth 4), datasets from
sklearn.datasets, fixed seeds.
"""
import json
import os

import numpy as np
import onnx
import onnxruntime as ort
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris, load_wine, make_regression
from sklearn.model_selection import train_test_split
from modelfiles import read_csv, write_csv

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "models")
N_TEST = 60
N_CALIB = 200
SEED = 0

# The backends each model must pass (tests/ml_models.rs reads meta.json's `backends`):
# kept from the meta.json being replaced (with its `blocked_by`), "float" for a new model.
ALL = None


def ort_outputs(model_path, X):
    """Every output of the model on X; a ZipMap's list of dicts as a [N, classes] array."""
    sess = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    outs = sess.run(None, {name: X})
    result = {}
    for o, v in zip(sess.get_outputs(), outs):
        if isinstance(v, list) and v and isinstance(v[0], dict):
            keys = sorted(v[0])
            v = np.array([[d[k] for k in keys] for d in v], dtype=np.float32)
        result[o.name] = np.asarray(v)
    return result


def scores_output(model):
    """The name of the tensor secc computes by default: a classifier's probabilities
    (the float output, or what a ZipMap reads), otherwise the only output."""
    outs = [o.name for o in model.graph.output]
    if len(outs) == 1:
        return outs[0]
    for o in model.graph.output:
        if o.type.HasField("tensor_type") and o.type.tensor_type.elem_type == onnx.TensorProto.FLOAT:
            return o.name
    return outs[-1]


def save(name, model, Xcalib, Xtest, ytest, task, desc, exporter, backends, n_out):
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, "model.onnx")
    onnx.save(model, path)
    write_csv(os.path.join(d, "calib.csv"), Xcalib[:N_CALIB])
    write_csv(os.path.join(d, "test.csv"), Xtest[:N_TEST])
    with open(os.path.join(d, "labels.csv"), "w") as f:
        for v in np.asarray(ytest[:N_TEST]).reshape(len(ytest[:N_TEST]), -1):
            f.write(",".join(("%d" % x if task == "classification" else "%.9g" % x) for x in v) + "\n")
    Xt = read_csv(os.path.join(d, "test.csv"))
    outs = ort_outputs(path, Xt)
    out = outs[scores_output(model)].astype(np.float32).reshape(len(Xt), -1)
    assert out.shape[1] == n_out, (name, out.shape)
    write_csv(os.path.join(d, "expected.csv"), out)
    y = np.asarray(ytest[:N_TEST])
    if task == "classification":
        metric, val = "accuracy", float((out.argmax(1) == y).mean())
    else:
        metric, val = "rmse", float(np.sqrt(((out - y.reshape(len(y), -1)) ** 2).mean()))
    meta_path = os.path.join(d, "meta.json")
    old = json.load(open(meta_path)) if os.path.exists(meta_path) else {}
    if backends is None:
        backends = old.get("backends", ["float"])
    meta = {
        "task": task,
        "metric": metric,
        "float_metric": round(val, 6),
        "input_shape": [-1, int(Xt.shape[1])],
        "output_shape": [-1, n_out],
        "description": desc,
        "n_test": int(len(Xt)),
        "n_calib": int(min(len(Xcalib), N_CALIB)),
        "exporter": exporter,
        "backends": backends,
        "outputs": [o.name for o in model.graph.output],
        "ops": sorted({(n.domain + "." if n.domain else "") + n.op_type for n in model.graph.node}),
    }
    if "blocked_by" in old:
        meta["blocked_by"] = old["blocked_by"]
    with open(os.path.join(d, "meta.json"), "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")
    print(f"{name:24s} {metric}={val:.4f} ops={meta['ops']} outputs={meta['outputs']} "
          f"size={os.path.getsize(path)}", flush=True)


def split(data, test_size=N_TEST, stratify=True):
    X = data[0].astype(np.float32)
    y = data[1]
    return train_test_split(X, y, test_size=test_size, random_state=SEED, stratify=y if stratify else None)


def skl(model, X):
    from skl2onnx import __version__, to_onnx
    return to_onnx(model, X[:1]), f"skl2onnx {__version__} to_onnx defaults"


def xgb(model, n):
    from onnxmltools import __version__, convert_xgboost
    from onnxmltools.convert.common.data_types import FloatTensorType
    return convert_xgboost(model, initial_types=[("input", FloatTensorType([None, n]))]), \
        f"onnxmltools {__version__} convert_xgboost"


def lgbm(model, n):
    from onnxmltools import __version__, convert_lightgbm
    from onnxmltools.convert.common.data_types import FloatTensorType
    return convert_lightgbm(model, initial_types=[("input", FloatTensorType([None, n]))]), \
        f"onnxmltools {__version__} convert_lightgbm"


def main():
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
    from sklearn.linear_model import Lasso, LinearRegression, LogisticRegression, Ridge
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import Normalizer, StandardScaler
    from sklearn.svm import LinearSVR

    diab = split(load_diabetes(return_X_y=True), stratify=False)
    cancer = split(load_breast_cancer(return_X_y=True))
    wine = split(load_wine(return_X_y=True), test_size=50)
    iris = split(load_iris(return_X_y=True), test_size=45)

    def regressor(name, est, data, desc, backends=ALL):
        Xtr, Xte, ytr, yte = data
        est.fit(Xtr, ytr)
        m, exporter = skl(est, Xtr)
        save(name, m, Xtr, Xte, yte, "regression", desc, exporter, backends, 1 if np.ndim(ytr) == 1 else ytr.shape[1])

    def classifier(name, est, data, desc, backends=ALL, export=None):
        Xtr, Xte, ytr, yte = data
        est.fit(Xtr, ytr)
        m, exporter = export(est, Xtr.shape[1]) if export else skl(est, Xtr)
        save(name, m, Xtr, Xte, yte, "classification", desc, exporter, backends, len(np.unique(ytr)))

    regressor("skl_linreg", LinearRegression(), diab, "LinearRegression on load_diabetes (ai.onnx.ml LinearRegressor)")
    regressor("skl_ridge", Ridge(alpha=0.5), diab, "Ridge(alpha=0.5) on load_diabetes")
    regressor("skl_lasso", Lasso(alpha=0.1, random_state=SEED), diab, "Lasso(alpha=0.1) on load_diabetes")
    regressor("skl_linsvr", LinearSVR(C=100.0, loss="squared_epsilon_insensitive", max_iter=20000, random_state=SEED),
              diab,
              "LinearSVR(C=100, squared epsilon-insensitive loss) on load_diabetes")
    classifier("skl_logreg_bin", make_pipeline(StandardScaler(), LogisticRegression(max_iter=500, random_state=SEED)),
               cancer, "StandardScaler -> LogisticRegression on load_breast_cancer (2 classes)")
    classifier("skl_logreg_multi", LogisticRegression(max_iter=2000, random_state=SEED), iris,
               "LogisticRegression on load_iris (3 classes, raw features)")
    classifier("skl_scaler_logreg", make_pipeline(StandardScaler(), LogisticRegression(max_iter=500, random_state=SEED)),
               wine, "StandardScaler -> LogisticRegression on load_wine (3 classes)")
    classifier("skl_normalizer_logreg", make_pipeline(Normalizer(), LogisticRegression(C=100.0, max_iter=2000,
                                                                                      random_state=SEED)),
               iris, "Normalizer(l2) -> LogisticRegression(C=100) on load_iris")
    classifier("skl_mlp_clf", make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(16,), max_iter=500, random_state=SEED)),
               wine, "StandardScaler -> MLPClassifier(16 ReLU) on load_wine")
    Xtr, Xte, ytr, yte = diab
    regressor("skl_mlp_reg", MLPRegressor(hidden_layer_sizes=(16,), max_iter=2000, learning_rate_init=0.01, random_state=SEED),
              (Xtr * 10, Xte * 10, ytr, yte), "MLPRegressor(16 ReLU) on load_diabetes (features x10)")
    classifier("skl_rf_bin", RandomForestClassifier(n_estimators=10, max_depth=4, random_state=SEED), cancer,
               "RandomForestClassifier(10 trees, depth 4) on load_breast_cancer (one score column)")
    classifier("skl_rf_multi", RandomForestClassifier(n_estimators=10, max_depth=4, random_state=SEED), wine,
               "RandomForestClassifier(10 trees, depth 4) on load_wine (3 classes)")
    X2, y2 = make_regression(n_samples=300, n_features=6, n_targets=2, noise=5.0, random_state=SEED)
    regressor("skl_rf_reg2", RandomForestRegressor(n_estimators=10, max_depth=4, random_state=SEED),
              split((X2, y2), stratify=False), "RandomForestRegressor(10 trees, depth 4) on make_regression, 2 targets")
    classifier("skl_scaler_rf", make_pipeline(StandardScaler(), RandomForestClassifier(n_estimators=10, max_depth=4,
                                                                                       random_state=SEED)),
               wine, "StandardScaler -> RandomForestClassifier(10 trees, depth 4) on load_wine")

    import lightgbm
    import xgboost
    classifier("xgb_clf_bin", xgboost.XGBClassifier(n_estimators=10, max_depth=3, random_state=SEED), cancer,
               "XGBClassifier(10 trees, depth 3) on load_breast_cancer (binary:logistic)", export=xgb)
    classifier("xgb_clf_multi", xgboost.XGBClassifier(n_estimators=8, max_depth=3, random_state=SEED), wine,
               "XGBClassifier(8 rounds, depth 3) on load_wine (multi:softprob)", export=xgb)
    Xtr, Xte, ytr, yte = diab
    est = xgboost.XGBRegressor(n_estimators=20, max_depth=3, random_state=SEED).fit(Xtr, ytr)
    m, exporter = xgb(est, Xtr.shape[1])
    save("xgb_reg", m, Xtr, Xte, yte, "regression", "XGBRegressor(20 trees, depth 3) on load_diabetes", exporter,
         ALL, 1)
    classifier("lgbm_clf", lightgbm.LGBMClassifier(n_estimators=10, max_depth=4, num_leaves=15, random_state=SEED,
                                                   verbose=-1), wine,
               "LGBMClassifier(10 rounds, depth 4) on load_wine (3 classes)", export=lgbm)
    classifier("lgbm_clf_bin", lightgbm.LGBMClassifier(n_estimators=10, max_depth=4, num_leaves=15, random_state=SEED,
                                                       verbose=-1), cancer,
               "LGBMClassifier(10 rounds, depth 4) on load_breast_cancer (binary)", export=lgbm)
    est = lightgbm.LGBMRegressor(n_estimators=20, max_depth=3, num_leaves=7, random_state=SEED, verbose=-1)
    est.fit(Xtr, ytr)
    m, exporter = lgbm(est, Xtr.shape[1])
    save("lgbm_reg", m, Xtr, Xte, yte, "regression", "LGBMRegressor(20 rounds, depth 3) on load_diabetes", exporter,
         ALL, 1)


if __name__ == "__main__":
    main()
