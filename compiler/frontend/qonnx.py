"""QONNX models (``Quant`` / ``BipolarQuant`` / ``Trunc`` nodes, what Brevitas, FINN and QKeras tools export) at
load time.

The tools write these nodes in three domains (``qonnx.custom_op.general``, ``finn.custom_op.general``,
``onnx.brevitas``), often without an opset import for it, at opsets 9-11. On load (``from_qonnx``) their domain is
normalized to ``qonnx.custom_op.general`` with its opset import (``normalize_domains``), the standard part of the graph
is converted to opset 13 around them (accelc.frontend.opset), and what accelc cannot import (widths beyond 24 bits,
parameters computed in the graph) is refused by node, op and parameter (``QonnxImportError``).

ONNX Runtime, which runs accelc's float reference and the cpu/cuda targets, cannot execute QONNX nodes, so on import
each becomes standard ONNX that computes the same numbers: the equivalent QuantizeLinear -> (Clip ->)
DequantizeLinear chain where one exists (``qonnx_to_qcdq``: 2 to 8 bits, ROUND, zero offset), else a call of a
model-local function holding qonnx's arithmetic (accelc.frontend.qonnx_functions: BipolarQuant, Trunc, 1 and 9-24
bits, every rounding mode, zero points). Nothing here is fpga-specific; the fpga target (accelc.hls.quantized_import)
turns both back into the same QONNX nodes for hls4ml, and uses the names defined here (``QONNX_DOMAIN``,
``QUANT_OPS``, ``QDQ_OPS``, ``is_quant``, ``_constants_to_initializers``). This module must not import accelc.hls.
"""

from __future__ import annotations

import warnings

import numpy as np
import onnx
from onnx import numpy_helper

from accelc.errors import AccelcError, ModelLoadError, Unsupported, group_unsupported
from accelc.frontend.common import MIN_OPSET, failing_as
from accelc.frontend.qonnx_functions import ROUNDING_MODES, to_function_call

QONNX_DOMAIN = "qonnx.custom_op.general"
# The domains the tools write QONNX's quantizers in: qonnx itself, FINN (older qonnx / FINN exports, QKeras
# converters), Brevitas' own export.
QONNX_DOMAINS = (QONNX_DOMAIN, "finn.custom_op.general", "onnx.brevitas")
QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")
QUANT_OPS = ("Quant", "IntQuant")  # hls4ml parses both names of QONNX's integer quantizer
QONNX_OPS = (*QUANT_OPS, "BipolarQuant", "Trunc")
QDQ_BITS = (2, 8)  # what QuantizeLinear/DequantizeLinear (int8/uint8 at opset 13) + Clip express
MAX_BITS = 24  # float32, which qonnx and ONNX Runtime compute in, holds integers up to 2^24 exactly
_SUPPORTED = ("accelc imports Quant (1 to 24 bits, every QONNX rounding mode), BipolarQuant and Trunc with "
              "constant parameters")


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


def is_qonnx_node(node: onnx.NodeProto) -> bool:
    """A QONNX quantizer (Quant, IntQuant, BipolarQuant, Trunc) in any of the domains the tools write it in."""
    return node.op_type in QONNX_OPS and node.domain in QONNX_DOMAINS


def is_qonnx(proto: onnx.ModelProto) -> bool:
    return any(is_qonnx_node(n) for n in proto.graph.node)


def normalize_domains(proto: onnx.ModelProto) -> onnx.ModelProto:
    """A copy whose QONNX quantizers sit in ``qonnx.custom_op.general``, imported (at the version the file imported
    their domain at, else 1), as ``Quant`` (IntQuant is the same op under its newer name; QuantToQCDQ matches
    ``Quant``) with rounding ``HALF_EVEN`` spelled ``ROUND`` (the same numpy rounding in qonnx) and a one-element
    bit width as the scalar QuantToQCDQ reads. Imports of the other two domains no node uses any more are
    dropped. Nothing changes what the graph computes."""
    out = onnx.ModelProto()
    out.CopyFrom(proto)
    versions = {o.domain: o.version for o in out.opset_import}
    used = [n.domain for n in out.graph.node if is_qonnx_node(n)]
    version = versions.get(QONNX_DOMAIN) or next((versions[d] for d in used if d in versions), None)
    if version is None:  # no import to go by: a 6-input Trunc is qonnx's v2 (what Brevitas writes), else v1
        version = 2 if any(n.op_type == "Trunc" and len(n.input) == 6 for n in out.graph.node if is_qonnx_node(n)) \
            else 1
    for node in out.graph.node:
        if not is_qonnx_node(node):
            continue
        node.domain = QONNX_DOMAIN
        if node.op_type == "IntQuant":
            node.op_type = "Quant"
        for a in node.attribute:
            if a.name == "rounding_mode" and a.s.decode().upper() in ("ROUND", "HALF_EVEN"):
                a.s = b"ROUND"
    _scalar_bit_widths(out.graph)
    still = {n.domain for n in out.graph.node}
    keep = [o for o in out.opset_import if o.domain not in QONNX_DOMAINS[1:] or o.domain in still]
    del out.opset_import[:]
    out.opset_import.extend(keep)
    if not any(o.domain == QONNX_DOMAIN for o in out.opset_import) and used:
        out.opset_import.append(onnx.helper.make_opsetid(QONNX_DOMAIN, version))
    return out


def _scalar_bit_widths(graph: onnx.GraphProto) -> None:
    """One-element bit-width initializers read only as Quant bit widths become scalars (same value)."""
    inits = {t.name: t for t in graph.initializer}
    widths = {n.input[3] for n in graph.node if is_quant(n) and len(n.input) > 3}
    for name in widths:
        t = inits.get(name)
        readers = [(n, i) for n in graph.node for i, x in enumerate(n.input) if x == name]
        if t is None or not t.dims or int(np.prod(t.dims)) != 1 or any(not is_quant(n) or i != 3 for n, i in readers):
            continue
        t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(t).reshape(()), name))


def _initializers_are_not_inputs(proto: onnx.ModelProto) -> None:
    """Initializers listed as graph inputs too (torch's dynamo exporter lists Brevitas' lifted constants so) are
    constants: QuantToQCDQ would otherwise read a Quant's scale as a run-time input, and drop the initializer
    while keeping the input."""
    inits = {t.name for t in proto.graph.initializer}
    real = [v for v in proto.graph.input if v.name not in inits]
    if len(real) < len(proto.graph.input):
        del proto.graph.input[:]
        proto.graph.input.extend(real)
        proto.ir_version = max(proto.ir_version, 4)


class QonnxImportError(ModelLoadError):
    """QONNX nodes accelc cannot import (yet); ``.unsupported`` names each (op, node, parameter and why)."""

    def __init__(self, model: str, unsupported: list[Unsupported]) -> None:
        self.model = model
        self.unsupported = list(unsupported)
        super().__init__(_describe(model, self.unsupported))

    def __reduce__(self):
        return type(self), (self.model, self.unsupported)


def _describe(model: str, unsupported: list[Unsupported]) -> str:
    if len(unsupported) == 1:
        u = unsupported[0]
        return f"{model}: QONNX {u.op} node '{u.node}' cannot be imported: {u.reason} (hint: {u.hint})"
    ops = ", ".join(f"{op} ×{len(nodes)}" for op, _, _, nodes in group_unsupported(unsupported))
    lines = [f"{model}: {len(unsupported)} QONNX node(s) cannot be imported ({ops}):"]
    for op, reason, hint, nodes in group_unsupported(unsupported):
        names = ", ".join(nodes[:3]) + (f" … (+{len(nodes) - 3})" if len(nodes) > 3 else "")
        lines.append(f"  {op} ×{len(nodes)}: {names} — {reason} (hint: {hint})")
    return "\n".join(lines)


def import_problems(proto: onnx.ModelProto) -> list[Unsupported]:
    """Each QONNX node (domains normalized) accelc cannot import, naming the parameter and why; empty when every
    one is expressible as QCDQ (qonnx_to_qcdq) or as a function call (accelc.frontend.qonnx_functions)."""
    inits = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}
    found = []
    for i, node in enumerate(proto.graph.node):
        if node.domain not in QONNX_DOMAINS:
            continue
        name = node.name or f"{node.op_type}_{i}"

        def refuse(reason: str, hint: str = _SUPPORTED, node=node, name=name) -> None:
            found.append(Unsupported(node.op_type, name, "load", reason, hint))

        if node.op_type == "Trunc":
            reason = _trunc_problem(node, inits)
            if reason:
                refuse(reason)
        elif node.op_type == "BipolarQuant":
            if len(node.input) < 2 or node.input[1] not in inits:
                refuse("its scale is computed in the graph; a constant is needed")
        elif node.op_type not in QUANT_OPS:
            refuse(f"custom op {node.op_type} (domain {node.domain}) has no standard ONNX equivalent",
                   "export the model without it")
        else:
            reason = _quant_problem(node, inits)
            if reason:
                refuse(reason)
    return found


def _quant_problem(node: onnx.NodeProto, inits: dict[str, np.ndarray]) -> str | None:
    ins = list(node.input) + [""] * (4 - len(node.input))
    for index, what in ((1, "scale"), (2, "zero point"), (3, "bit width")):
        if ins[index] not in inits:
            return f"its {what} ('{ins[index]}') is computed in the graph; a constant is needed"
    bits = inits[ins[3]]
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    rounding = attrs.get("rounding_mode", b"ROUND")
    rounding = (rounding.decode() if isinstance(rounding, bytes) else str(rounding)).upper()
    if bits.size != 1:
        return f"bit width has shape {bits.shape}; a single bit width per node is needed"
    width = float(bits.reshape(-1)[0])
    if width != int(width) or not 1 <= width <= MAX_BITS:
        return f"bitwidth={width:g} (an integer from 1 to {MAX_BITS} is imported)"
    if rounding not in ROUNDING_MODES + ("HALF_EVEN",):
        return f"rounding_mode={rounding} is not a QONNX rounding mode ({', '.join(ROUNDING_MODES)})"
    return None


def _trunc_problem(node: onnx.NodeProto, inits: dict[str, np.ndarray]) -> str | None:
    if len(node.input) not in (5, 6):
        return f"{len(node.input)} inputs (qonnx's Trunc v1 has 5, v2 6)"
    names = ("scale", "zero point", "input bit width") + (("output scale",) if len(node.input) == 6 else ()) + (
        "output bit width",)
    for name, what in zip(node.input[1:], names):
        if name not in inits:
            return f"its {what} ('{name}') is computed in the graph; a constant is needed"
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    rounding = attrs.get("rounding_mode", b"FLOOR")
    rounding = (rounding.decode() if isinstance(rounding, bytes) else str(rounding)).upper()
    if rounding not in ROUNDING_MODES:
        return f"rounding_mode={rounding} is not a QONNX rounding mode ({', '.join(ROUNDING_MODES)})"
    return None


def _qcdq_expresses(node: onnx.NodeProto, inits: dict[str, np.ndarray]) -> bool:
    """What QuantToQCDQ converts exactly: Quant with 2 to 8 bits, ROUND, a zero offset, one scale per tensor or
    per channel."""
    if not is_quant(node):
        return False
    scale, zero, bits = (inits[t] for t in node.input[1:4])
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    rounding = attrs.get("rounding_mode", b"ROUND")
    rounding = rounding.decode() if isinstance(rounding, bytes) else str(rounding)
    width = float(bits.reshape(-1)[0])
    return (QDQ_BITS[0] <= width <= QDQ_BITS[1] and rounding.upper() == "ROUND" and not np.any(zero != 0)
            and np.squeeze(scale).ndim <= 1)


def _quantizers_as_functions(proto: onnx.ModelProto) -> int:
    """The quantizers QCDQ cannot express become function calls (accelc.frontend.qonnx_functions); returns how many."""
    inits = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}
    count = 0
    for node in proto.graph.node:
        if node.domain == QONNX_DOMAIN and node.op_type in ("Quant", "BipolarQuant", "Trunc") \
                and not _qcdq_expresses(node, inits):
            to_function_call(proto, node)
            count += 1
    return count


def from_qonnx(proto: onnx.ModelProto, name: str) -> tuple[onnx.ModelProto, str]:
    """QONNX Quant nodes (Brevitas' export) as the equivalent QuantizeLinear -> Clip -> DequantizeLinear graph:
    ONNX Runtime runs it (the reference, cpu/cuda), and the fpga target turns it back into the same Quant
    nodes and bit widths. Domains are normalized first and a file below opset 13 is converted around its
    custom nodes; nodes the QDQ graph cannot express are refused by name (QonnxImportError)."""
    from accelc.frontend.opset import convert_standard_part

    proto = normalize_domains(proto)
    _initializers_are_not_inputs(proto)
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), MIN_OPSET)
    if opset < MIN_OPSET:
        with failing_as(f"{name} uses opset {opset}; converting it to opset {MIN_OPSET} failed"):
            proto = convert_standard_part(proto, MIN_OPSET)
    _constants_to_initializers(proto.graph)  # Constant-node scales / zero points / bit widths: QuantToQCDQ reads
    # initializers only
    problems = import_problems(proto)
    if problems:
        raise QonnxImportError(name, problems)
    _quantizers_as_functions(proto)
    with failing_as(f"{name}: QONNX model with no ONNX equivalent"):
        return qonnx_to_qcdq(proto), "qonnx"
