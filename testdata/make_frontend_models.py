"""Models for tests/onnx_frontend.rs: what exporters write that the frontend must read.

    python testdata/make_frontend_models.py

dynamo_dynamic_batch/: a small conv net exported by torch's dynamo exporter (opset 18)
with a dynamic batch axis, flattened with `x.view(x.size(0), -1)`; the exporter writes
the weights to `model.onnx.data` beside the model (external data). x.csv holds 4 samples
(one per row, flattened), expected.csv onnxruntime's outputs for them.

legacy_dynamic_batch/: the same net by the legacy exporter (dynamo=False, opset 13)
with a dynamic batch axis: the flatten becomes Shape → Gather → Unsqueeze → Concat →
Reshape on the symbolic batch dimension.
"""

import os

import numpy as np
import onnxruntime as ort
import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "onnx-frontend")


class ConvNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 2, 3)
        self.fc = torch.nn.Linear(2 * 6 * 6, 3)

    def forward(self, x):
        y = torch.relu(self.conv(x))
        return self.fc(y.view(y.size(0), -1))


def main():
    torch.manual_seed(0)
    model = ConvNet().eval()
    x = np.random.RandomState(0).randn(4, 64).astype(np.float32)
    for name, dynamo in (("dynamo_dynamic_batch", True), ("legacy_dynamic_batch", False)):
        d = os.path.join(OUT, name)
        os.makedirs(d, exist_ok=True)
        path = os.path.join(d, "model.onnx")
        sample = (torch.randn(2, 1, 8, 8),)
        if dynamo:
            torch.onnx.export(model, sample, path, opset_version=18, dynamo=True, input_names=["x"],
                              output_names=["y"], dynamic_shapes={"x": {0: torch.export.Dim("batch")}},
                              external_data=True)
        else:
            torch.onnx.export(model, sample, path, opset_version=13, dynamo=False, input_names=["x"],
                              output_names=["y"], dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}})
        y = ort.InferenceSession(path).run(None, {"x": x.reshape(4, 1, 8, 8)})[0]
        np.savetxt(os.path.join(d, "x.csv"), x, delimiter=",", fmt="%.9g")
        np.savetxt(os.path.join(d, "expected.csv"), y, delimiter=",", fmt="%.9g")


if __name__ == "__main__":
    main()
