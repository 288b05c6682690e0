"""Run a model as the fpga artifact would compute it with given per-node widths: the real lowering (hls4ml
project written, no g++) executed by the numpy engine. quantize:auto decides its widths with it (through
PassContext.emulate_widths: passes never import accelc.hls)."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import onnx_ir as ir

from accelc.hls.precision import FPGA_WIDTHS_KEY


def width_emulator(options: dict, calibration: list[np.ndarray] | None,
                   context=None) -> Callable[[onnx.ModelProto, dict[str, int], list[np.ndarray]], list[np.ndarray]]:
    """f(model, widths per node, inputs) -> the engine's outputs of `model` lowered at those widths, calibrated
    on `calibration` exactly as the compile will be (same ranges, same types)."""
    from accelc.hls.engine import Engine
    from accelc.hls.legalize.pipeline import LegalizeFpga
    from accelc.hls.lower import lower_to_hls

    def emulate(model: onnx.ModelProto, widths: dict[str, int], inputs: list[np.ndarray]) -> list[np.ndarray]:
        m = ir.from_proto(model)
        m.metadata_props[FPGA_WIDTHS_KEY] = json.dumps(widths, sort_keys=True)
        lowered = LegalizeFpga(context)(m).model  # the target's exact rewrites, as the compile runs them
        with tempfile.TemporaryDirectory(prefix="accelc-widths-") as tmp:
            lower_to_hls(lowered, {**options, "engine": "numpy"}, Path(tmp), calibration)
            return Engine(Path(tmp) / "hls").run(inputs)

    return emulate
