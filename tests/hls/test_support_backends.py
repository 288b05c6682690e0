"""The fpga support check knows the backend: accelc's extension layers have Vivado/Vitis C++ only."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
import pytest
from onnx import TensorProto, helper, numpy_helper

from accelc.hls.support import fpga_supports
from accelc.transforms.canonical import InferShapes


def _logsoftmax_model() -> ir.Model:
    graph = helper.make_graph([helper.make_node("LogSoftmax", ["x"], ["y"], name="lsm", axis=-1)], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 10])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])])
    model = ir.from_proto(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]))
    InferShapes()(model)
    return model


@pytest.mark.parametrize("backend", ["vitis", "vivado", "Vitis"])
def test_extension_ops_are_lowered_on_vivado_and_vitis(backend):
    assert fpga_supports(_logsoftmax_model(), backend) == []


@pytest.mark.parametrize("backend", ["quartus", "oneapi", "catapult"])
def test_extension_ops_are_refused_by_name_on_other_backends(backend):
    found = fpga_supports(_logsoftmax_model(), backend)
    assert len(found) == 1
    assert (found[0].op, found[0].node) == ("LogSoftmax", "lsm")
    assert backend in found[0].reason and "vitis" in found[0].hint


def _conv_then_overlapping_pool() -> ir.Model:
    w = numpy_helper.from_array(np.ones((2, 1, 3, 3), np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["c"], name="conv", kernel_shape=[3, 3]),
         helper.make_node("MaxPool", ["c"], ["y"], name="pool", kernel_shape=[3, 3], strides=[1, 1])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 4, 4])], [w])
    model = ir.from_proto(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]))
    InferShapes()(model)
    return model


@pytest.mark.parametrize("io_type", [None, "stream"])
def test_overlapping_maxpool_is_refused_in_io_stream(io_type):
    """hls4ml's streaming pooling asserts (aborting the process) on stride != kernel: refused before lowering."""
    found = fpga_supports(_conv_then_overlapping_pool(), "vitis", io_type)
    assert [(u.op, u.node) for u in found] == [("MaxPool", "pool")]
    assert "io_stream" in found[0].reason and "parallel" in found[0].hint


def test_overlapping_maxpool_is_lowered_in_io_parallel():
    assert fpga_supports(_conv_then_overlapping_pool(), "vitis", "parallel") == []
