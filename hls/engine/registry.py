"""The engine's kernels by nnet function name: layers (dense, conv, pooling, merges, data movement), activations
and softmax register theirs here; importing accelc.hls.engine.kernels loads all three."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from accelc.hls.engine.project import Call

Kernel = Callable[[Call, list[np.ndarray]], list[np.ndarray]]
KERNELS: dict[str, Kernel] = {}


def kernel(*names: str) -> Callable[[Kernel], Kernel]:
    def register(fn: Kernel) -> Kernel:
        for name in names:
            KERNELS[name] = fn
        return fn

    return register
