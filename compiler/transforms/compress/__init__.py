"""Compression: the passes a user asks for (prune, depthwise, quantize), lossy by design and measured (each
result's stats hold its size and fidelity figures); the helpers beside them are one concern each."""

from accelc.transforms.compress.depthwise import Depthwise
from accelc.transforms.compress.prune import Prune
from accelc.transforms.compress.quantize import Quantize

__all__ = ["Depthwise", "Prune", "Quantize"]
