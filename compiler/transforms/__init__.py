"""Built-in passes; importing this package registers them by name."""

from accelc.transforms.canonicalize import Canonicalize
from accelc.transforms.depthwise import Depthwise
from accelc.transforms.fold_batchnorm import FoldBatchNorm
from accelc.transforms.fold_constants import FoldConstants
from accelc.transforms.infer_shapes import InferShapes
from accelc.transforms.name_nodes import NameNodes
from accelc.transforms.normalize_opset import NormalizeOpset
from accelc.transforms.prune import Prune
from accelc.transforms.quantize import Quantize
from accelc.transforms.remove_noops import RemoveNoOps

__all__ = [
    "Canonicalize",
    "Depthwise",
    "FoldBatchNorm",
    "FoldConstants",
    "InferShapes",
    "NameNodes",
    "NormalizeOpset",
    "Prune",
    "Quantize",
    "RemoveNoOps",
]
