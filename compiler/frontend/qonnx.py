"""QONNX models (``Quant`` nodes in domain ``qonnx.custom_op.general``, what Brevitas exports) at load time.

ONNX Runtime, which runs accelc's float reference and the cpu/cuda targets, cannot execute QONNX ``Quant``
nodes, so accelc.frontend converts such a model to the equivalent QuantizeLinear -> (Clip ->) DequantizeLinear
graph on import (``qonnx_to_qcdq``). Nothing here is fpga-specific; the fpga target (accelc.hls.quantized_import)
turns the QDQ graph back into the same Quant nodes, and uses the names defined here (``QONNX_DOMAIN``,
``QUANT_OPS``, ``QDQ_OPS``, ``is_quant``, ``_constants_to_initializers``). This module must not import accelc.hls.
"""

from __future__ import annotations

import warnings

import numpy as np
import onnx
from onnx import numpy_helper

from accelc.errors import AccelcError
from accelc.frontend.common import failing_as

QONNX_DOMAIN = "qonnx.custom_op.general"
QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")
QUANT_OPS = ("Quant", "IntQuant")  # hls4ml parses both names of QONNX's integer quantizer


def is_quant(node: onnx.NodeProto) -> bool:
    return node.op_type in QUANT_OPS and node.domain == QONNX_DOMAIN


def qonnx_to_qcdq(model: onnx.ModelProto) -> onnx.ModelProto:
    """A QONNX model (Quant nodes, e.g. from Brevitas) as the equivalent QuantizeLinear -> (Clip ->)
    DequantizeLinear graph, which ONNX Runtime runs (the float reference and the cpu target need that) and
    which accelc.hls.prepare turns back into the same Quant nodes, bit widths included (the Clip bounds carry
    them). QONNX's QuantToQCDQ converts Quant nodes with constant parameters, zero offset, ROUND rounding and
    2 to 8 bits; any other Quant is refused here, naming it."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.qonnx_to_qcdq import QuantToQCDQ

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        converted = ModelWrapper(model).transform(QuantToQCDQ()).model
    left = [n for n in converted.graph.node if is_quant(n) or n.op_type == "BipolarQuant"]
    if left:
        raise AccelcError(f"{left[0].op_type} node '{left[0].name}' has no QuantizeLinear/DequantizeLinear "
                          "equivalent (QuantToQCDQ needs constant parameters, zero offset, ROUND and 2 to 8 bits)")
    _constants_to_initializers(converted.graph)
    return converted


def _feeds_quantization_only(graph: onnx.GraphProto, tensor: str) -> bool:
    users = [n for n in graph.node if tensor in n.input]
    return bool(users) and all(n.op_type in QDQ_OPS + ("Clip",) or is_quant(n) for n in users)


def _constants_to_initializers(graph: onnx.GraphProto) -> None:
    """Constant nodes holding scales, zero points and Clip bounds (QONNX's QuantToQCDQ, torch exporters write
    them) become initializers: QCDQToQuant reads those parameters from initializers only."""
    for node in list(graph.node):
        if node.op_type != "Constant" or node.domain not in ("", "ai.onnx") or len(node.attribute) != 1:
            continue
        if not _feeds_quantization_only(graph, node.output[0]):
            continue
        attr = node.attribute[0]
        if attr.name == "value":
            tensor = onnx.TensorProto()
            tensor.CopyFrom(attr.t)
        elif attr.name in ("value_float", "value_int", "value_floats", "value_ints"):
            value = onnx.helper.get_attribute_value(attr)
            tensor = numpy_helper.from_array(np.asarray(value, np.float32 if "float" in attr.name else np.int64))
        else:
            continue
        tensor.name = node.output[0]
        graph.initializer.append(tensor)
        graph.node.remove(node)


def is_qonnx(proto: onnx.ModelProto) -> bool:
    return any(n.op_type in ("Quant", "IntQuant", "BipolarQuant") and n.domain.startswith("qonnx")
               for n in proto.graph.node)


def from_qonnx(proto: onnx.ModelProto, name: str) -> tuple[onnx.ModelProto, str]:
    """QONNX Quant nodes (Brevitas' export) as the equivalent QuantizeLinear -> Clip -> DequantizeLinear graph:
    ONNX Runtime runs it (the reference, cpu/cuda), and the fpga target turns it back into the same Quant
    nodes and bit widths."""
    with failing_as(f"{name}: QONNX model with no ONNX equivalent"):
        return qonnx_to_qcdq(proto), "qonnx"
