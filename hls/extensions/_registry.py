"""Idempotent registration helpers: hls4ml's registries are process-global and raise on a repeat."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hls4ml.converters.onnx_to_hls import get_supported_onnx_layers, layer_handlers, register_onnx_layer_handler
from hls4ml.model.optimizer import get_available_passes


def register_handler(op: str, handler: Callable) -> None:
    """Register an ONNX handler once; a foreign handler for the op is an error, not silently used."""
    if op in get_supported_onnx_layers():
        if layer_handlers[op].__qualname__ != handler.__qualname__:
            raise RuntimeError(f"hls4ml already has a foreign ONNX {op} handler: {layer_handlers[op]!r}")
        return
    register_onnx_layer_handler(op, handler)


def template_pass_name(backend: Any, template_cls: type) -> str:
    # Backend.register_template registers under '<backend>:<template name>'.
    return f"{backend.name.lower()}:{template_cls().get_name()}"


def register_templates(backend: Any, templates: tuple[type, ...]) -> None:
    available = set(get_available_passes())
    for template_cls in templates:
        if template_pass_name(backend, template_cls) not in available:
            backend.register_template(template_cls)


def has_templates(backend: Any, templates: tuple[type, ...]) -> bool:
    available = set(get_available_passes())
    return all(template_pass_name(backend, t) in available for t in templates)
