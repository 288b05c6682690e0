"""Speed of a transformed model against the float one: both timed in this process, interleaved."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort

from accelc.reference import run_batched
from accelc.sessions import session_options
from accelc.timing import interleaved, warm_up

WARMUP = 5
REPEATS = 40


def speed_ratio(before: onnx.ModelProto, after: onnx.ModelProto, x: np.ndarray, providers: list[str]) -> dict:
    """Median seconds per batch of each model and the ratio after/before (< 1: the new model is faster)."""
    # The targets' own session options: what is timed is how the cpu/cuda artifact will run.
    sessions = {k: ort.InferenceSession(m.SerializeToString(), session_options(), providers=providers)
                for k, m in (("float", before), ("new", after))}
    calls = {k: (lambda s=s: run_batched(s, {s.get_inputs()[0].name: np.asarray(x, dtype=np.float32)}))
             for k, s in sessions.items()}
    warm_up(calls, WARMUP)
    times = interleaved(calls, dict.fromkeys(calls, REPEATS))
    t_float, t_new = float(np.median(times["float"])), float(np.median(times["new"]))
    return {"batch": int(len(x)), "float_ms": round(t_float * 1e3, 4), "quantized_ms": round(t_new * 1e3, 4),
            "ratio": round(t_new / t_float, 3), "provider": sessions["new"].get_providers()[0],
            "repeats": REPEATS}
