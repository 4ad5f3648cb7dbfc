"""CSV helpers shared by the testdata scripts (make_*.py): one sample per row, the
input flattened in C order, as secc reads them."""
import numpy as np


def write_csv(path, rows, fmt="%.9g"):
    rows = np.asarray(rows).reshape(len(rows), -1)
    with open(path, "w") as f:
        for r in rows:
            f.write(",".join(fmt % v for v in r) + "\n")


def read_csv(path):
    with open(path) as f:
        return np.array([[float(v) for v in line.split(",")] for line in f if line.strip()], dtype=np.float32)
