"""Which program runs an fpga artifact: the numpy engine (default where it implements every layer) or hls4ml's C
simulation, and the compile-time cross-check that keeps the two equal bit for bit."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from accelc.errors import AccelcError, EngineMismatchError

log = logging.getLogger("accelc")


def engine_status(hls_dir: Path) -> dict:
    """{"numpy": "ok"} when the engine implements the project, else {"numpy": "unsupported", "why": ...}."""
    from accelc.hls.engine import Engine, EngineUnsupported

    try:
        Engine(hls_dir)
    except EngineUnsupported as e:
        return {"numpy": "unsupported", "why": str(e)}
    return {"numpy": "ok"}


def _csim(hls_dir: Path, target: dict):
    from accelc.hls.emulate import DEFAULT_OPT_FLAG, load_emulator

    return load_emulator(hls_dir, target.get("emulator", {}).get("opt_flag", DEFAULT_OPT_FLAG))


def load_runner(hls_dir: Path, target: dict, engine: str = "auto"):
    """The runner `engine` names: "numpy", "csim", or "auto" (the engine where the compile found it exact,
    else the C simulation)."""
    from accelc.hls.engine import Engine, EngineUnsupported

    record = target.get("engine") or {}
    if engine in ("auto", "numpy"):
        if engine == "auto" and record.get("numpy") in ("unsupported", "off"):
            return _csim(hls_dir, target)
        try:
            return Engine(hls_dir)
        except EngineUnsupported as e:
            if engine == "numpy":
                raise AccelcError(f"engine 'numpy' cannot run this artifact: {e}; use engine 'csim'") from e
            log.info("numpy engine unavailable (%s): running the C simulation", e)
    return _csim(hls_dir, target)


def first_difference(layers: list[dict], a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> str | None:
    """The first traced layer (in the project's order) whose values differ between two traces."""
    for layer in layers:
        name = layer["name"]
        if name in a and name in b and not np.array_equal(a[name], b[name]):
            return name
        if (name in a) != (name in b):
            return name
    return None


def cross_check(hls_dir: Path, target: dict, inputs: list[np.ndarray]) -> dict | None:
    """Engine and C simulation on the same inputs, outputs and every traced layer compared bit for bit."""
    from accelc.hls.engine import Engine

    if (target.get("engine") or {}).get("numpy") != "ok" or not target.get("emulator", {}).get("built", True):
        return None
    engine = Engine(hls_dir)
    csim = _csim(hls_dir, target)
    outs_e, trace_e = engine.trace(inputs)
    outs_c, trace_c = csim.trace(inputs)
    layers = engine.meta["trace"]
    first = first_difference(layers, trace_e, trace_c)
    if first is None and any(not np.array_equal(x, y) for x, y in zip(outs_e, outs_c)):
        first = "the model's outputs"
    if first is not None:
        a, b = trace_e.get(first), trace_c.get(first)
        detail = ""
        if a is not None and b is not None:
            diff = a != b
            detail = (f": {int(diff.sum())} of {diff.size} values differ (largest by "
                      f"{float(np.max(np.abs(a - b))):.3g})")
        raise EngineMismatchError(
            f"the numpy engine and hls4ml's C simulation differ on the self-check inputs, first at layer "
            f"'{first}'{detail}; this is an accelc bug — compile with engine='csim' (CLI: --engine csim) "
            "to use the C simulation alone")
    return {"samples": int(inputs[0].shape[0]), "layers": len(trace_c), "bit_exact": True}
