"""Refusals before any work: weights that are not finite, and shapes too large to run.

A NaN weight makes every output it reaches NaN; an Inf weight in a Conv or MatMul does the same (0 x Inf). Both
used to compile (or die later, far from the cause): here they are refused at load, naming the tensor (for torch
exports its ONNX name carries the parameter name, e.g. `conv1.weight`) and the nodes that read it. NaN is refused
wherever it is; +-Inf only where an op reads it as arithmetic data (ARITHMETIC), since exporters write legitimate
infinities as Clip bounds (torch.clamp), Where/Max/Min operands (masked_fill), Pad values and comparison
operands, and as an additive attention mask (an Add whose result reaches only a Softmax).

The compile runs every model on tens of samples at once (the fpga ranges and the self-check draw 32, a calibration
set may hold more), so a shape like 1x3x100000x100000 used to die in numpy with a MemoryError traceback. Refused
here with one line, before anything allocates a sample: input shapes as given (before an exporter draws a dummy
input) or declared (per sample), at load every value ONNX shape inference sizes (over RUN_SAMPLES samples), and
through `refuse_huge_values` the canonical graph's values over the samples the driver will run.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator, Sequence

import numpy as np
import onnx
import onnx_ir as ir

from accelc.errors import ModelLoadError

# Ops whose inputs are all arithmetic data: an Inf there makes Inf or NaN outputs (0 x Inf, Inf - Inf).
ARITHMETIC = frozenset({
    "Conv", "ConvTranspose", "ConvInteger", "Gemm", "MatMul", "MatMulInteger", "Einsum", "BatchNormalization",
    "InstanceNormalization", "LayerNormalization", "GroupNormalization", "RMSNormalization", "Add", "Sub", "Mul",
    "Div", "PRelu", "Sum", "Mean", "Pow", "RNN", "GRU", "LSTM", "QuantizeLinear", "DequantizeLinear",
})
# An Add of -Inf whose result reaches only these (through _MASK_KEEPING ops) is an additive attention mask.
_MASK_READERS = frozenset({"Softmax", "LogSoftmax", "ReduceMax", "ArgMax", "Greater", "Less", "Equal",
                           "GreaterOrEqual", "LessOrEqual"})
_MASK_KEEPING = frozenset({"Reshape", "Transpose", "Squeeze", "Unsqueeze", "Identity", "Cast", "Flatten", "Expand",
                           "Where", "Max", "Min", "Clip", "Add"})
_FLOATS = {onnx.TensorProto.FLOAT: "<f4", onnx.TensorProto.DOUBLE: "<f8", onnx.TensorProto.FLOAT16: "<f2"}
_OTHER_FLOATS = {onnx.TensorProto.BFLOAT16}  # read through numpy_helper (ml_dtypes)
NONFINITE_HINT = "the model's weights are not finite: retrain or re-export it"
MAX_LISTED = 4  # bad tensors named in the message, then "+N more"
MAX_READERS = 2  # nodes named per tensor

MAX_INPUT_BYTES = 2**31  # per sample, whatever the machine: no model accelc lowers takes more
MAX_ELEMENTS = 2**31  # per value over the samples a compile runs (int32 indexing in kernels and emulators)
MEMORY_FRACTION = 4  # one value over the samples may take a quarter of physical memory
FALLBACK_MEMORY = 16 * 2**30  # assumed where the physical memory is unknown
RUN_SAMPLES = 32  # samples every compile runs at least: the fpga ranges (hls RANGE_SAMPLES) and the self-check
SHAPE_DATA = 4096  # initializer elements kept for shape inference (shape targets); larger ones are typed inputs
SMALLER_HINT = "export the model for smaller inputs, or pass a smaller --input-shape where its dims are free"
GIVEN_HINT = "pass a smaller --input-shape (API: input_shape=)"


def check_loaded(proto: onnx.ModelProto, name: str) -> None:
    """The load-time refusals, on the proto after opset conversion with its inputs fixed: huge inputs, huge values
    (ONNX shape inference, RUN_SAMPLES samples), then non-finite weights."""
    refuse_huge_inputs(proto, name)
    line = _first_huge(_inferred_values(proto), RUN_SAMPLES)
    if line:
        raise ModelLoadError(f"{name}: {line}")
    refuse_nonfinite_weights(proto, name)


# --- shapes --------------------------------------------------------------------------------------------------


def physical_memory() -> int:
    """Bytes of physical memory on this machine (FALLBACK_MEMORY where the OS does not say)."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return FALLBACK_MEMORY
    return total if total > 0 else FALLBACK_MEMORY


def _bytes(n: float) -> str:
    return f"{int(n)} bytes ({n / 2**30:.1f} GiB)"


def _input_bound() -> int:
    return min(MAX_INPUT_BYTES, physical_memory() // MEMORY_FRACTION)


def refuse_huge_shapes(shapes: Sequence[Sequence[int]] | None, name: str) -> None:
    """Input shapes as given (or declared), before an exporter allocates a sample of each (float32): refused past
    MAX_INPUT_BYTES or a quarter of physical memory per sample, or past that quarter as given (batch included:
    the exporter runs one pass at that shape)."""
    bound, memory = _input_bound(), physical_memory() // MEMORY_FRACTION
    for i, shape in enumerate(shapes or ()):
        sample = math.prod(int(d or 1) for d in shape[1:]) * 4
        whole = sample * int(shape[0] or 1) if shape else 0
        if sample > bound or whole > memory:
            size, limit, per = (sample, bound, "per sample") if sample > bound else (whole, memory, "as given")
            raise ModelLoadError(f"{name}: input {i} of shape {tuple(shape)} takes {_bytes(size)} {per}, over the "
                                 f"bound of {_bytes(limit)}; {GIVEN_HINT}")


def refuse_huge_inputs(proto: onnx.ModelProto, name: str) -> None:
    """The graph inputs (a symbolic batch counts as 1): refused past MAX_INPUT_BYTES or a quarter of physical
    memory per sample."""
    bound = _input_bound()
    for value in proto.graph.input:
        shape = _proto_shape(value)
        size = math.prod(_counted(shape)) * _proto_itemsize(value.type.tensor_type.elem_type)
        if size > bound:
            raise ModelLoadError(f"{name}: input '{value.name}' of shape {shape} takes {_bytes(size)} per sample, "
                                 f"over the bound of {_bytes(bound)}; {SMALLER_HINT}")


def refuse_huge_values(model: ir.Model, samples: int) -> None:
    """Refuse a graph whose inputs or node outputs (inferred shapes; unknown dims count as 1) would, over
    `samples` samples at once, take more than a quarter of physical memory or MAX_ELEMENTS elements. One line
    naming the first such value (input, or the node making it), its shape, its per-sample size and the bound."""
    line = _first_huge(_ir_values(model), samples)
    if line:
        raise ModelLoadError(line)


Item = tuple[str, tuple, float]  # (what: "input 'x'" | "value 'v' (made by Op node 'n')", shape, bytes per element)


def _first_huge(items: Iterable[Item], samples: int) -> str | None:
    """The refusal line for the first item too large over `samples` samples (counting the others), else None."""
    samples = max(int(samples), 1)
    bound = physical_memory() // MEMORY_FRACTION
    found = []
    for what, shape, itemsize in items:
        elements = math.prod(_counted(shape))
        size = math.ceil(elements * itemsize)
        if size * samples > bound or elements * samples > MAX_ELEMENTS:
            found.append((what, shape, size, elements))
    if not found:
        return None
    what, shape, size, elements = found[0]
    over = (f"hold {elements * samples} elements, over the bound of {MAX_ELEMENTS}" if size * samples <= bound else
            f"need {size * samples / 2**30:.1f} GiB, over the bound of {bound / 2**30:.1f} GiB (a quarter of this "
            f"machine's memory)")
    more = f" (and {len(found) - 1} more value(s) too large)" if len(found) > 1 else ""
    return (f"{what} of shape {shape} takes {_bytes(size)} per sample; the {samples} samples the compile runs "
            f"would {over}{more}; {SMALLER_HINT}")


def _counted(shape: tuple) -> list[int]:
    return [d if isinstance(d, int) and d > 0 else 1 for d in shape]  # unknown dims count as 1


def _made_by(value: str, node: onnx.NodeProto | ir.Node | None) -> str:
    return f"input '{value}'" if node is None else f"value '{value}' (made by {node.op_type} node '{node.name}')"


def _ir_values(model: ir.Model) -> Iterator[Item]:
    """Graph inputs, then every node output with a shape, subgraphs included."""
    pairs = [(v, None) for v in model.graph.inputs]
    pairs += [(v, n) for n in ir.traversal.RecursiveGraphIterator(model.graph) for v in n.outputs]
    for value, node in pairs:
        if value.shape is not None:
            shape = tuple(d if isinstance(d, int) else str(d) for d in value.shape)
            yield _made_by(value.name, node), shape, _ir_itemsize(value.dtype)


def _ir_itemsize(dtype: ir.DataType | None) -> float:
    try:
        return dtype.itemsize if dtype is not None else 4
    except TypeError:  # strings
        return 4


def _proto_itemsize(elem_type: int) -> int:
    try:
        return onnx.helper.tensor_dtype_to_np_dtype(elem_type).itemsize if elem_type else 4
    except (KeyError, TypeError, ValueError):
        return 4


def _proto_shape(value: onnx.ValueInfoProto) -> tuple:
    return tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or "?")
                 for d in value.type.tensor_type.shape.dim)


def _inferred_values(proto: onnx.ModelProto) -> Iterator[Item]:
    """The graph inputs and node outputs ONNX shape inference sizes, on a copy whose large initializers are typed
    inputs instead (no weight is copied); nothing where inference fails (custom domains: the later check sees)."""
    copy = onnx.ModelProto(ir_version=max(proto.ir_version, 4))
    copy.opset_import.extend(proto.opset_import)
    copy.functions.extend(proto.functions)
    graph = copy.graph
    graph.node.extend(proto.graph.node)
    graph.input.extend(proto.graph.input)
    graph.output.extend(proto.graph.output)
    graph.value_info.extend(proto.graph.value_info)
    for t in proto.graph.initializer:
        if math.prod(t.dims) <= SHAPE_DATA and t.data_location != onnx.TensorProto.EXTERNAL:
            graph.initializer.append(t)  # may be a Reshape/Expand/Resize target: inference reads its values
        else:
            graph.input.append(onnx.helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)))
    try:
        inferred = onnx.shape_inference.infer_shapes(copy, data_prop=True)
    except Exception:
        return
    makers = {o: n for n in proto.graph.node for o in n.output}
    for value in (*proto.graph.input, *inferred.graph.value_info, *inferred.graph.output):
        if value.type.tensor_type.HasField("shape"):
            itemsize = _proto_itemsize(value.type.tensor_type.elem_type)
            yield _made_by(value.name, makers.get(value.name)), _proto_shape(value), itemsize


# --- weights -------------------------------------------------------------------------------------------------


def refuse_nonfinite_weights(proto: onnx.ModelProto, name: str) -> None:
    """Refuse NaN in any float initializer or Constant value (subgraphs included), +-Inf in one an ARITHMETIC op
    reads; one line naming each tensor (up to MAX_LISTED), its readers and its NaN/+Inf/-Inf counts."""
    readers: dict[str, list[onnx.NodeProto]] = {}
    tensors: list[tuple[str, onnx.TensorProto]] = []
    for graph in _graphs(proto.graph):
        tensors.extend((t.name, t) for t in graph.initializer)
        for node in graph.node:
            for i in node.input:
                readers.setdefault(i, []).append(node)
            if node.op_type == "Constant" and node.domain in ("", "ai.onnx") and node.output:
                tensors.extend((node.output[0], t) for t in _constant_tensors(node))
    bad = []
    for tname, tensor in tensors:
        counts = _nonfinite(tensor)
        if counts is None:
            continue
        nan, pos, neg, total = counts
        users = readers.get(tname, [])
        if nan or any(_arithmetic(n, readers) for n in users):
            bad.append(_describe(tname, users, nan, pos, neg, total))
    if bad:
        shown = "; ".join(bad[:MAX_LISTED]) + (f"; +{len(bad) - MAX_LISTED} more" if len(bad) > MAX_LISTED else "")
        raise ModelLoadError(f"{name}: {len(bad)} weight tensor(s) hold NaN or Inf: {shown} — {NONFINITE_HINT}")


def _graphs(graph: onnx.GraphProto) -> Iterator[onnx.GraphProto]:
    yield graph
    for node in graph.node:
        for a in node.attribute:
            subs = [a.g] if a.type == onnx.AttributeProto.GRAPH else list(a.graphs)
            for sub in subs:
                yield from _graphs(sub)


def _constant_tensors(node: onnx.NodeProto) -> Iterable[onnx.TensorProto]:
    for a in node.attribute:
        if a.name == "value" and a.type == onnx.AttributeProto.TENSOR:
            yield a.t
        elif a.name == "value_float":
            yield onnx.helper.make_tensor("", onnx.TensorProto.FLOAT, [], [a.f])
        elif a.name == "value_floats":
            yield onnx.helper.make_tensor("", onnx.TensorProto.FLOAT, [len(a.floats)], list(a.floats))


def _nonfinite(tensor: onnx.TensorProto) -> tuple[int, int, int, int] | None:
    """(NaN, +Inf, -Inf, total) counts of a float tensor holding any, else None. External data not loaded is
    skipped."""
    if tensor.data_type not in _FLOATS and tensor.data_type not in _OTHER_FLOATS:
        return None
    if tensor.data_location == onnx.TensorProto.EXTERNAL:
        return None
    if tensor.data_type in _FLOATS and tensor.HasField("raw_data"):
        array = np.frombuffer(tensor.raw_data, dtype=_FLOATS[tensor.data_type])
    else:
        try:
            array = onnx.numpy_helper.to_array(tensor)
        except Exception:  # a malformed tensor is the checker's business, not this one's
            return None
        array = array.astype(np.float32) if tensor.data_type in _OTHER_FLOATS else array
    if array.size == 0 or np.isfinite(array).all():
        return None
    return int(np.isnan(array).sum()), int(np.isposinf(array).sum()), int(np.isneginf(array).sum()), array.size


def _arithmetic(node: onnx.NodeProto, readers: dict[str, list[onnx.NodeProto]]) -> bool:
    """Whether `node` reads `tensor` as arithmetic data (not an additive mask, see _is_mask)."""
    if node.op_type not in ARITHMETIC or node.domain not in ("", "ai.onnx"):
        return False
    return not (node.op_type == "Add" and _is_mask(node, readers))


def _is_mask(node: onnx.NodeProto, readers: dict[str, list[onnx.NodeProto]], depth: int = 8) -> bool:
    """Whether the node's result reaches only Softmax-like readers (through ops that keep a -Inf a -Inf)."""
    users = [u for o in node.output for u in readers.get(o, [])]
    if not users or depth == 0:
        return False
    return all(u.op_type in _MASK_READERS or (u.op_type in _MASK_KEEPING and _is_mask(u, readers, depth - 1))
               for u in users)


def _describe(tensor: str, users: list[onnx.NodeProto], nan: int, pos: int, neg: int, total: int) -> str:
    counts = ", ".join(f"{n} {label}" for n, label in ((nan, "NaN"), (pos, "+Inf"), (neg, "-Inf")) if n)
    names = [f"{u.op_type} '{u.name}'" if u.name else u.op_type for u in users[:MAX_READERS]]
    if len(users) > MAX_READERS:
        names.append(f"+{len(users) - MAX_READERS} more")
    read = f"read by {', '.join(names)}" if names else "read by no node"
    return f"'{tensor or '<unnamed>'}' ({read}): {counts} of {total} values"
