"""Unstructured magnitude pruning: zero the smallest-magnitude weights of Conv/Gemm/MatMul layers."""

from __future__ import annotations

from collections.abc import Collection, Mapping

import numpy as np
import onnx_ir as ir

from accelc.transforms.compress._measure import weight_of

PRUNABLE = ("Conv", "Gemm", "MatMul")


def prunable_layers(model: ir.Model) -> list[ir.Node]:
    """Conv/Gemm/MatMul nodes whose weight is a constant (once each, in graph order)."""
    return [n for n in model.graph if n.op_type in PRUNABLE and weight_of(n) is not None]


def _smallest(magnitudes: np.ndarray, k: int) -> np.ndarray:
    """Boolean mask of exactly k smallest entries (ties broken by position, so the count is exact)."""
    mask = np.zeros(magnitudes.size, dtype=bool)
    if k > 0:
        mask[np.argsort(magnitudes, kind="stable")[:k]] = True
    return mask


def magnitude_prune(model: ir.Model, sparsity: float, scope: str = "global", exclude: Collection[str] = (),
                    overrides: Mapping[str, float] | None = None) -> dict:
    """Zero weights in place so each layer (scope=layer) or all layers together (scope=global) reach
    `sparsity`; `overrides` (node name -> sparsity) prune those layers on their own; `exclude` keeps them."""
    overrides = dict(overrides or {})
    layers = [n for n in prunable_layers(model) if n.name not in exclude]
    seen: set[int] = set()
    unique = []
    for node in layers:  # a weight shared by two nodes is pruned once
        if id(node.inputs[1]) not in seen:
            seen.add(id(node.inputs[1]))
            unique.append(node)
    masks: dict[str, np.ndarray] = {}
    pooled = [n for n in unique if n.name not in overrides and scope == "global"]
    if pooled:
        flat = np.concatenate([np.abs(weight_of(n)).ravel() for n in pooled])
        mask = _smallest(flat, int(round(sparsity * flat.size)))
        start = 0
        for n in pooled:
            size = weight_of(n).size
            masks[n.name] = mask[start : start + size]
            start += size
    for n in unique:
        if n.name not in masks:
            w = np.abs(weight_of(n)).ravel()
            masks[n.name] = _smallest(w, int(round(overrides.get(n.name, sparsity) * w.size)))

    stats_layers = {}
    for n in unique:
        value = n.inputs[1]
        w = weight_of(n).copy()
        w.reshape(-1)[masks[n.name]] = 0.0
        value.const_value = ir.tensor(w, name=value.name)
        zeros = int(w.size - np.count_nonzero(w))
        stats_layers[n.name] = {"weights": int(w.size), "zeros": zeros, "sparsity": round(zeros / w.size, 4),
                                "asked": overrides.get(n.name, sparsity)}
    total = sum(s["weights"] for s in stats_layers.values())
    zeros = sum(s["zeros"] for s in stats_layers.values())
    return {
        "layers": stats_layers,
        "excluded": sorted(exclude),
        "sparsity": round(zeros / total, 4) if total else 0.0,
        "weights": total,
        "zeros": zeros,
    }
