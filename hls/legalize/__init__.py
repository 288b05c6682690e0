"""legalize-fpga: exact rewrites into the forms hls4ml lowers right, one pass per file (see pipeline.py)."""

from accelc.hls.legalize.activation_attrs import ActivationAttrs
from accelc.hls.legalize.arith_constants import ArithConstants
from accelc.hls.legalize.avgpool_to_conv import AvgPoolToConv
from accelc.hls.legalize.clip_bounds import ClipBounds
from accelc.hls.legalize.conv_transpose import ConvTransposeToConv
from accelc.hls.legalize.dilated_conv import DilatedConv
from accelc.hls.legalize.expand_grouped_conv import ExpandGroupedConv
from accelc.hls.legalize.explicit_pads import ExplicitPads
from accelc.hls.legalize.fold_pad import FoldPad
from accelc.hls.legalize.gemm_to_matmul import GemmToMatMul
from accelc.hls.legalize.global_pool import GlobalPool
from accelc.hls.legalize.pipeline import FPGA_REWRITES, LegalizeFpga
from accelc.hls.legalize.pool_ceil import PoolCeil
from accelc.hls.legalize.prelu import PReluToRelu
from accelc.hls.legalize.resize_constants import ResizeConstants
from accelc.hls.legalize.spatial_defaults import SpatialDefaults

__all__ = ["FPGA_REWRITES", "ActivationAttrs", "ArithConstants", "AvgPoolToConv", "ClipBounds", "ConvTransposeToConv",
           "DilatedConv", "ExpandGroupedConv", "ExplicitPads", "FoldPad", "GemmToMatMul", "GlobalPool", "LegalizeFpga",
           "PReluToRelu", "PoolCeil", "ResizeConstants", "SpatialDefaults"]
