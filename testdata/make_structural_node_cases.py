#!/usr/bin/env python3
"""Single-op cases of the ONNX backend node suite (onnx.backend.test.case.node) for
the structural ops, written for tests/structural.rs.

Usage (from the repository root):
    /path/to/python testdata/make_structural_node_cases.py

Writes testdata/onnx_node_structural/<case>/{model.onnx,io.json}: the suite's model,
with its inputs other than the data (axes, indices, pads, starts, ends, shapes,
repeats, a convolution's weights, a pad value) made initializers, since secc takes
float data inputs and supports these ops with constant indices and weights (the op
and its attributes are the suite's); io.json holds the float inputs
and the expected outputs (shape and C-order data), as the suite computed them.
The conformance suite proper (every case, every op) is another script's.
"""
import json
import os
import shutil

import numpy as np
import onnx
from onnx import numpy_helper
from onnx.backend.test.case.node import collect_testcases

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "onnx_node_structural")
CASES = [
    "test_averagepool_1d_default", "test_averagepool_2d_ceil", "test_averagepool_2d_ceil_last_window_starts_on_pad",
    "test_averagepool_2d_pads", "test_averagepool_2d_pads_count_include_pad", "test_averagepool_2d_precomputed_pads",
    "test_averagepool_2d_same_lower",
    "test_maxpool_1d_default", "test_maxpool_2d_ceil", "test_maxpool_2d_ceil_output_size_reduce_by_one",
    "test_maxpool_2d_pads", "test_maxpool_2d_same_upper",
    "test_globalaveragepool", "test_globalmaxpool_precomputed", "test_globalaveragepool_precomputed",
    "test_basic_conv_with_padding", "test_conv_with_strides_and_asymmetric_padding", "test_conv_with_autopad_same",
    "test_concat_2d_axis_1", "test_concat_3d_axis_negative_2",
    "test_constant_pad", "test_constant_pad_axes",
    "test_transpose_default", "test_transpose_all_permutations_0", "test_transpose_all_permutations_3",
    "test_transpose_all_permutations_5",
    "test_slice", "test_slice_neg", "test_slice_neg_steps", "test_slice_negative_axes", "test_slice_default_steps",
    "test_slice_end_out_of_bounds",
    "test_gather_0", "test_gather_1", "test_gather_2d_indices", "test_gather_negative_indices",
    "test_split_equal_parts_1d_opset13", "test_split_variable_parts_2d_opset18", "test_split_2d_uneven_split_opset18",
    "test_split_equal_parts_default_axis_opset13",
    "test_squeeze_negative_axes", "test_unsqueeze_two_axes", "test_unsqueeze_unsorted_axes", "test_flatten_axis2",
    "test_flatten_negative_axis1", "test_reshape_negative_extended_dims", "test_reshape_zero_and_negative_dim",
    "test_expand_dim_changed", "test_tile_precomputed",
    "test_reduce_mean_keepdims_random", "test_reduce_mean_do_not_keepdims_random",
    "test_reduce_mean_negative_axes_keepdims_random", "test_reduce_mean_default_axes_keepdims_random",
    "test_reduce_sum_keepdims_random", "test_reduce_sum_do_not_keepdims_random",
    "test_reduce_sum_default_axes_keepdims_random", "test_reduce_max_keepdims_random",
    "test_reduce_max_do_not_keepdims_random", "test_reduce_max_negative_axes_keepdims_random",
    "test_reduce_max_default_axes_keepdims_random",
]


def main():
    shutil.rmtree(OUT, ignore_errors=True)
    cases = {c.name: c for c in collect_testcases()}
    for name in CASES:
        case = cases[name]
        model = onnx.ModelProto()
        model.CopyFrom(case.model)
        inputs, outputs = case.data_sets[0]
        g = model.graph
        floats = []
        concat = g.node[0].op_type == "Concat"
        for info, value in zip(list(g.input), inputs):
            value = np.asarray(value)
            # The data input stays an input (Concat's all of them); weights, pads and
            # indices are the model's constants.
            if value.dtype == np.float32 and (not floats or concat):
                floats.append(value)
            else:
                g.initializer.append(numpy_helper.from_array(value, info.name))
                g.input.remove(info)
        onnx.checker.check_model(model)
        d = os.path.join(OUT, name)
        os.makedirs(d)
        onnx.save(model, os.path.join(d, "model.onnx"))
        io = {
            "inputs": [{"shape": list(x.shape), "data": x.reshape(-1).tolist()} for x in floats],
            "outputs": [{"shape": list(np.shape(y)), "data": np.asarray(y, np.float32).reshape(-1).tolist()}
                        for y in outputs],
        }
        with open(os.path.join(d, "io.json"), "w") as f:
            json.dump(io, f)
        print(name, [x.shape for x in floats], [np.shape(y) for y in outputs])


if __name__ == "__main__":
    main()
