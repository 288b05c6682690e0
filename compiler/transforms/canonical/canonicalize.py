"""Canonicalization: the fixed pipeline every model goes through before the user's passes.

Exporters (TorchScript, torch.export/dynamo, Keras 3, tf2onnx, old opsets) write the same layers in many forms;
each pass here turns one family of those forms into the one the rest of accelc lowers, exactly.
"""

from __future__ import annotations

import onnx_ir as ir

from accelc.passes import AccelcPass, PassContext, PassResult, Pipeline, register
from accelc.transforms.canonical.fold_batchnorm import FoldBatchNorm
from accelc.transforms.canonical.fold_constants import FoldConstants
from accelc.transforms.canonical.infer_shapes import InferShapes
from accelc.transforms.canonical.name_nodes import NameNodes
from accelc.transforms.canonical.normalize_opset import NormalizeOpset
from accelc.transforms.canonical.remove_noops import RemoveNoOps


def canonical_passes() -> list[type[AccelcPass]]:
    """The passes, in the order they run. Each slot comment says what belongs there."""
    return [
        NormalizeOpset,
        RemoveNoOps,
        # slot: constants -> initializers (Constant, ConstantOfShape)
        # slot: fixed-batch exports -> a free batch
        # slot: exporter clean-up (layout Transposes, Casts, shape chains)
        FoldConstants,
        # slot: shape arithmetic, batch-free Reshape -> Flatten, no-op Casts, older exporters' forms
        FoldBatchNorm,
        FoldConstants,
        # slot: input layout (NHWC input Transpose absorbed), Transpose before Flatten -> Dense
        # slot: reductions -> global pooling, input normalization folded
        InferShapes,
        NameNodes,
    ]


@register
class Canonicalize(AccelcPass):
    """The canonical passes, in order (canonical_passes())."""

    name = "canonicalize"

    def __init__(self, context: PassContext | None = None) -> None:
        super().__init__(context)
        self.pipeline = Pipeline([p(context) for p in canonical_passes()], context)

    def call(self, model: ir.Model) -> PassResult:
        result = self.pipeline(model)
        return PassResult(model, result.modified, stats=result.stats, warnings=result.warnings)

    @property
    def records(self):
        return self.pipeline.records
