"""PyTorch sources -> ONNX: TorchScript and pickled-module .pt files, torch.export .pt2 programs, nn.Modules.

Torch is imported inside the functions so that loading an .onnx file never pays for (or needs) it. A .pt file
is classified from its zip listing without unpickling anything; a pickled module is only unpickled when the
caller says it trusts the file, because unpickling can run arbitrary code.
"""

from __future__ import annotations

import contextlib
import io
import logging
import pickle
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import onnx

from accelc.errors import ModelLoadError
from accelc.frontend.common import MIN_OPSET, SHAPE_HINT, Shapes, failing_as, first_line

SAVE_HINT = "save it with torch.jit.script(model).save(path) or torch.export.save(program, path)"


def load_pt(path: Path, data: bytes, shapes: Shapes, trust: bool) -> tuple[onnx.ModelProto, Shapes, str, Any]:
    """Classify a .pt/.pth file from its zip listing, without unpickling anything, then import it; also returns
    the loaded module (the self-check runs it)."""
    import torch

    corrupt = f"{path.name} is not a readable PyTorch archive (truncated or corrupt?)"
    if data[:4] == b"PK\x03\x04":
        with failing_as(corrupt):
            names = zipfile.ZipFile(io.BytesIO(data)).namelist()
        if any("/code/" in n for n in names) and any(n.endswith("/constants.pkl") for n in names):
            with failing_as(corrupt), _quiet():  # torch.jit.load is deprecated in 2.13, yet still the loader
                module = torch.jit.load(str(path), map_location="cpu")
            return export_module(module, shapes, "torchscript"), shapes, "torchscript", module
        if not any(n.endswith("/data.pkl") for n in names):
            raise ModelLoadError(f"{corrupt}: a zip file, but neither TorchScript nor torch.save")
    elif data[:1] != b"\x80":  # legacy (non-zip) torch.save files are a bare pickle stream
        raise ModelLoadError(f"{corrupt}: neither a zip archive nor a pickle")
    try:
        obj = torch.load(str(path), weights_only=True, map_location="cpu")
    except pickle.UnpicklingError:  # the safe unpickler met a class: a pickled module (or other objects)
        if not trust:
            raise ModelLoadError(
                f"{path.name} is a pickled nn.Module (torch.save(model)); unpickling can execute arbitrary "
                f"code: pass --trust-pickle (API: trust_pickle=True) if you trust the file, or {SAVE_HINT}"
            ) from None
        with failing_as(f"cannot unpickle {path.name}"), _quiet():
            obj = torch.load(str(path), weights_only=False, map_location="cpu")
    except Exception as e:
        raise ModelLoadError(f"{corrupt}: {first_line(e)}") from e
    if isinstance(obj, torch.nn.Module):
        return export_module(obj, shapes, "pickled nn.Module"), shapes, "pickled nn.Module", obj
    if isinstance(obj, dict):
        raise ModelLoadError(
            f"{path.name} holds weights only (a state_dict), no architecture; {SAVE_HINT}, "
            "or pass the nn.Module to accelc.compile()"
        )
    raise ModelLoadError(f"{path.name} holds a {type(obj).__name__}, not a model; {SAVE_HINT}")


def load_exported(path: Path, shapes: Shapes) -> tuple[onnx.ModelProto, Shapes, Any, int | None]:
    """torch.export archive -> ONNX: a static program is traced to opset 13, a dynamic one goes via dynamo. Also
    returns the program's module and the batch it runs at (None: any)."""
    import torch

    with failing_as(f"{path.name} is not a readable torch.export archive"):
        ep = torch.export.load(str(path))
    user = set(ep.graph_signature.user_inputs)
    vals = [n.meta.get("val") for n in ep.graph.nodes if n.op == "placeholder" and n.name in user]
    if not all(isinstance(v, torch.Tensor) and v.ndim for v in vals):
        raise ModelLoadError(f"{path.name}: accelc supports non-scalar tensor inputs only")
    dynamic = any(not isinstance(d, int) for v in vals for d in v.shape)
    examples = (ep.example_inputs or ((), {}))[0]
    if dynamic and shapes is None and len(examples) == len(vals):  # a symbolic batch is reported as 1
        pairs = zip(vals, examples, strict=True)
        shapes = [(t.shape[0] if isinstance(v.shape[0], int) else 1, *t.shape[1:]) for v, t in pairs]
    if not dynamic:
        exported = [tuple(v.shape) for v in vals]
        if shapes not in (None, exported):  # a static program runs at its exported shapes only
            raise ModelLoadError(f"{path.name} was exported for input shape {exported}, not {shapes}")
        # ExportedProgram.module() refuses .eval()/.train(), which the TorchScript exporter calls, so trace it
        # first. Tracing bakes sizes in, hence static shapes (no dynamic batch axis is declared).
        try:
            dummies = tuple(torch.randn(s).to(v.dtype) for s, v in zip(exported, vals, strict=True))
            with _quiet(), torch.no_grad():
                traced = torch.jit.trace(ep.module(), dummies)
            return export_module(traced, exported, "torch.export", dummies), exported, ep.module(), exported[0][0]
        except Exception:
            pass  # fall through to the dynamo exporter, which understands ExportedPrograms natively
    with failing_as("torch.onnx cannot export the torch.export model"), _quiet():
        proto = torch.onnx.export(ep, dynamo=True, verbose=False).model_proto
    static = None if dynamic else tuple(vals[0].shape)[0]
    return proto, shapes, ep.module(), static


def export_module(module: Any, shapes: Shapes, kind: str, dummies: tuple = ()) -> onnx.ModelProto:
    """Export a torch module to ONNX with the TorchScript exporter (opset 13). The batch axis is dynamic,
    unless the caller passes the dummy inputs of a trace (whose sizes are baked in)."""
    import torch

    if not isinstance(module, torch.nn.Module):
        raise ModelLoadError(f"cannot load a {type(module).__name__}: expected a model path or an nn.Module")
    if shapes is None:
        raise ModelLoadError(f"input shape is required for {kind} models: {SHAPE_HINT}")
    batch_axis, dummies = not dummies, dummies or tuple(torch.randn(s) for s in shapes)
    was_training = module.training
    module.eval()  # export inference behaviour (Dropout off, BatchNorm running stats); restored below
    try:
        with failing_as(f"the {kind} model fails on input shape {shapes}"), torch.no_grad():
            out = module(*dummies)  # one forward pass checks the shapes and counts the outputs
        outs = list(out) if isinstance(out, (tuple, list)) else [out]
        ins = ["input"] if len(dummies) == 1 else [f"input{i}" for i in range(len(dummies))]
        out_names = ["output"] if len(outs) == 1 else [f"output{i}" for i in range(len(outs))]
        batched = ins + [n for n, t in zip(out_names, outs, strict=True) if getattr(t, "ndim", 1)]
        axes = {n: {0: "batch"} for n in batched} if batch_axis else None
        buf = io.BytesIO()
        with failing_as(f"torch.onnx cannot export the {kind} model"), _quiet():
            torch.onnx.export(
                module, dummies, buf, dynamo=False, opset_version=MIN_OPSET, input_names=ins,
                output_names=out_names, dynamic_axes=axes, do_constant_folding=True,
            )  # fmt: skip
    finally:
        module.train(was_training)
    return onnx.load_from_string(buf.getvalue())


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence torch's deprecation warnings and exporter chatter: accelc reports problems as errors."""
    import torch

    level = (logger := logging.getLogger("torch.onnx")).level
    with warnings.catch_warnings(), contextlib.ExitStack() as stack:
        warnings.simplefilter("ignore")
        # torch 2.13's TorchScript exporter turns its C++ log on for every export (it tests a function object
        # for truth), then dumps the whole IR graph to stdout when an op fails to export: keep that log off.
        with contextlib.suppress(ImportError, AttributeError):
            from torch.onnx._internal.torchscript_exporter import utils

            no_log = mock.patch.object(utils, "setup_onnx_logging", lambda _: contextlib.nullcontext())
            stack.enter_context(no_log)
            torch._C._jit_set_onnx_log_enabled(False)
        logger.setLevel(logging.ERROR)
        stack.callback(logger.setLevel, level)
        yield
