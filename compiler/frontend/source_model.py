"""The source model, runnable: torch eager for torch sources, Keras for Keras, ONNX Runtime on the file as given.

The compile self-check runs it beside the canonical graph, so that the export, the opset conversion and
canonicalization are checked too, not only the lowering. A runner takes and returns arrays in the source's own
layout; it runs a batch the model fixed at export chunk by chunk.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

SourceRunner = Callable[[list[np.ndarray]], list[np.ndarray]]


def chunked(run: SourceRunner, batch: int | None) -> SourceRunner:
    """A model traced or exported with a fixed batch runs that many samples at a time."""
    if not batch:
        return run

    def chunks(xs: list[np.ndarray]) -> list[np.ndarray]:
        n = len(xs[0])
        if n % batch:
            raise ValueError(f"{n} samples do not split into the exported batch of {batch}")
        parts = [run([x[i : i + batch] for x in xs]) for i in range(0, n, batch)]
        return [np.concatenate([p[j] for p in parts]) for j in range(len(parts[0]))]

    return chunks


def torch_runner(module: Any, batch: int | None = None) -> SourceRunner:
    """nn.Module, TorchScript module or torch.export's module(): eager, in eval mode, without gradients."""
    import torch
    from torch.utils._pytree import tree_leaves

    def run(xs: list[np.ndarray]) -> list[np.ndarray]:
        training = getattr(module, "training", False)
        if hasattr(module, "eval") and training:
            module.eval()
        try:
            with torch.no_grad():
                out = module(*(torch.from_numpy(np.ascontiguousarray(x)) for x in xs))
        finally:
            if training:
                module.train(True)
        return [t.detach().cpu().numpy() for t in tree_leaves(out) if isinstance(t, torch.Tensor)]

    return chunked(run, batch)


def keras_runner(model: Any, batch: int | None = None) -> SourceRunner:
    def run(xs: list[np.ndarray]) -> list[np.ndarray]:
        import keras

        out = model(xs[0] if len(xs) == 1 else list(xs), training=False)
        leaves = out if isinstance(out, (list, tuple)) else list(out.values()) if isinstance(out, dict) else [out]
        return [np.asarray(keras.ops.convert_to_numpy(t)) for t in leaves]

    return chunked(run, batch)


def onnx_runner(path: Path) -> SourceRunner:
    """The file exactly as given (its own opset, fixed batch and all), on ONNX Runtime's CPU provider."""
    session = None

    def run(xs: list[np.ndarray]) -> list[np.ndarray]:
        nonlocal session
        import onnxruntime as ort

        from accelc.reference import run_batched

        if session is None:
            opts = ort.SessionOptions()
            opts.log_severity_level = 3
            # A QDQ model's meaning is the graph as written: ORT's fused int8 kernels are not exact (bias rounding).
            opts.add_session_config_entry("session.disable_quant_qdq", "1")
            session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        feeds = {i.name: np.asarray(x, dtype=np.float32) for i, x in zip(session.get_inputs(), xs)}
        return [np.asarray(y) for y in run_batched(session, feeds)]

    return run


def qonnx_runner(path: Path) -> SourceRunner:
    """A QONNX file as given (its own opset, its Quant / BipolarQuant / Trunc nodes) on qonnx's executor
    (``qonnx.core.onnx_exec.execute_onnx``, node by node), after renaming the quantizers' domain to the one qonnx
    executes (normalize_domains: ``finn.custom_op.general`` has no executor here) and qonnx's shape inference.
    The executor takes exactly the declared input shapes: a batch fixed at export runs that many samples at a
    time; a symbolic batch runs whole (its dim set to the number of samples, one shape inference per size)."""
    wrappers: dict[int, Any] = {}
    batch = _qonnx_batch(path)

    def run(xs: list[np.ndarray]) -> list[np.ndarray]:
        import onnx
        from qonnx.core.modelwrapper import ModelWrapper
        from qonnx.core.onnx_exec import execute_onnx
        from qonnx.transformation.infer_shapes import InferShapes

        from accelc.frontend.qonnx import normalize_domains

        n = len(xs[0])
        if n not in wrappers:
            proto = normalize_domains(onnx.load(str(path)))
            for value in [*_inputs(proto), *proto.graph.output]:
                dims = value.type.tensor_type.shape.dim
                if dims and not dims[0].HasField("dim_value"):
                    dims[0].dim_value = n
            wrappers[n] = ModelWrapper(proto).transform(InferShapes())
        wrapper = wrappers[n]
        names = [v.name for v in _inputs(wrapper.model)]
        result = execute_onnx(wrapper, {k: np.asarray(x, dtype=np.float32) for k, x in zip(names, xs, strict=True)})
        return [np.asarray(result[o.name]) for o in wrapper.model.graph.output]

    return chunked(run, batch)


def _inputs(proto: Any) -> list:
    inits = {t.name for t in proto.graph.initializer}
    return [v for v in proto.graph.input if v.name not in inits]


def _qonnx_batch(path: Path) -> int | None:
    """Samples per executor call: the batch the first input fixes; None (all at once) for a symbolic batch."""
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    inputs = _inputs(proto)
    dims = inputs[0].type.tensor_type.shape.dim if inputs else []
    return dims[0].dim_value if dims and dims[0].HasField("dim_value") and dims[0].dim_value > 0 else None
