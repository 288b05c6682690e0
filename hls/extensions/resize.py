"""ONNX ``Resize`` (opset 11+) and ``Upsample`` (opset 9) in nearest mode with integer scales, onto hls4ml's
own ``Resize`` layer (its ``resize_nearest`` C++, io_parallel and io_stream).

hls4ml 1.3's ONNX Resize handler fails in C simulation ("Could not find the shape for input": it keeps the
empty RoI input), reads height and width from the wrong axes, and ONNX has no Upsample handler at all. Also,
QONNX's channels-last conversion does not convert Resize: it leaves ``Transpose(to NCHW) -> Resize ->
Transpose(to NHWC)`` around it, while hls4ml's ``resize_nearest`` indexes channels-last data only.

So the handler here builds a channels-first ``Resize`` layer with the right dims and only the data input
(the scales/sizes/RoI Constants are read here, then removed), and ``ResizeToChannelsLast`` (a pass in
hls4ml's ``parse_qonnx`` flow) makes it channels-last: it drops the Transpose before it (or adds one where
the input is channels-first), and a Transpose back after it, cancelled against the Transpose QONNX put there.

Which Resize nodes are exact (nearest, integer factors, coordinate modes that reduce to repeating pixels)
is decided by accelc's support check (accelc.hls.support) before lowering; the handler only refuses what it
cannot even describe.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hls4ml.converters.onnx_to_hls import get_constant_value, get_onnx_attribute, replace_char_inconsitency
from hls4ml.model.flow import update_flow
from hls4ml.model.layers import Constant, Layer, Resize, Transpose
from hls4ml.model.optimizer import OptimizerPass, get_available_passes, register_pass

from accelc.errors import AccelcError

OPTIMIZER = "accelc_resize_to_channels_last"
MARK = "accelc_resize"  # set by our handler: the layers the pass owns


class UnsupportedResizeError(AccelcError, ValueError):
    """A Resize/Upsample the handler cannot describe; accelc's support check refuses these before lowering."""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def output_dims(node: Any, graph: Any, spatial: list[int]) -> list[int]:
    """The resized spatial dims: from ``sizes`` (Resize input 3) or ``scales`` (Resize input 2, Upsample input 1
    or its opset-7 attribute), each an integer multiple of the input's."""
    where = f"{node.op_type} node {node.name!r}"
    n = len(spatial)
    scales_at = 1 if node.op_type == "Upsample" else 2
    if node.op_type == "Resize" and len(node.input) > 3 and node.input[3]:
        full = [int(v) for v in np.asarray(get_constant_value(graph, node.input[3])).reshape(-1)]
        out = full[-n:]
    elif len(node.input) > scales_at and node.input[scales_at]:
        scales = np.asarray(get_constant_value(graph, node.input[scales_at]), dtype=np.float64).reshape(-1)
        out = [int(round(d * s)) for d, s in zip(spatial, scales[-n:])]
        if any(abs(d * s - o) > 1e-6 for d, s, o in zip(spatial, scales[-n:], out)):
            raise UnsupportedResizeError(f"{where}: scales {list(scales)} do not give whole output sizes")
    else:
        scales = get_onnx_attribute(node, "scales")
        if scales is None:
            raise UnsupportedResizeError(f"{where}: neither scales nor sizes given")
        out = [int(round(d * s)) for d, s in zip(spatial, list(scales)[-n:])]
    if any(o % d for o, d in zip(out, spatial)):
        raise UnsupportedResizeError(f"{where}: output {out} is not an integer multiple of the input {spatial}")
    return out


def parse_resize_layer(node: Any, input_names: list[str], input_shapes: list[list[int]], graph: Any) -> dict:
    """hls4ml ONNX handler: Resize/Upsample (nearest) on an NC(H)W tensor -> a channels-first ``Resize`` layer."""
    where = f"{node.op_type} node {node.name!r}"
    mode = _text(get_onnx_attribute(node, "mode", "nearest"))
    if mode != "nearest":
        raise UnsupportedResizeError(f"{where}: mode={mode} (only nearest is lowered)")
    shape = list(input_shapes[0]) if input_shapes else []
    if len(shape) not in (3, 4):
        raise UnsupportedResizeError(f"{where}: rank-{len(shape)} input (only 1-D and 2-D resizes are lowered)")
    channels, spatial = shape[1], shape[2:]
    out = output_dims(node, graph, spatial)
    layer = {
        "name": node.name,
        "class_name": "Resize",
        "inputs": input_names[:1],
        "outputs": list(node.output),
        "algorithm": "nearest",
        "data_format": "channels_first",
        "n_chan": channels,
        "in_height": spatial[0] if len(spatial) == 2 else 1,
        "out_height": out[0] if len(out) == 2 else 1,
        "in_width": spatial[-1],
        "out_width": out[-1],
        MARK: True,
        # hls4ml made a Constant layer of every initializer; these fed only this node.
        "accelc_constants": [replace_char_inconsitency(name) for name in input_names[1:] if name],
    }
    return layer


def _perm_to_cf(rank: int) -> list[int]:
    return [rank - 1, *range(rank - 1)]  # channels-last -> channels-first, batch axis dropped


def _perm_to_cl(rank: int) -> list[int]:
    return [*range(1, rank), 0]


def _is_transpose(node: Layer | None, perm: list[int]) -> bool:
    return isinstance(node, Transpose) and list(node.get_attr("perm")) == perm


class ResizeToChannelsLast(OptimizerPass):
    """Our channels-first Resize -> Resize on the channels-last tensor, Transposes around it cancelled."""

    def match(self, node: Layer) -> bool:
        return isinstance(node, Resize) and bool(node.get_attr(MARK)) and node.get_attr("data_format") == (
            "channels_first")

    def transform(self, model: Any, node: Layer) -> bool:
        for name in node.get_attr("accelc_constants") or []:
            const = model.graph.get(name)
            if isinstance(const, Constant) and not const.get_output_nodes():
                model.remove_node(const)
        node.set_attr("accelc_constants", [])
        rank = len(node.get_input_variable().shape)
        prev = node.get_input_node(node.inputs[0])
        if _is_transpose(prev, _perm_to_cf(rank)) and len(prev.get_output_nodes()) == 1:
            model.remove_node(prev)  # node now reads the channels-last tensor
        else:
            to_cl = model.make_node(Transpose, f"{node.name}_to_cl", {"perm": _perm_to_cl(rank)}, [node.inputs[0]])
            model.insert_node(to_cl, before=node)
        attrs = {k: node.get_attr(k) for k in ("in_height", "in_width", "out_height", "out_width", "n_chan")}
        attrs.update(algorithm="nearest", data_format="channels_last", **{MARK: True})
        resized = model.make_node(Resize, node.name, attrs, [node.inputs[0]], [f"{node.outputs[0]}_cl"])
        back = model.make_node(Transpose, f"{node.name}_to_cf", {"perm": _perm_to_cf(rank)}, [resized.outputs[0]],
                               list(node.outputs))
        model.split_node(node, resized, back)
        nxt = back.get_output_nodes()
        if len(nxt) == 1 and _is_transpose(nxt[0], _perm_to_cl(rank)) and back.outputs[0] not in model.outputs:
            model.remove_node(back)
            model.remove_node(nxt[0])
        return True


def register_resize() -> None:
    """Register the Resize/Upsample handlers and the layout pass; safe to call again.

    hls4ml ships its own (broken) Resize handler: ours replaces it, once, by name.
    """
    from hls4ml.converters.onnx_to_hls import layer_handlers

    from accelc.hls.extensions._registry import register_handler

    if layer_handlers.get("Resize") is not parse_resize_layer:
        layer_handlers.pop("Resize", None)
    register_handler("Resize", parse_resize_layer)
    register_handler("Upsample", parse_resize_layer)
    if OPTIMIZER not in get_available_passes():
        register_pass(OPTIMIZER, ResizeToChannelsLast)
        update_flow("parse_qonnx", add_optimizers=[OPTIMIZER])


__all__ = ["ResizeToChannelsLast", "UnsupportedResizeError", "parse_resize_layer", "register_resize"]
