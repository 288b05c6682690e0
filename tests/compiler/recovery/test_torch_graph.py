"""ONNX graph -> torch module: exact to ONNX Runtime (1e-5) on float, channel-pruned and int8 QDQ graphs,
and an unchanged module writes back the very initializers it was built from."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import helper, numpy_helper

import accelc
from accelc.errors import UnsupportedOpError
from accelc.recovery.torch_graph import GraphModule, max_abs_error

ROOT = Path(__file__).resolve().parents[3]
DIGITS_PT = ROOT / "examples" / "digits" / "digits_cnn.pt"
X = np.load(ROOT / "examples" / "digits" / "digits_test_x.npy")[:128]


@pytest.fixture(scope="module", params=[[], ["prune:mode=channel,ratio=0.5"], ["quantize:int8"]],
                ids=["float", "channel-pruned", "int8"])
def graph(request, tmp_path_factory) -> onnx.ModelProto:
    out = tmp_path_factory.mktemp("graph") / "art"
    art = accelc.compile(DIGITS_PT, target="cpu", input_shape=(1, 1, 8, 8), passes=request.param, out=out,
                         calibration="digits")
    return onnx.load(str(art.path / "model.onnx"))


def test_conversion_is_exact(graph):
    module = GraphModule(graph)
    err, scale = max_abs_error(module, X)
    assert scale > 1.0 and err <= 1e-5 * scale, (err, scale)
    assert module.weights, "Conv/Gemm weights must be trainable"


def test_write_back_of_an_untrained_module_is_identical(graph):
    module = GraphModule(graph)
    back = {i.name: numpy_helper.to_array(i) for i in module.to_onnx().graph.initializer}
    for init in graph.graph.initializer:
        a = numpy_helper.to_array(init)
        assert back[init.name].dtype == a.dtype and np.array_equal(back[init.name], a), init.name


def test_int8_weights_train_as_float_masters_within_their_range(graph):
    module = GraphModule(graph)
    if not module.quant:
        pytest.skip("float graph")
    w = next(n for n in module.weights if n in module.quant)
    info = module.quant[w]
    assert (info.qmin, info.qmax) == (-64, 64)  # onnxruntime's reduce_range weights stay 7-bit
    with torch.no_grad():
        module.param(w).mul_(3.0)  # push weights out of range: the stored integers saturate
    stored = module.stored(w)
    assert stored.dtype == np.int8 and stored.min() >= -64 and stored.max() <= 64


def test_unsupported_op_names_op_node_and_target():
    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 4])
    model = helper.make_model(helper.make_graph([helper.make_node("Erf", ["x"], ["y"], name="my_erf")], "g", [x], [y]))
    with pytest.raises(UnsupportedOpError, match=r"Erf node 'my_erf' on finetune"):
        GraphModule(model)
