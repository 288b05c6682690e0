"""Fold BatchNormalization into the Conv/ConvTranspose/Gemm before it (onnxscript rewrite rules)."""

from __future__ import annotations

import onnx_ir as ir
from onnxscript import rewriter
from onnxscript.rewriter.rules.common import (
    fuse_batchnorm_into_conv_rule,
    fuse_batchnorm_into_conv_transpose_rule,
    fuse_batchnorm_into_gemm_rule,
)

from accelc.passes import AccelcPass, PassResult, register
from accelc.transforms.rewrite import op_counts


@register
class FoldBatchNorm(AccelcPass):
    name = "fold-batchnorm"

    def call(self, model: ir.Model) -> PassResult:
        before = op_counts(model).get("BatchNormalization", 0)
        rules = [fuse_batchnorm_into_conv_rule, fuse_batchnorm_into_conv_transpose_rule, fuse_batchnorm_into_gemm_rule]
        rewriter.rewrite(model, pattern_rewrite_rules=rules)
        after = op_counts(model).get("BatchNormalization", 0)
        warnings = []
        if after:
            # A BN with no producing Conv/Gemm (or one shared with another consumer) stays as it is.
            warnings.append(f"{after} BatchNormalization node(s) not preceded by a foldable Conv/Gemm were kept")
        return PassResult(model, after != before, stats={"folded": before - after, "kept": after}, warnings=warnings)
