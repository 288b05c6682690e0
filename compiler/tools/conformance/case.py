"""One conformance case: a named ONNX model builder, its op, its input shapes, whether it is in the fast slice."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import onnx

OPSET = 13
Shape = tuple  # of int | str ('N': the batch dimension)


@dataclass(frozen=True)
class Case:
    """One conformance case: `build()` returns the ONNX model; `fast`: part of the representative slice."""

    name: str
    op: str
    build: Callable[[], onnx.ModelProto] = field(repr=False, compare=False)
    input_shapes: tuple[Shape, ...]
    fast: bool = False
    positive_inputs: tuple[int, ...] = ()  # inputs drawn as |N(0,1)| + 0.5 (divisors)

    @property
    def batched(self) -> bool:
        return all(s[0] == "N" for s in self.input_shapes)
