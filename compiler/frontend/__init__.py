"""Model import: ONNX, QONNX, TorchScript, torch.export, nn.Module and Keras sources -> one onnx-ir model
(opset >= 13).

One loader per source kind: pytorch (TorchScript, torch.export, nn.Module), qonnx (QONNX files as QDQ), keras
(.keras files and keras.Model objects, channels-last); onnx files are read here; interface turns the resulting
proto into what the pipeline needs (LoadedModel).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import onnx

from accelc.errors import ModelLoadError
from accelc.frontend.common import MIN_OPSET, failing_as, normalize_shapes
from accelc.frontend.interface import LoadedModel, finish
from accelc.frontend.keras import H5_SUFFIXES, export_keras, is_keras_model, load_keras_file
from accelc.frontend.pytorch import export_module, load_exported, load_pt
from accelc.frontend.qonnx import from_qonnx, is_qonnx
from accelc.frontend.source_model import keras_runner, onnx_runner, qonnx_runner, torch_runner
from accelc.spec import channels_last_layout, parse_shape

__all__ = ["MIN_OPSET", "LoadedModel", "load", "parse_shape"]

_SUFFIXES = ".onnx, .pt/.pth (TorchScript), .pt2 (torch.export) or .keras (Keras 3)"


def load(
    source: str | os.PathLike | Any,
    input_shape: Sequence[int] | Sequence[Sequence[int]] | str | None = None,
    trust_pickle: bool = False,
) -> LoadedModel:
    """Import a model file (.onnx, .pt/.pth, .pt2, .keras), an nn.Module or a keras.Model; failures raise a
    ModelLoadError. A Keras model's input shapes are channels-last, as Keras takes them."""
    shapes = normalize_shapes(input_shape)
    if is_keras_model(source):  # before nn.Module: on the torch backend a keras.Model is an nn.Module too
        name = f"<keras.Model {type(source).__name__}>"
        proto, shapes = export_keras(source, shapes, name)
        loaded = finish(proto, shapes, name, hashlib.sha256(proto.SerializeToString()).hexdigest(), "keras")
        return _keras(_runs(loaded, keras_runner(source)))
    if not isinstance(source, (str, os.PathLike)):
        proto = export_module(source, shapes, "nn.Module")
        sha = hashlib.sha256(proto.SerializeToString()).hexdigest()
        return _runs(finish(proto, shapes, f"<nn.Module {type(source).__name__}>", sha, "nn.Module"),
                     torch_runner(source))
    path = Path(source)
    if not path.is_file():
        raise ModelLoadError(f"no such file: '{path}'")
    suffix = path.suffix.lower()
    if suffix not in (".onnx", ".pt", ".pth", ".pt2", ".keras", *H5_SUFFIXES):
        raise ModelLoadError(f"unsupported model file '{path.name}': expected {_SUFFIXES}")
    data = path.read_bytes()
    if suffix == ".keras" or suffix in H5_SUFFIXES:
        keras_model = load_keras_file(path, data, trust_pickle)
        proto, shapes = export_keras(keras_model, shapes, path.name)
        loaded = finish(proto, shapes, str(path), hashlib.sha256(data).hexdigest(), "keras")
        return _keras(_runs(loaded, keras_runner(keras_model)))
    runner = None
    if suffix == ".onnx":
        with failing_as(f"{path.name} is not a valid ONNX model (expected an ONNX ModelProto file)"):
            proto, kind = onnx.load(str(path)), "onnx"  # by path, so that external data next to it is found
            if not proto.graph.node or not proto.graph.output:  # random bytes can parse as an empty proto
                raise ValueError("the graph is empty")
        # ONNX Runtime runs the file as given; a QONNX file's custom ops qonnx's executor runs.
        if is_qonnx(proto):
            (proto, kind), runner = from_qonnx(proto, path.name), qonnx_runner(path)
        else:
            runner = onnx_runner(path)
    elif suffix == ".pt2":
        (proto, shapes, module, batch), kind = load_exported(path, shapes), "torch.export"
        runner = torch_runner(module, batch)
    else:
        proto, shapes, kind, module = load_pt(path, data, shapes, trust_pickle)
        runner = torch_runner(module)
    return _runs(finish(proto, shapes, str(path), hashlib.sha256(data).hexdigest(), kind), runner)


def _runs(loaded: LoadedModel, runner) -> LoadedModel:
    return dataclasses.replace(loaded, run_source=runner)


def _keras(loaded: LoadedModel) -> LoadedModel:
    """Keras tensors are channels-last: the interface says so (NHWC inputs, NHWC conv outputs)."""
    def relabel(specs):
        return [dataclasses.replace(s, layout=channels_last_layout(len(s.shape))) for s in specs]

    return dataclasses.replace(loaded, inputs=relabel(loaded.inputs), outputs=relabel(loaded.outputs))
