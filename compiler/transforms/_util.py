"""Small helpers shared by the canonicalization passes."""

from __future__ import annotations

import onnx_ir as ir


def count_nodes(model: ir.Model) -> int:
    return sum(1 for _ in model.graph)


def op_counts(model: ir.Model) -> dict[str, int]:
    counts: dict[str, int] = {}
    for node in model.graph:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return counts
