"""The onnx (protobuf) side: the rewrite accelc.hls.prepare applies (QDQ -> QONNX Quant, and the exact
rewrites hls4ml 1.3 needs). See accelc.hls.quantized_import."""

from __future__ import annotations

import warnings

import numpy as np
import onnx
from onnx import numpy_helper

from accelc.errors import AccelcError
from accelc.frontend.qonnx import QDQ_OPS, QONNX_DOMAIN, _constants_to_initializers, is_quant
from accelc.hls.quantized_import._common import _has_offset, _inits, _value_preserving


def has_quantization(graph: onnx.GraphProto) -> bool:
    return any(n.op_type in QDQ_OPS or is_quantizer(n) for n in graph.node)


def is_quantizer(node: onnx.NodeProto) -> bool:
    """A QONNX Quant or BipolarQuant (hls4ml lowers both)."""
    return is_quant(node) or (node.op_type == "BipolarQuant" and node.domain == QONNX_DOMAIN)


def qdq_to_quant(model: onnx.ModelProto) -> onnx.ModelProto:
    """QuantizeLinear -> (Clip ->) DequantizeLinear chains, and DequantizeLinear on integer constants, into
    QONNX Quant nodes. Each Quant is named after the DequantizeLinear it replaces (whose output it keeps), so
    the node-name map of accelc.hls.prepare still traces it to the canonical node; zero points become float
    (hls4ml computes ``-zeropt * scale`` in the initializer's dtype, which wraps for uint8)."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.infer_shapes import InferShapes
    from qonnx.transformation.qcdq_to_qonnx import QCDQToQuant

    _constants_to_initializers(model.graph)
    dq_names = {n.output[0]: n.name for n in model.graph.node if n.op_type == "DequantizeLinear"}
    w = ModelWrapper(model)
    if dq_names:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            w = w.transform(InferShapes()).transform(QCDQToQuant())
    graph = w.model.graph
    left = [n for n in graph.node if n.op_type in QDQ_OPS]
    if left:  # accelc.hls.support refuses these before lowering; this is the second line of defence
        raise AccelcError(f"{left[0].op_type} node '{left[0].name}' could not be fused into a QONNX Quant node "
                          "for hls4ml")
    inits = {i.name: i for i in graph.initializer}
    for node in graph.node:
        if not is_quant(node):
            continue
        if node.output[0] in dq_names:
            node.name = dq_names[node.output[0]]
        for t in node.input[1:]:  # scale, zero point, bit width: float32 (QONNX's own convention)
            if t in inits and inits[t].data_type != onnx.TensorProto.FLOAT:
                a = numpy_helper.to_array(inits[t]).astype(np.float32)
                inits[t].CopyFrom(numpy_helper.from_array(a, t))
    del graph.value_info[:]  # stale integer types; re-inferred by the caller
    return w.model


def quantized_constant(graph: onnx.GraphProto, tensor: str) -> tuple[onnx.NodeProto, onnx.TensorProto] | None:
    """(Quant/BipolarQuant node, its constant input) when `tensor` is one of an initializer used by nothing else."""
    inits = {i.name: i for i in graph.initializer}
    producer = next((n for n in graph.node if tensor in n.output), None)
    if producer is None or not is_quantizer(producer) or producer.input[0] not in inits:
        return None
    users = [n for n in graph.node if producer.input[0] in n.input or tensor in n.input]
    if len(users) != 2:
        return None
    return producer, inits[producer.input[0]]


def transpose_quantized_weight(graph: onnx.GraphProto, quant: onnx.NodeProto, init: onnx.TensorProto,
                               new_name: str) -> None:
    """Quant(W) -> Quant(W.T) in place, for Gemm(transB=1) -> MatMul; per-row scales become per-column."""
    inits = {i.name: i for i in graph.initializer}
    graph.initializer.append(numpy_helper.from_array(np.ascontiguousarray(numpy_helper.to_array(init).T), new_name))
    quant.input[0] = new_name
    for k in range(1, min(len(quant.input), 3)):  # BipolarQuant has a scale only
        t = inits.get(quant.input[k])
        if t is not None and len(t.dims) == 2:
            name = f"{new_name}_{'scale' if k == 1 else 'zeropt'}"
            graph.initializer.append(numpy_helper.from_array(np.ascontiguousarray(numpy_helper.to_array(t).T), name))
            quant.input[k] = name


def scaled_products(graph: onnx.GraphProto) -> list[str]:
    """MatMul/Conv nodes with Quant weights: hls4ml computes them on the integer grid and rescales after, so
    their hls4ml outputs are not the ONNX node's values (the per-layer trace must not compare them)."""
    quant_outputs = {n.output[0] for n in graph.node if is_quantizer(n)}
    return [n.name for n in graph.node if n.op_type in ("MatMul", "Conv") and len(n.input) > 1
            and n.input[1] in quant_outputs]


def drop_requantization(graph: onnx.GraphProto) -> list[str]:
    """Remove each Quant that re-quantizes, with the same scale, zero point and integer type, values a
    Flatten/Reshape/Transpose/MaxPool took from an identical Quant: an exact identity. ONNX Runtime's QDQ
    quantizer writes such pairs after every MaxPool and Flatten; hls4ml would lower each as a
    scale/round/rescale, and in io_stream it mis-streams an ApplyAlpha after a Flatten (wrong numbers).
    Returns the names of the Quant nodes removed."""
    inits = _inits(graph)
    producers = {t: n for n in graph.node for t in n.output}

    def signature(q: onnx.NodeProto) -> tuple | None:
        if not all(t in inits for t in q.input[1:4]):
            return None
        params = tuple(numpy_helper.to_array(inits[t]).tobytes() + bytes(inits[t].dims) for t in q.input[1:4])
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in q.attribute}
        return params + (attrs.get("signed", 1), attrs.get("narrow", 0), attrs.get("rounding_mode", b"ROUND"))

    graph_outputs = {o.name for o in graph.output}
    removed = []
    for node in list(graph.node):
        if not is_quant(node) or node.input[0] in inits or node.output[0] in graph_outputs:
            continue
        between = producers.get(node.input[0])
        if between is None or not _value_preserving(between):
            continue
        source = producers.get(between.input[0])
        if source is None or not is_quant(source) or source.input[0] in inits:
            continue
        if signature(source) is None or signature(source) != signature(node):
            continue
        for user in graph.node:
            user.input[:] = [node.input[0] if t == node.output[0] else t for t in user.input]
        graph.node.remove(node)
        removed.append(node.name)
    return removed


def fold_quantized_constants(graph: onnx.GraphProto) -> list[str]:
    """Quant(constant) -> the float constant it computes (exactly the value ONNX Runtime uses), where hls4ml
    cannot lower the Quant; returns the names of the Quant nodes folded.

    - biases (the Add after a MatMul, a Conv's third input): hls4ml turns a quantized bias into a Constant
      feeding an ApplyAlpha that no pass consumes (its rescale never equals the product's) and fails;
    - the weights of a Conv whose input is quantized with a zero offset: hls4ml moves a weight rescale below
      a Conv only when the input's rescale has no offset as well, and otherwise fails. With float weights
      the Conv computes on the dequantized input (types from quantized_layer_precisions).
    A folded bias is added in a type accelc.hls.project sets from its values (quantized_layer_precisions)."""
    from qonnx.custom_op.general.quant import quant

    inits = {i.name: i for i in graph.initializer}
    producers = {t: n for n in graph.node for t in n.output}
    fold = set()
    for node in graph.node:
        if node.op_type == "Conv" and len(node.input) > 2:
            fold.add(node.input[2])
        if node.op_type == "Conv" and _has_offset(producers.get(node.input[0]), inits):
            fold.add(node.input[1])
        elif node.op_type == "Add":
            a, b = node.input[0], node.input[1]
            for x, y in ((a, b), (b, a)):
                if x in producers and producers[x].op_type == "MatMul":
                    fold.add(y)
    folded = []
    for node in list(graph.node):
        if not is_quant(node) or node.output[0] not in fold or not all(t in inits for t in node.input[:4]):
            continue
        users = [n for n in graph.node if node.output[0] in n.input]
        if len(users) != 1:
            continue
        x, scale, zeropt, bits = (numpy_helper.to_array(inits[t]) for t in node.input[:4])
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        rounding = attrs.get("rounding_mode", b"ROUND")
        rounding = rounding.decode() if isinstance(rounding, bytes) else rounding
        value = quant(x.astype(np.float32), scale, zeropt, bits, attrs.get("signed", 1), attrs.get("narrow", 0),
                      rounding)
        graph.initializer.append(numpy_helper.from_array(np.asarray(value, dtype=np.float32), node.output[0]))
        graph.node.remove(node)
        folded.append(node.name)
    return folded


def bipolar_weights_to_quant(graph: onnx.GraphProto) -> list[str]:
    """BipolarQuant(W, s) on a constant -> Quant(W', s, 0, 2 bits, signed, narrow) with W' = where(W >= 0, 1, -1) * s
    (the values BipolarQuant computes; the Quant leaves them as they are): hls4ml lowers a BipolarQuant weight as
    a 1-bit xnor type, and its Dense with xnor weights and xnor inputs (the both_binary product) computes the same
    value for every output unit (measured on Brevitas' TFC: -24 on each of 64 units, whatever the input) — wrong
    numbers. A 2-bit weight keeps the product exact (hls4ml's data_binary product for xnor inputs, weight_ternary
    otherwise). Returns the names of the nodes rewritten."""
    inits = {i.name: i for i in graph.initializer}
    done = []
    for node in graph.node:
        if node.op_type != "BipolarQuant" or node.domain != QONNX_DOMAIN or node.input[0] not in inits \
                or node.input[1] not in inits:
            continue
        w = numpy_helper.to_array(inits[node.input[0]]).astype(np.float32)
        s = numpy_helper.to_array(inits[node.input[1]]).astype(np.float32)
        values = np.where(w >= 0, np.float32(1), np.float32(-1)) * s
        base = f"{node.name}_bipolar"
        graph.initializer.extend([
            numpy_helper.from_array(values.astype(np.float32), f"{base}_values"),
            numpy_helper.from_array(np.zeros((), np.float32), f"{base}_zeropt"),
            numpy_helper.from_array(np.array(2.0, np.float32), f"{base}_bits")])
        node.op_type = "Quant"
        node.input[:] = [f"{base}_values", node.input[1], f"{base}_zeropt", f"{base}_bits"]
        del node.attribute[:]
        node.attribute.extend([onnx.helper.make_attribute("signed", 1), onnx.helper.make_attribute("narrow", 1),
                               onnx.helper.make_attribute("rounding_mode", "ROUND")])
        done.append(node.name)
    return done


def trunc_to_quant(graph: onnx.GraphProto) -> list[str]:
    """qonnx's Trunc v2 (x, scale, zeropt, in_bits, out_scale, out_bits) as the Quant (x, out_scale, zeropt / T,
    out_bits) with the same signedness, narrow range and rounding, T = out_scale / scale a power of two (checked by
    accelc.hls.support): Trunc first rounds x onto its input grid (scale), which a value computed in fixed point
    already sits on; from there both divide by out_scale, clamp to the output width, round the same way and
    rescale. hls4ml 1.3 has no Trunc; it lowers the Quant (ROUND, FLOOR). Returns the names rewritten."""
    inits = {i.name: i for i in graph.initializer}
    done = []
    for node in graph.node:
        if node.op_type != "Trunc" or node.domain != QONNX_DOMAIN or len(node.input) != 6:
            continue
        scale, zeropt, _, out_scale, out_bits = (numpy_helper.to_array(inits[t]) for t in node.input[1:])
        shift = float(np.asarray(out_scale, np.float64).reshape(-1)[0] / np.asarray(scale, np.float64).reshape(-1)[0])
        z = np.asarray(zeropt, np.float32) / np.float32(shift)
        graph.initializer.append(numpy_helper.from_array(z.astype(np.float32), f"{node.name}_quant_zeropt"))
        node.op_type = "Quant"
        node.input[:] = [node.input[0], node.input[4], f"{node.name}_quant_zeropt", node.input[5]]
        done.append(node.name)
    return done


def round_quantized_constants(graph: onnx.GraphProto) -> list[str]:
    """Quant(W) on a constant with a rounding mode hls4ml 1.3 has no ap_fixed mode for (CEIL, UP, DOWN, HALF_UP,
    HALF_DOWN) -> the same Quant with ROUND of the values qonnx computes (already on the integer grid, which ROUND
    leaves as they are). Returns the names rewritten."""
    from qonnx.custom_op.general.quant import quant

    inits = {i.name: i for i in graph.initializer}
    done = []
    for node in graph.node:
        if not is_quant(node) or not all(t in inits for t in node.input[:4]):
            continue
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        rounding = attrs.get("rounding_mode", b"ROUND")
        rounding = (rounding.decode() if isinstance(rounding, bytes) else str(rounding)).upper()
        if rounding in ("ROUND", "FLOOR"):
            continue
        x, scale, zeropt, bits = (numpy_helper.to_array(inits[t]) for t in node.input[:4])
        values = quant(x.astype(np.float32), scale, zeropt, bits, attrs.get("signed", 1), attrs.get("narrow", 0),
                       rounding)
        name = f"{node.name}_rounded"
        graph.initializer.append(numpy_helper.from_array(np.asarray(values, np.float32), name))
        node.input[0] = name
        for a in node.attribute:
            if a.name == "rounding_mode":
                a.s = b"ROUND"
        done.append(node.name)
    return done
