"""Canonicalization: target-neutral, exact passes every imported graph goes through (accelc.compile runs
`canonicalize` before the user's passes)."""

from accelc.transforms.canonical.canonicalize import Canonicalize
from accelc.transforms.canonical.fold_batchnorm import FoldBatchNorm
from accelc.transforms.canonical.fold_constants import FoldConstants
from accelc.transforms.canonical.infer_shapes import InferShapes
from accelc.transforms.canonical.name_nodes import NameNodes
from accelc.transforms.canonical.normalize_opset import NormalizeOpset
from accelc.transforms.canonical.remove_noops import RemoveNoOps

__all__ = ["Canonicalize", "FoldBatchNorm", "FoldConstants", "InferShapes", "NameNodes", "NormalizeOpset",
           "RemoveNoOps"]
