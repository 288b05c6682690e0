"""From an ONNX proto to what the pipeline needs: opset >= 13, static input shapes but a free batch (a batch fixed
at export stays as exported here: canonicalization frees it where no op mixes samples, and LoadedModel.batch
says what became of it), the interface (inputs/outputs as TensorSpecs), an onnx-ir model."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

import onnx  # also imports onnx.shape_inference and onnx.version_converter
import onnx_ir as ir

from accelc.errors import ModelLoadError
from accelc.frontend.common import MIN_OPSET, SHAPE_HINT, Shape, Shapes, failing_as
from accelc.frontend.sanity import check_loaded
from accelc.frontend.source_model import SourceRunner
from accelc.spec import BatchNote, TensorSpec, layout_for_rank


@dataclass
class LoadedModel:
    """An imported model plus what the rest of the pipeline needs to know about its interface."""

    model: ir.Model  # opset >= 13; graph inputs carry static shapes except possibly a symbolic batch dim (a
    # batch fixed at export stays static here; canonicalization frees it where no op mixes samples)
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    source: str  # path string, or "<nn.Module ClassName>"
    sha256: str  # of the source file; for an nn.Module, of the exported ONNX bytes
    kind: str  # "onnx" | "torchscript" | "torch.export" | "nn.Module" | "pickled nn.Module"
    # The source model itself, runnable (torch eager, Keras, ONNX Runtime on the file as given, qonnx's executor
    # for a QONNX file): the self-check compares it with the canonical graph. None where nothing can run it.
    run_source: SourceRunner | None = None

    @property
    def batch(self) -> BatchNote | None:
        """A batch baked into the inputs at export (their dim 0 stays static at load): once canonicalization ran,
        whether it was freed (free-batch) or is kept, and which node needs it; None for a symbolic batch."""
        return BatchNote.from_metadata(self.model.metadata_props)


def finish(proto: onnx.ModelProto, shapes: Shapes, src: str, sha: str, kind: str) -> LoadedModel:
    """Bring the proto to opset >= 13, fix its input shapes, describe its interface, convert to onnx-ir."""
    name = src if kind == "nn.Module" else Path(src).name
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), MIN_OPSET)
    if opset < MIN_OPSET:
        from accelc.frontend.opset import convert_standard_part  # custom-domain nodes pass through

        with failing_as(f"{name} uses opset {opset}; re-export it with opset_version>={MIN_OPSET}"):
            proto = convert_standard_part(proto, MIN_OPSET)
    inits = {t.name for t in proto.graph.initializer}
    real = [v for v in proto.graph.input if v.name not in inits]
    if len(real) < len(proto.graph.input):  # old-style weights listed as inputs are not model inputs
        del proto.graph.input[:]
        proto.graph.input.extend(real)
        proto.ir_version = max(proto.ir_version, 4)
    if shapes is not None and len(shapes) != len(real):
        raise ModelLoadError(f"{name} has {len(real)} input(s) but {len(shapes)} input shape(s) were given")
    inputs = [_fix_input(v, shapes[i] if shapes else None, name) for i, v in enumerate(real)]
    check_loaded(proto, name)  # huge inputs, NaN/Inf weights: refused before any work
    outputs = _output_specs(proto, inputs)
    return LoadedModel(ir.serde.deserialize_model(proto), inputs, outputs, src, sha, kind)


def _fix_input(value: onnx.ValueInfoProto, shape: Shape | None, name: str) -> TensorSpec:
    """Make the graph input's dims static, keeping a symbolic batch dim (any batch at run time). A given shape
    must match the model's dims after the batch; a batch the model was exported with is kept (not the given one)."""
    dims = value.type.tensor_type.shape.dim
    static = tuple(d.dim_value if d.HasField("dim_value") else None for d in dims)
    if shape is None:
        unknown = [i for i, d in enumerate(static) if d is None and i > 0]
        if unknown or not static:
            what = f"unknown dims {unknown}" if unknown else "no shape"
            raise ModelLoadError(f"{name}: input '{value.name}' has {what}; {SHAPE_HINT}")
        shape = (static[0] or 1, *static[1:])  # a symbolic batch is reported as 1
    elif static and (
        len(static) != len(shape) or any(s not in (None, g) for s, g in zip(static[1:], shape[1:], strict=True))
    ):
        shown = tuple("?" if s is None else s for s in static)
        raise ModelLoadError(f"{name}: input '{value.name}' has shape {shown}, but {shape} was given")
    elif static and static[0] is not None:
        shape = (static[0], *shape[1:])  # the batch it was exported with: canonicalization frees it if it can
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
