"""legalize-fpga: exact rewrites that turn ONNX ops hls4ml lacks or mistranslates into ones it lowers right.

The fpga target runs this pipeline on a copy of the model before its support check; the artifact's
model.onnx stays the graph before legalization, so the compile self-check judges these rewrites too.
Every rewrite here must be exact in float (the same function up to float rounding). A rewritten node
keeps its name only when its replacement produces the same tensor, so per-layer verification still
lines hls4ml's layers up with the original graph. The rewrites are ordinary passes, usable elsewhere
(`--pass legalize-fpga`).
"""

from __future__ import annotations

import onnx_ir as ir

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
from accelc.hls.legalize.pool_ceil import PoolCeil
from accelc.hls.legalize.prelu import PReluToRelu
from accelc.hls.legalize.resize_constants import ResizeConstants
from accelc.hls.legalize.spatial_defaults import SpatialDefaults
from accelc.passes import AccelcPass, PassContext, PassResult, Pipeline, register
from accelc.transforms.canonical.infer_shapes import InferShapes

# The rewrite passes, in the order they run (each module holds one idea; see their docstrings).
# Shape inference runs first and last: several rewrites need static shapes to be exact.
FPGA_REWRITES: list[type[AccelcPass]] = [
    # Spatial ops: explicit pads first (later rewrites read them), pools become Convs before Pads fold into Convs.
    ExplicitPads, ConvTransposeToConv, GlobalPool, PoolCeil, AvgPoolToConv, FoldPad, DilatedConv, ResizeConstants,
    # Elementwise: PRelu may emit Mul-by-constant nodes, which arith-constants then puts in hls4ml's form.
    ActivationAttrs, ClipBounds, PReluToRelu, ArithConstants,
    # The forms hls4ml's parser takes, on the final ops: grouped Convs (avgpool-to-conv makes depthwise ones) as
    # dense ones, Gemm as MatMul + Add, and last every spatial attribute spelled out.
    ExpandGroupedConv, GemmToMatMul, SpatialDefaults,
]


@register
class LegalizeFpga(AccelcPass):
    name = "legalize-fpga"

    def __init__(self, context: PassContext | None = None) -> None:
        super().__init__(context)
        self.pipeline = Pipeline([InferShapes(context), *(p(context) for p in FPGA_REWRITES), InferShapes(context)],
                                 context)

    def call(self, model: ir.Model) -> PassResult:
        result = self.pipeline(model)
        rewrites = {r.name: r.stats for r in self.pipeline.records if r.modified and r.name != "infer-shapes"}
        return PassResult(model, result.modified, stats=rewrites, warnings=result.warnings)

    @property
    def records(self):
        return self.pipeline.records
