"""Which ONNX nearest-neighbour Resize/Upsample nodes are plain pixel repetition, the only resize the fpga
target lowers (hls4ml's ``resize_nearest`` maps output index j to input index j // s).

ONNX computes each output pixel's source from a coordinate transformation and a rounding mode. For an integer
factor s, ``asymmetric`` + ``floor`` (torch's ``nn.Upsample(mode="nearest")``), ``half_pixel`` with either
round mode (the default), and others reduce to j // s; ``align_corners``, ``ceil`` and most ``round_*``
choices with ``asymmetric`` do not. Rather than tabulate that, ``repeats_pixels`` evaluates ONNX's formulas
exactly (rationals) for the node's actual sizes and compares.
"""

from __future__ import annotations

import math
from fractions import Fraction

# ONNX Resize defaults (opset 11+); Upsample always behaves as asymmetric + floor.
DEFAULT_TRANSFORM = "half_pixel"
DEFAULT_NEAREST = "round_prefer_floor"
TRANSFORMS = ("half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners", "asymmetric",
              "tf_half_pixel_for_nn")
NEAREST_MODES = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")


def _source(j: int, length: int, out: int, transform: str) -> Fraction:
    scale = Fraction(out, length)
    if transform in ("half_pixel", "half_pixel_symmetric"):  # symmetric == half_pixel when out = length * scale
        return (j + Fraction(1, 2)) / scale - Fraction(1, 2)
    if transform == "pytorch_half_pixel":
        return (j + Fraction(1, 2)) / scale - Fraction(1, 2) if out > 1 else Fraction(0)
    if transform == "align_corners":
        return Fraction(j * (length - 1), out - 1) if out > 1 else Fraction(0)
    if transform == "asymmetric":
        return j / scale
    if transform == "tf_half_pixel_for_nn":
        return (j + Fraction(1, 2)) / scale
    raise ValueError(f"unknown coordinate_transformation_mode {transform!r}")


def _round(x: Fraction, mode: str) -> int:
    if mode == "floor":
        return math.floor(x)
    if mode == "ceil":
        return math.ceil(x)
    if x - math.floor(x) == Fraction(1, 2):
        return math.floor(x) if mode == "round_prefer_floor" else math.ceil(x)
    return math.floor(x + Fraction(1, 2))


def repeats_pixels(length: int, out: int, transform: str, nearest_mode: str) -> bool:
    """True when ONNX's nearest resize of an axis of ``length`` to ``out`` (a multiple) reads input j // s
    for every output j."""
    if out % length or transform not in TRANSFORMS or nearest_mode not in NEAREST_MODES:
        return False
    s = out // length
    return all(min(max(_round(_source(j, length, out, transform), nearest_mode), 0), length - 1) == j // s
               for j in range(out))


__all__ = ["DEFAULT_NEAREST", "DEFAULT_TRANSFORM", "NEAREST_MODES", "TRANSFORMS", "repeats_pixels"]
