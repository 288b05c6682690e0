"""Model import: ONNX, TorchScript, torch.export and nn.Module sources -> one onnx-ir model (opset >= 13).

Torch is imported lazily so that loading an .onnx file never pays for (or needs) it. Pickled modules are
only unpickled when the caller says it trusts the file, because unpickling can run arbitrary code.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import pickle
import warnings
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import onnx  # also imports onnx.shape_inference and onnx.version_converter
import onnx_ir as ir

from accelc.errors import ModelLoadError
from accelc.spec import TensorSpec, layout_for_rank, parse_shape  # noqa: F401 - parse_shape is re-exported

MIN_OPSET = 13
_SHAPE_HINT = "pass --input-shape 1,1,28,28 (API: input_shape=(1,1,28,28))"
_SAVE_HINT = "save it with torch.jit.script(model).save(path) or torch.export.save(program, path)"
_SUFFIXES = ".onnx, .pt/.pth (TorchScript), or .pt2 (torch.export)"

Shape = tuple[int, ...]
Shapes = list[Shape] | None  # one shape per graph input; None: take them from the model


@dataclass
class LoadedModel:
    """An imported model plus what the rest of the pipeline needs to know about its interface."""

    model: ir.Model  # opset >= 13; graph inputs carry static shapes except possibly a symbolic batch dim
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    source: str  # path string, or "<nn.Module ClassName>"
    sha256: str  # of the source file; for an nn.Module, of the exported ONNX bytes
    kind: str  # "onnx" | "torchscript" | "torch.export" | "nn.Module" | "pickled nn.Module"


def load(
    source: str | os.PathLike | Any,
    input_shape: Sequence[int] | Sequence[Sequence[int]] | str | None = None,
    trust_pickle: bool = False,
) -> LoadedModel:
    """Import a model file (.onnx, .pt/.pth, .pt2) or an nn.Module; failures raise a ModelLoadError."""
    shapes = _normalize_shapes(input_shape)
    if not isinstance(source, (str, os.PathLike)):
        proto = _export_module(source, shapes, "nn.Module")
        sha = hashlib.sha256(proto.SerializeToString()).hexdigest()
        return _finish(proto, shapes, f"<nn.Module {type(source).__name__}>", sha, "nn.Module")
    path = Path(source)
    if not path.is_file():
        raise ModelLoadError(f"no such file: '{path}'")
    suffix = path.suffix.lower()
    if suffix not in (".onnx", ".pt", ".pth", ".pt2"):
        raise ModelLoadError(f"unsupported model file '{path.name}': expected {_SUFFIXES}")
    data = path.read_bytes()
    if suffix == ".onnx":
        with _failing_as(f"{path.name} is not a valid ONNX model (expected an ONNX ModelProto file)"):
            proto, kind = onnx.load(str(path)), "onnx"  # by path, so that external data next to it is found
            if not proto.graph.node or not proto.graph.output:  # random bytes can parse as an empty proto
                raise ValueError("the graph is empty")
        proto, kind = _from_qonnx(proto, path.name) if _is_qonnx(proto) else (proto, kind)
    elif suffix == ".pt2":
        (proto, shapes), kind = _load_exported(path, shapes), "torch.export"
    else:
        proto, shapes, kind = _load_pt(path, data, shapes, trust_pickle)
    return _finish(proto, shapes, str(path), hashlib.sha256(data).hexdigest(), kind)


def _is_qonnx(proto: onnx.ModelProto) -> bool:
    return any(n.op_type in ("Quant", "IntQuant", "BipolarQuant") and n.domain.startswith("qonnx")
               for n in proto.graph.node)


def _from_qonnx(proto: onnx.ModelProto, name: str) -> tuple[onnx.ModelProto, str]:
    """QONNX Quant nodes (Brevitas' export) as the equivalent QuantizeLinear -> Clip -> DequantizeLinear graph:
    ONNX Runtime runs it (the reference, cpu/cuda), and the fpga target turns it back into the same Quant
    nodes and bit widths."""
    from accelc.frontend.qonnx import qonnx_to_qcdq

    with _failing_as(f"{name}: QONNX model with no ONNX equivalent"):
        return qonnx_to_qcdq(proto), "qonnx"


def _first_line(e: BaseException) -> str:
    """Exception text squeezed to one line: the CLI prints errors as a single line."""
    return next((ln.strip() for ln in str(e).splitlines() if ln.strip()), type(e).__name__)


def _normalize_shapes(shape: Sequence[int] | Sequence[Sequence[int]] | str | None) -> Shapes:
    if shape is None or isinstance(shape, str):
        return None if shape is None else [parse_shape(shape)]
    items = list(shape)
    shapes = [tuple(s) for s in items] if items and isinstance(items[0], Sequence) else [tuple(items)]
    for s in shapes:
        if not s or not all(isinstance(d, int) and d > 0 for d in s):
            raise ModelLoadError(f"invalid input shape {s}: expected positive integers like (1,1,28,28)")
    return shapes


@contextlib.contextmanager
def _failing_as(what: str) -> Iterator[None]:
    """Turn any failure inside into a one-line ModelLoadError "<what>: <first line of the cause>"."""
    try:
        yield
    except ModelLoadError:
        raise
    except Exception as e:
        raise ModelLoadError(f"{what}: {_first_line(e)}") from e


def _load_pt(path: Path, data: bytes, shapes: Shapes, trust: bool) -> tuple[onnx.ModelProto, Shapes, str]:
    """Classify a .pt/.pth file from its zip listing, without unpickling anything, then import it."""
    import torch

    corrupt = f"{path.name} is not a readable PyTorch archive (truncated or corrupt?)"
    if data[:4] == b"PK\x03\x04":
        with _failing_as(corrupt):
            names = zipfile.ZipFile(io.BytesIO(data)).namelist()
        if any("/code/" in n for n in names) and any(n.endswith("/constants.pkl") for n in names):
            with _failing_as(corrupt), _quiet():  # torch.jit.load is deprecated in 2.13, yet still the loader
                module = torch.jit.load(str(path), map_location="cpu")
            return _export_module(module, shapes, "torchscript"), shapes, "torchscript"
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
                f"code: pass --trust-pickle (API: trust_pickle=True) if you trust the file, or {_SAVE_HINT}"
            ) from None
        with _failing_as(f"cannot unpickle {path.name}"), _quiet():
            obj = torch.load(str(path), weights_only=False, map_location="cpu")
    except Exception as e:
        raise ModelLoadError(f"{corrupt}: {_first_line(e)}") from e
    if isinstance(obj, torch.nn.Module):
        return _export_module(obj, shapes, "pickled nn.Module"), shapes, "pickled nn.Module"
    if isinstance(obj, dict):
        raise ModelLoadError(
            f"{path.name} holds weights only (a state_dict), no architecture; {_SAVE_HINT}, "
            "or pass the nn.Module to accelc.compile()"
        )
    raise ModelLoadError(f"{path.name} holds a {type(obj).__name__}, not a model; {_SAVE_HINT}")


def _load_exported(path: Path, shapes: Shapes) -> tuple[onnx.ModelProto, Shapes]:
    """torch.export archive -> ONNX: a static program is traced to opset 13, a dynamic one goes via dynamo."""
    import torch

    with _failing_as(f"{path.name} is not a readable torch.export archive"):
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
            return _export_module(traced, exported, "torch.export", dummies), exported
        except Exception:
            pass  # fall through to the dynamo exporter, which understands ExportedPrograms natively
    with _failing_as("torch.onnx cannot export the torch.export model"), _quiet():
        return torch.onnx.export(ep, dynamo=True, verbose=False).model_proto, shapes


def _export_module(module: Any, shapes: Shapes, kind: str, dummies: tuple = ()) -> onnx.ModelProto:
    """Export a torch module to ONNX with the TorchScript exporter (opset 13). The batch axis is dynamic,
    unless the caller passes the dummy inputs of a trace (whose sizes are baked in)."""
    import torch

    if not isinstance(module, torch.nn.Module):
        raise ModelLoadError(f"cannot load a {type(module).__name__}: expected a model path or an nn.Module")
    if shapes is None:
        raise ModelLoadError(f"input shape is required for {kind} models: {_SHAPE_HINT}")
    batch_axis, dummies = not dummies, dummies or tuple(torch.randn(s) for s in shapes)
    was_training = module.training
    module.eval()  # export inference behaviour (Dropout off, BatchNorm running stats); restored below
    try:
        with _failing_as(f"the {kind} model fails on input shape {shapes}"), torch.no_grad():
            out = module(*dummies)  # one forward pass checks the shapes and counts the outputs
        outs = list(out) if isinstance(out, (tuple, list)) else [out]
        ins = ["input"] if len(dummies) == 1 else [f"input{i}" for i in range(len(dummies))]
        out_names = ["output"] if len(outs) == 1 else [f"output{i}" for i in range(len(outs))]
        batched = ins + [n for n, t in zip(out_names, outs, strict=True) if getattr(t, "ndim", 1)]
        axes = {n: {0: "batch"} for n in batched} if batch_axis else None
        buf = io.BytesIO()
        with _failing_as(f"torch.onnx cannot export the {kind} model"), _quiet():
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


def _finish(proto: onnx.ModelProto, shapes: Shapes, src: str, sha: str, kind: str) -> LoadedModel:
    """Bring the proto to opset >= 13, fix its input shapes, describe its interface, convert to onnx-ir."""
    name = src if kind == "nn.Module" else Path(src).name
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), MIN_OPSET)
    if opset < MIN_OPSET:
        from accelc.transforms.canonical.normalize_opset import convert_opset  # keeps Upsample's sampling

        with _failing_as(f"{name} uses opset {opset}; re-export it with opset_version>={MIN_OPSET}"):
            proto = convert_opset(proto, MIN_OPSET)
    inits = {t.name for t in proto.graph.initializer}
    real = [v for v in proto.graph.input if v.name not in inits]
    if len(real) < len(proto.graph.input):  # old-style weights listed as inputs are not model inputs
        del proto.graph.input[:]
        proto.graph.input.extend(real)
        proto.ir_version = max(proto.ir_version, 4)
    if shapes is not None and len(shapes) != len(real):
        raise ModelLoadError(f"{name} has {len(real)} input(s) but {len(shapes)} input shape(s) were given")
    inputs = [_fix_input(v, shapes[i] if shapes else None, name) for i, v in enumerate(real)]
    outputs = _output_specs(proto, inputs)
    return LoadedModel(ir.serde.deserialize_model(proto), inputs, outputs, src, sha, kind)


def _fix_input(value: onnx.ValueInfoProto, shape: Shape | None, name: str) -> TensorSpec:
    """Make the graph input's dims static, keeping a symbolic batch dim (any batch at run time)."""
    dims = value.type.tensor_type.shape.dim
    static = tuple(d.dim_value if d.HasField("dim_value") else None for d in dims)
    if shape is None:
        unknown = [i for i, d in enumerate(static) if d is None and i > 0]
        if unknown or not static:
            what = f"unknown dims {unknown}" if unknown else "no shape"
            raise ModelLoadError(f"{name}: input '{value.name}' has {what}; {_SHAPE_HINT}")
        shape = (static[0] or 1, *static[1:])  # a symbolic batch is reported as 1
    elif static and (
        len(static) != len(shape) or any(s not in (None, g) for s, g in zip(static, shape, strict=True))
    ):
        shown = tuple("?" if s is None else s for s in static)
        raise ModelLoadError(f"{name}: input '{value.name}' has shape {shown}, but {shape} was given")
    for i, size in enumerate(shape):
        dim = dims[i] if i < len(dims) else dims.add()
        if i == 0 and (not static or static[0] is None):
            dim.dim_param = dim.dim_param or "batch"
        else:
            dim.dim_value = size
    return _spec(value, shape)


def _spec(value: onnx.ValueInfoProto, shape: Shape) -> TensorSpec:
    elem = value.type.tensor_type.elem_type
    dtype = onnx.helper.tensor_dtype_to_np_dtype(elem).name if elem else "float32"
    return TensorSpec(value.name, tuple(shape), dtype, layout_for_rank(len(shape)))


def _output_specs(proto: onnx.ModelProto, inputs: list[TensorSpec]) -> list[TensorSpec]:
    """Output shapes from ONNX shape inference on a copy whose inputs are all static (unknown dims: -1)."""
    copy = onnx.ModelProto()
    copy.CopyFrom(proto)
    for value, spec in zip(copy.graph.input, inputs, strict=True):
        for dim, size in zip(value.type.tensor_type.shape.dim, spec.shape, strict=True):
            dim.dim_value = size
    with contextlib.suppress(Exception):  # best effort: otherwise the declared output shapes stand
        copy = onnx.shape_inference.infer_shapes(copy)
    outputs = copy.graph.output
    return [_spec(v, tuple(d.dim_value or -1 for d in v.type.tensor_type.shape.dim)) for v in outputs]
