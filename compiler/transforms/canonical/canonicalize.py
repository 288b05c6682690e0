"""Canonicalization: the fixed pipeline every model goes through before the user's passes.

Exporters (TorchScript, torch.export/dynamo, Keras 3, tf2onnx, old opsets) write the same layers in many forms;
each pass here turns one family of those forms into the one the rest of accelc lowers, exactly.
"""

from __future__ import annotations

import onnx_ir as ir

from accelc.passes import AccelcPass, PassContext, PassResult, Pipeline, register
from accelc.transforms.canonical.absorb_input_layout import AbsorbInputLayout
from accelc.transforms.canonical.constants_to_initializers import ConstantsToInitializers
from accelc.transforms.canonical.exporter_cleanup import ExporterCleanup
from accelc.transforms.canonical.fold_batchnorm import FoldBatchNorm
from accelc.transforms.canonical.fold_channel_affine import FoldChannelAffine
from accelc.transforms.canonical.fold_constants import FoldConstants
from accelc.transforms.canonical.fold_input_scale import FoldInputScale
from accelc.transforms.canonical.fold_shape_arithmetic import FoldShapeArithmetic
from accelc.transforms.canonical.free_batch import FreeBatch
from accelc.transforms.canonical.infer_shapes import InferShapes
from accelc.transforms.canonical.name_nodes import NameNodes
from accelc.transforms.canonical.normalize_opset import NormalizeOpset
from accelc.transforms.canonical.reduce_to_pool import ReduceToPool
from accelc.transforms.canonical.remove_noop_casts import RemoveNoOpCasts
from accelc.transforms.canonical.remove_noops import RemoveNoOps
from accelc.transforms.canonical.reshape_to_flatten import ReshapeToFlatten
from accelc.transforms.canonical.sink_transposes import SinkTransposes
from accelc.transforms.canonical.transpose_into_dense import TransposeIntoDense
from accelc.transforms.canonical.transpose_quantized_weight import TransposeQuantizedWeight
from accelc.transforms.canonical.unsqueezed_batchnorm import UnsqueezedBatchNorm


def canonical_passes() -> list[type[AccelcPass]]:
    """The passes, in the order they run. Each slot comment says what belongs there."""
    return [
        NormalizeOpset,
        RemoveNoOps,
        # slot: constants -> initializers (Constant, ConstantOfShape)
        ConstantsToInitializers,
        TransposeQuantizedWeight,  # Transpose(DQ(Q(W))) (TorchScript's bias-free Linear) -> DQ(Q(W^T)), exact
        # slot: fixed-batch exports -> a free batch
        FreeBatch,
        # slot: exporter clean-up (layout Transposes, Casts, shape chains)
        ExporterCleanup,
        FoldConstants,
        # slot: shape arithmetic, batch-free Reshape -> Flatten, no-op Casts, older exporters' forms
        ConstantsToInitializers,  # the Constant nodes onnxscript's folder writes (Shape/Gather values)
        FoldShapeArithmetic,
        ConstantsToInitializers,  # a ConstantOfShape whose shape was just folded
        ReshapeToFlatten,
        RemoveNoOpCasts,
        UnsqueezedBatchNorm,
        FoldBatchNorm,
        FoldConstants,
        # slot: input layout (NHWC input Transpose absorbed), Transpose before Flatten -> Dense
        SinkTransposes,
        AbsorbInputLayout,
        TransposeIntoDense,
        FoldChannelAffine,  # a decomposed BatchNorm (Keras), a bias Add freed of its Transposes
        # slot: reductions -> global pooling, input normalization folded
        ReduceToPool,
        FoldInputScale,
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
