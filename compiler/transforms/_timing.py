"""Speed of a transformed model against the float one: both timed in this process, interleaved."""

from __future__ import annotations

import time

import numpy as np
import onnx
import onnxruntime as ort

from accelc.reference import run_batched

WARMUP = 5
REPEATS = 40


def _session(model: onnx.ModelProto, providers: list[str]) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL  # as the cpu/cuda targets run it
    return ort.InferenceSession(model.SerializeToString(), opts, providers=providers)


def speed_ratio(before: onnx.ModelProto, after: onnx.ModelProto, x: np.ndarray, providers: list[str]) -> dict:
    """Median seconds per batch of each model and the ratio after/before (< 1: the new model is faster)."""
    sessions = {"float": _session(before, providers), "new": _session(after, providers)}
    feeds = {name: {sess.get_inputs()[0].name: np.asarray(x, dtype=np.float32)} for name, sess in sessions.items()}
    times: dict[str, list[float]] = {k: [] for k in sessions}
    for _ in range(WARMUP):
        for k, sess in sessions.items():
            run_batched(sess, feeds[k])
    for _ in range(REPEATS):  # interleaved, so machine noise hits both alike
        for k, sess in sessions.items():
            start = time.perf_counter()
            run_batched(sess, feeds[k])
            times[k].append(time.perf_counter() - start)
    t_float, t_new = float(np.median(times["float"])), float(np.median(times["new"]))
    return {"batch": int(len(x)), "float_ms": round(t_float * 1e3, 4), "quantized_ms": round(t_new * 1e3, 4),
            "ratio": round(t_new / t_float, 3), "provider": sessions["new"].get_providers()[0],
            "repeats": REPEATS}
