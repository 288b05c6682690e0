"""ONNX ``Clip`` (any min/max, either optional) for hls4ml, through hls4ml's extension API.

hls4ml 1.3's ONNX frontend has no Clip handler, so ReLU6-style clamps and ``Clip(min, max)`` of torch
exports are refused. This module registers the four pieces of a layer (as accelc.hls.extensions.logsoftmax
does): the ONNX handler, the ``Clip`` IR layer, its config/function templates and ``nnet_clip.h``.

Bounds: opset >= 11 gives them as optional inputs (here: initializers, constant-folded by accelc), older
opsets as attributes. The handler reads them into the layer's ``min``/``max`` attributes and keeps only the
data input for computing; hls4ml turns every initializer into a Constant layer, and one left without a
consumer crashes its precision inference, so ``ClipRemoveConstants`` (an optimizer pass in hls4ml's
``parse_qonnx`` flow, like its own ``reshape_constant``) removes the bound Constants. A bound that is
absent, infinite or beyond float32's range is no bound (a legalization rewrite fills an absent min this way,
because hls4ml cannot parse an empty input name). The C++ compares in the input type: a bound rounds to
the input's grid, which is the most a fixed-point clamp can express.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from hls4ml.backends import get_backend
from hls4ml.backends.template import FunctionCallTemplate, LayerConfigTemplate
from hls4ml.converters.onnx_to_hls import get_constant_value, get_onnx_attribute
from hls4ml.model.attributes import Attribute
from hls4ml.model.flow import update_flow
from hls4ml.model.layers import Constant, Layer, layer_map, register_layer
from hls4ml.model.optimizer import OptimizerPass, get_available_passes, register_pass

from accelc.errors import AccelcError

ONNX_OP = "Clip"
OPTIMIZER = "accelc_clip_remove_constants"
FLOAT32_MAX = float(np.finfo(np.float32).max)
HEADER = Path(__file__).resolve().with_name("nnet_clip.h")


class UnsupportedClipError(AccelcError, ValueError):
    """A Clip whose bounds are not constants; accelc's support check refuses it before lowering."""


def _bound(node: Any, graph: Any, index: int, attr: str) -> float | None:
    if len(node.input) > index and node.input[index]:
        name = node.input[index]
        if not any(init.name == name for init in graph.initializer):
            raise UnsupportedClipError(f"Clip node {node.name!r}: bound {name!r} is not a constant")
        value = float(np.asarray(get_constant_value(graph, name)).reshape(-1)[0])
    else:
        value = get_onnx_attribute(node, attr)  # opset < 11
    return None if value is None or not abs(value) < FLOAT32_MAX else float(value)


def parse_clip_layer(node: Any, input_names: list[str], input_shapes: list[list[int]], graph: Any) -> dict:
    """hls4ml ONNX handler: Clip -> a ``Clip`` layer with its bounds as attributes and one input."""
    lo, hi = _bound(node, graph, 1, "min"), _bound(node, graph, 2, "max")
    return {
        "name": node.name,
        "class_name": "Clip",
        "inputs": input_names,
        "outputs": list(node.output),
        "has_min": lo is not None,
        "has_max": hi is not None,
        "min": 0.0 if lo is None else lo,
        "max": 0.0 if hi is None else hi,
    }


class Clip(Layer):
    """y = min(max(x, min), max); output has the input's shape and the configured result type."""

    _expected_attributes = [
        Attribute("n_in"),
        Attribute("has_min", value_type=bool, default=False),
        Attribute("has_max", value_type=bool, default=False),
        Attribute("min", value_type=float, default=0.0),
        Attribute("max", value_type=float, default=0.0),
    ]

    def initialize(self) -> None:
        inp = self.get_input_variable()
        self.add_output_variable(inp.shape)
        self.set_attr("n_in", inp.size())


class ClipRemoveConstants(OptimizerPass):
    """Remove the Constant layers of a Clip's bounds (already read into the layer's attributes)."""

    def match(self, node: Layer) -> bool:
        return isinstance(node, Clip) and any(node.inputs[1:])

    def transform(self, model: Any, node: Layer) -> bool:
        for i in range(1, len(node.inputs)):
            const = node.get_input_node(node.inputs[i]) if node.inputs[i] else None
            node.inputs[i] = ""
            if isinstance(const, Constant):
                model.remove_node(const)
        return True


_config_template = """struct config{index} : nnet::clip_config {{
    static const unsigned n_in = {n_in};
    static const bool has_min = {has_min_cpp};
    static const bool has_max = {has_max_cpp};
    static constexpr double min = {min!r};
    static constexpr double max = {max!r};
    static const unsigned io_type = nnet::{iotype};
    static const unsigned reuse_factor = {reuse};
}};\n"""
_function_template = "nnet::clip<{input_t}, {output_t}, {config}>({input}, {output});"


class ClipConfigTemplate(LayerConfigTemplate):
    def __init__(self) -> None:
        super().__init__(Clip)
        self.template = _config_template

    def format(self, node: Layer) -> str:
        params = self._default_config_params(node)
        params["has_min_cpp"] = "true" if node.get_attr("has_min") else "false"
        params["has_max_cpp"] = "true" if node.get_attr("has_max") else "false"
        return self.template.format(**params)


class ClipFunctionTemplate(FunctionCallTemplate):
    def __init__(self) -> None:
        super().__init__(Clip, include_header=["nnet_utils/nnet_clip.h"])
        self.template = _function_template

    def format(self, node: Layer) -> str:
        return self.template.format(**self._default_function_params(node))


TEMPLATES = (ClipConfigTemplate, ClipFunctionTemplate)


def register_clip(backends: tuple[str, ...]) -> None:
    """Register handler, layer, templates and header; safe to call again (hls4ml raises on repeats)."""
    from accelc.hls.extensions._registry import register_handler, register_templates

    register_handler(ONNX_OP, parse_clip_layer)
    if layer_map.get("Clip") is not Clip:
        register_layer("Clip", Clip)
    if OPTIMIZER not in get_available_passes():
        register_pass(OPTIMIZER, ClipRemoveConstants)
        update_flow("parse_qonnx", add_optimizers=[OPTIMIZER])
    for name in backends:
        backend = get_backend(name)
        register_templates(backend, TEMPLATES)
        backend.register_source(HEADER)


__all__ = ["Clip", "UnsupportedClipError", "parse_clip_layer", "register_clip"]
