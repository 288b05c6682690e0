"""Give every node and value a unique name: support reports and per-layer traces refer to them."""

from __future__ import annotations

import onnx_ir as ir
from onnx_ir.passes.common import NameFixPass

from accelc.passes import AccelcPass, PassResult, register


@register
class NameNodes(AccelcPass):
    name = "name-nodes"

    def call(self, model: ir.Model) -> PassResult:
        return PassResult(model, NameFixPass()(model).modified)
