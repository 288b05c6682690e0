"""Built-in passes; importing this package registers them by name."""

from accelc.transforms.activation_attrs import ActivationAttrs
from accelc.transforms.arith_constants import ArithConstants
from accelc.transforms.avgpool_to_conv import AvgPoolToConv
from accelc.transforms.canonicalize import Canonicalize
from accelc.transforms.clip_bounds import ClipBounds
from accelc.transforms.conv_transpose import ConvTransposeToConv
from accelc.transforms.depthwise import Depthwise
from accelc.transforms.dilated_conv import DilatedConv
from accelc.transforms.explicit_pads import ExplicitPads
from accelc.transforms.fold_batchnorm import FoldBatchNorm
from accelc.transforms.fold_constants import FoldConstants
from accelc.transforms.fold_pad import FoldPad
from accelc.transforms.global_pool import GlobalPool
from accelc.transforms.infer_shapes import InferShapes
from accelc.transforms.name_nodes import NameNodes
from accelc.transforms.normalize_opset import NormalizeOpset
from accelc.transforms.pool_ceil import PoolCeil
from accelc.transforms.prelu import PReluToRelu
from accelc.transforms.prune import Prune
from accelc.transforms.quantize import Quantize
from accelc.transforms.recover import Recover
from accelc.transforms.remove_noops import RemoveNoOps
from accelc.transforms.resize_constants import ResizeConstants

__all__ = [
    "ActivationAttrs",
    "ArithConstants",
    "AvgPoolToConv",
    "Canonicalize",
    "ClipBounds",
    "ConvTransposeToConv",
    "Depthwise",
    "DilatedConv",
    "ExplicitPads",
    "FoldBatchNorm",
    "FoldConstants",
    "FoldPad",
    "GlobalPool",
    "InferShapes",
    "NameNodes",
    "NormalizeOpset",
    "PoolCeil",
    "PReluToRelu",
    "Prune",
    "Quantize",
    "Recover",
    "RemoveNoOps",
    "ResizeConstants",
]
