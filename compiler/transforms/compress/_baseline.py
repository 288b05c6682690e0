"""Where a measured compression pass starts: the graph before it, its size figures, and the layers it may change."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import NamedTuple

import onnx
import onnx_ir as ir

from accelc.transforms.canonical.infer_shapes import InferShapes
from accelc.transforms.compress._measure import size_figures
from accelc.transforms.compress._select import resolve


class Baseline(NamedTuple):
    proto: onnx.ModelProto  # the graph before the pass, what its fidelity is measured against
    figures: dict  # size_figures before the pass
    layers: list[ir.Node]  # the layers the pass may change
    exclude: set[str]  # node names the user's exclude= keys pick out among them


def baseline(model: ir.Model, layers: Callable[[ir.Model], Iterable[ir.Node]], exclude: Iterable[str],
             option: str) -> Baseline:
    """Infer shapes, then snapshot the graph and its figures, list its candidate layers and resolve `exclude` among
    them (`option`, e.g. 'prune: exclude', heads the error for an unknown or ambiguous name)."""
    InferShapes()(model)  # MAC counts need shapes; after canonicalization this is a no-op
    proto = ir.to_proto(model)
    figures = size_figures(model)
    nodes = list(layers(model))
    return Baseline(proto, figures, nodes, set(resolve(nodes, exclude, option).values()))
