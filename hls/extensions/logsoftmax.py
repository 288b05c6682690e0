"""ONNX ``LogSoftmax`` for hls4ml, through hls4ml's extension API.

hls4ml's ONNX frontend has no LogSoftmax, yet classifiers exported from PyTorch (LeNet ends in
``log_softmax``) carry one. This module supplies the four pieces the extension API needs:

* ``parse_logsoftmax_layer``: the ONNX parser handler (``register_onnx_layer_handler``);
* ``LogSoftmax``: the hls4ml IR layer class (``register_layer``);
* ``LogSoftmaxConfigTemplate`` / ``LogSoftmaxFunctionTemplate``: the C++ config struct and call;
* ``nnet_logsoftmax.h``: the C++ implementation (io_parallel and io_stream), copied into each
  project's ``firmware/nnet_utils`` by ``register_source``.

Any axis but the batch axis is supported in io_parallel: the parser gets the qonnx-cleaned graph, in
which a LogSoftmax keeps its ONNX layout (QONNX's channels-last conversion leaves it behind a Transpose),
and the C++ normalizes the ``n_outer * n_inner`` slices of ``n_slice`` elements strided by ``n_inner``
(row-major, as hls4ml's ``softmax_multidim``). io_stream holds the last axis in one stream word, so only
``n_inner == 1`` is lowered there (a static_assert; accelc's support check refuses the rest first).

Output precision: log-probabilities are <= 0 and reach about -20 for confident classifiers, so the
output type needs integer bits that an activation's default (e.g. ``fixed<16,6>`` is fine, ``<8,3>``
is not) may lack. Unless the layer's own config (by name or by type) sets a result precision, the
layer uses ``DEFAULT_RESULT_PRECISION`` = ``fixed<16,6,RND,SAT>``: range [-32, 32), LSB ~0.001,
saturating so an extremely unlikely class clips at -32 instead of wrapping to a positive number.
"""

from __future__ import annotations

from copy import copy
from pathlib import Path
from typing import Any

from hls4ml.backends import get_backend
from hls4ml.backends.template import FunctionCallTemplate, LayerConfigTemplate
from hls4ml.converters.onnx_to_hls import (
    get_onnx_attribute,
    get_supported_onnx_layers,
    layer_handlers,
    register_onnx_layer_handler,
)
from hls4ml.model.attributes import Attribute, ConfigurableAttribute, TypeAttribute
from hls4ml.model.layers import Layer, layer_map, register_layer
from hls4ml.model.optimizer import get_available_passes
from hls4ml.model.types import FixedPrecisionType, RoundingMode, SaturationMode, UnspecifiedPrecisionType

from accelc.errors import AccelcError
from accelc.hls.extensions.softmax import AxisError, axis_slices

ONNX_OP = "LogSoftmax"
HEADER = Path(__file__).resolve().with_name("nnet_logsoftmax.h")
DEFAULT_RESULT_PRECISION = FixedPrecisionType(
    16, 6, signed=True, rounding_mode=RoundingMode.RND, saturation_mode=SaturationMode.SAT
)


class UnsupportedLogSoftmaxError(AccelcError, ValueError):
    """A LogSoftmax node the extension cannot lower (the batch axis, an unknown shape).

    accelc's support checker refuses these before lowering; this is the backstop when hls4ml parses.
    """


# ---------------------------------------------------------------- ONNX parser handler


def parse_logsoftmax_layer(
    node: Any, input_names: list[str], input_shapes: list[list[int]], graph: Any
) -> dict:
    """hls4ml ONNX handler: an ONNX LogSoftmax node -> an hls4ml layer dict (class ``LogSoftmax``).

    Follows hls4ml's own handlers (``converters/onnx/core.py``): ``input_shapes`` still include the
    batch axis here, so ONNX's axis numbering applies unchanged.
    """
    where = f"LogSoftmax node {node.name or node.output[0]!r}"
    if not input_shapes:
        raise UnsupportedLogSoftmaxError(
            f"{where}: input shape unknown; run qonnx cleanup (shape inference) first"
        )
    axis = get_onnx_attribute(node, "axis", -1)  # opset >= 13 (accelc normalizes the opset to 13)
    try:
        _, n_slice, n_inner = axis_slices(list(input_shapes[0]), axis)
    except AxisError as e:
        raise UnsupportedLogSoftmaxError(f"{where}: {e}") from e
    return {
        "name": node.name or f"logsoftmax_{node.output[0]}",
        "class_name": "LogSoftmax",
        "inputs": input_names,
        "outputs": list(node.output),
        "axis": -1 if n_inner == 1 else axis,
        "n_slice": n_slice,
        "n_inner": n_inner,
    }


# ---------------------------------------------------------------- hls4ml IR layer


class LogSoftmax(Layer):
    """LogSoftmax over slices of n_slice elements strided by n_inner; output has the input's shape."""

    _expected_attributes = [
        Attribute("n_in"),
        Attribute("n_slice"),
        Attribute("n_inner", value_type=int, default=1),
        Attribute("axis", value_type=int, default=-1),
        ConfigurableAttribute("reuse_factor", default=1),
        # Overrides Layer's 'result' (no default) so config_from_onnx_model proposes a precision that fits.
        TypeAttribute("result", default=DEFAULT_RESULT_PRECISION),
    ]

    def initialize(self) -> None:
        inp = self.get_input_variable()
        precision, type_name = self.model.config.get_precision(self, "result")
        # Model-wide defaults are tuned for activations, not log-probabilities: only a precision set
        # for this layer (by name or type) overrides ours; 'auto' has no rule in infer_precision either.
        model_wide = type_name in ("result_default_t", "model_default_t")
        if model_wide or isinstance(precision, UnspecifiedPrecisionType):
            precision = copy(DEFAULT_RESULT_PRECISION)
        self.add_output_variable(inp.shape, precision=precision)
        self.set_attr("n_in", inp.size())


# ---------------------------------------------------------------- C++ templates

_config_template = """struct config{index} : nnet::logsoftmax_config {{
    static const unsigned n_in = {n_in};
    static const unsigned n_slice = {n_slice};
    static const unsigned n_inner = {n_inner};
    static const unsigned io_type = nnet::{iotype};
    static const unsigned reuse_factor = {reuse};
}};\n"""

# One name for both io types: the header overloads on array vs hls::stream, as hls4ml's softmax does.
_function_template = "nnet::logsoftmax<{input_t}, {output_t}, {config}>({input}, {output});"
_include_list = ["nnet_utils/nnet_logsoftmax.h"]


class LogSoftmaxConfigTemplate(LayerConfigTemplate):
    """Writes ``struct configN`` for the layer into parameters.h."""

    def __init__(self) -> None:
        super().__init__(LogSoftmax)
        self.template = _config_template

    def format(self, node: Layer) -> str:
        return self.template.format(**self._default_config_params(node))


class LogSoftmaxFunctionTemplate(FunctionCallTemplate):
    """Writes the ``nnet::logsoftmax`` call into the top function and includes the header."""

    def __init__(self) -> None:
        super().__init__(LogSoftmax, include_header=_include_list)
        self.template = _function_template

    def format(self, node: Layer) -> str:
        return self.template.format(**self._default_function_params(node))


_TEMPLATES = (LogSoftmaxConfigTemplate, LogSoftmaxFunctionTemplate)


# ---------------------------------------------------------------- registration


def _template_pass_name(backend_name: str, template_cls: type) -> str:
    # Backend.register_template registers under '<backend>:<template name>' and raises on a repeat.
    return f"{backend_name.lower()}:{template_cls().get_name()}"


def register_logsoftmax(backends: tuple[str, ...]) -> None:
    """Register the parser, layer, templates and header with hls4ml; safe to call repeatedly.

    hls4ml's registries are process-global and raise on a second registration (handlers,
    templates), so each piece is checked first. A foreign LogSoftmax handler is an error rather
    than silently used.
    """
    if ONNX_OP in get_supported_onnx_layers():
        existing = layer_handlers[ONNX_OP]
        if existing.__qualname__ != parse_logsoftmax_layer.__qualname__:
            raise RuntimeError(f"hls4ml already has a foreign ONNX {ONNX_OP} handler: {existing!r}")
    else:
        register_onnx_layer_handler(ONNX_OP, parse_logsoftmax_layer)
    if layer_map.get("LogSoftmax") is not LogSoftmax:
        register_layer("LogSoftmax", LogSoftmax)

    available = set(get_available_passes())
    for name in backends:
        backend = get_backend(name)
        for template_cls in _TEMPLATES:
            if _template_pass_name(backend.name, template_cls) not in available:
                backend.register_template(template_cls)
        # Sources are kept per backend object (Vitis does not inherit Vivado's); a dict: repeats are harmless.
        backend.register_source(HEADER)


def registered_backends(candidates: tuple[str, ...]) -> tuple[str, ...]:
    """Those of ``candidates`` on which the templates and header are registered right now."""
    available = set(get_available_passes())
    found = []
    for name in candidates:
        backend = get_backend(name)
        has_templates = all(_template_pass_name(backend.name, t) in available for t in _TEMPLATES)
        has_source = any(Path(p) == HEADER for p in backend.get_custom_source().values())
        if has_templates and has_source:
            found.append(name)
    return tuple(found)
