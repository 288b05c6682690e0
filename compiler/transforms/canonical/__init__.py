"""Canonicalization: target-neutral, exact passes every imported graph goes through (accelc.compile runs
`canonicalize` before the user's passes)."""

from accelc.transforms.canonical.absorb_input_layout import AbsorbInputLayout
from accelc.transforms.canonical.canonicalize import Canonicalize
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

__all__ = ["Canonicalize", "ConstantsToInitializers", "FoldShapeArithmetic", "RemoveNoOpCasts", "ReshapeToFlatten",
           "UnsqueezedBatchNorm", "FoldBatchNorm", "FoldConstants", "FoldInputScale", "InferShapes", "NameNodes",
           "NormalizeOpset", "ReduceToPool", "RemoveNoOps", "ExporterCleanup", "SinkTransposes", "AbsorbInputLayout",
           "TransposeIntoDense", "TransposeQuantizedWeight", "FoldChannelAffine", "FreeBatch"]
