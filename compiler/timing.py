"""Interleaved timing: several calls timed round by round, so machine noise hits all of them alike.

Shared by the quantize pass (quantized vs fp32) and `accelc bench` (every variant).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping


def warm_up(calls: Mapping[str, Callable[[], object]], n: int) -> dict[str, float]:
    """Run each call n times (not counted); returns the seconds one call took, for sizing repetitions."""
    seconds = {}
    for name, call in calls.items():
        start = time.perf_counter()
        for _ in range(n):
            call()
        seconds[name] = (time.perf_counter() - start) / max(n, 1)
    return seconds


def interleaved(calls: Mapping[str, Callable[[], object]], reps: Mapping[str, int],
                on_call: Callable[[], None] | None = None) -> dict[str, list[float]]:
    """Seconds per call: round r times every call that still has repetitions left (reps[name] in all)."""
    times: dict[str, list[float]] = {name: [] for name in calls}
    for r in range(max(reps.values(), default=0)):
        for name, call in calls.items():
            if r < reps[name]:
                start = time.perf_counter()
                call()
                times[name].append(time.perf_counter() - start)
                if on_call is not None:
                    on_call()
    return times
