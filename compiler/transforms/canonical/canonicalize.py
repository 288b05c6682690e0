"""Canonicalization: the fixed pipeline every model goes through before the user's passes."""

from __future__ import annotations

import onnx_ir as ir

from accelc.passes import AccelcPass, PassContext, PassResult, Pipeline, register
from accelc.transforms.canonical.fold_batchnorm import FoldBatchNorm
from accelc.transforms.canonical.fold_constants import FoldConstants
from accelc.transforms.canonical.infer_shapes import InferShapes
from accelc.transforms.canonical.name_nodes import NameNodes
from accelc.transforms.canonical.normalize_opset import NormalizeOpset
from accelc.transforms.canonical.remove_noops import RemoveNoOps


@register
class Canonicalize(AccelcPass):
    """normalize-opset, remove-noops, fold-constants, fold-batchnorm, fold-constants, infer-shapes, names."""

    name = "canonicalize"

    def __init__(self, context: PassContext | None = None) -> None:
        super().__init__(context)
        self.pipeline = Pipeline(
            [
                NormalizeOpset(context),
                RemoveNoOps(context),
                FoldConstants(context),
                FoldBatchNorm(context),
                FoldConstants(context),
                InferShapes(context),
                NameNodes(context),
            ],
            context,
        )

    def call(self, model: ir.Model) -> PassResult:
        result = self.pipeline(model)
        return PassResult(model, result.modified, stats=result.stats, warnings=result.warnings)

    @property
    def records(self):
        return self.pipeline.records
