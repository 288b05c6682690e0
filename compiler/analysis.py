"""Static figures of a graph: per-node output shape, parameter count and multiply-accumulates."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx_ir as ir


@dataclass
class NodeInfo:
    name: str
    op: str
    shape: list | None  # first output's shape, batch included
    params: int
    macs: int  # per sample


def _dims(value: ir.Value | None) -> list | None:
    if value is None or value.shape is None:
        return None
    return [d if isinstance(d, int) else str(d) for d in value.shape]


def _static(dims: list | None) -> list[int] | None:
    if dims is None or not all(isinstance(d, int) for d in dims[1:]):
        return None
    return [int(d) for d in dims[1:]]


def node_macs(node: ir.Node) -> int:
    """Multiply-accumulates per sample of a Conv/ConvTranspose/Gemm/MatMul node (0 for the rest)."""
    out = _static(_dims(node.outputs[0]))
    if out is None or len(node.inputs) < 2 or node.inputs[1] is None or node.inputs[1].shape is None:
        return 0
    w = [int(d) for d in node.inputs[1].shape if isinstance(d, int)]
    if node.op_type == "Conv" and len(w) >= 3:
        # every output element takes (C_in / group) * prod(kernel) MACs: exactly the weight tensor's size / C_out
        return int(np.prod(out)) * int(np.prod(w[1:]))
    if node.op_type in ("Gemm", "MatMul") and len(w) == 2:
        attr = node.attributes.get("transB")
        k = w[1] if (node.op_type == "Gemm" and attr is not None and attr.value) else w[0]
        return int(np.prod(out)) * k
    return 0


def node_params(node: ir.Node) -> int:
    return sum(int(np.prod(v.shape)) for v in node.inputs
               if v is not None and v.const_value is not None and v.shape is not None)


def analyze(model: ir.Model) -> list[NodeInfo]:
    return [NodeInfo(n.name, n.op_type, _dims(n.outputs[0]) if n.outputs else None, node_params(n), node_macs(n))
            for n in model.graph]
