"""fpga target: a thin adapter; everything hls4ml lives in accelc.hls."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx_ir as ir

from accelc.backends.base import Unsupported
from accelc.errors import AccelcError


class FpgaRunner:
    """The C-simulation emulator, with outputs reshaped to the source model's output shapes."""

    def __init__(self, emulator, output_shapes: list[tuple[int, ...]]) -> None:
        self.emulator = emulator
        self.output_shapes = output_shapes
        self.description = emulator.description

    def _shape(self, ys: list[np.ndarray]) -> list[np.ndarray]:
        return [y.reshape((y.shape[0], *s[1:])) for y, s in zip(ys, self.output_shapes)]

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        return self._shape(self.emulator.run(inputs))

    def trace(self, inputs: list[np.ndarray]) -> tuple[list[np.ndarray], dict[str, np.ndarray]]:
        outs, traced = self.emulator.trace(inputs)
        return self._shape(outs), traced

    @property
    def trace_layers(self) -> list[dict]:
        return self.emulator.meta["trace"]


class FpgaTarget:
    name = "fpga"

    def legalize(self, model: ir.Model, context=None) -> tuple[ir.Model, list]:
        from accelc.hls.legalize.pipeline import LegalizeFpga

        copy = ir.from_proto(ir.to_proto(model))
        legalize = LegalizeFpga(context)
        result = legalize(copy)
        return result.model, legalize.records

    def supports(self, model: ir.Model, options: dict | None = None) -> list[Unsupported]:
        from accelc.hls.project import backend_problem
        from accelc.hls.support import fpga_supports

        options = options or {}
        problem = backend_problem(options.get("backend"))
        if problem:  # before any hls4ml work: the whole target is out, not a node
            raise AccelcError(problem)
        return fpga_supports(model, options.get("backend", "vitis"), options.get("io_type"))

    def lower(self, model: ir.Model, options: dict, out_dir: Path, calibration: list[np.ndarray] | None = None) -> dict:
        from accelc.hls.lower import lower_to_hls

        return lower_to_hls(model, options, out_dir, calibration)

    def runner(self, artifact_dir: Path, manifest: dict, engine: str = "auto") -> FpgaRunner:
        from accelc.hls.engine_choice import load_runner

        hls_dir = artifact_dir / "hls"
        if not hls_dir.is_dir():
            raise AccelcError(f"artifact {artifact_dir} has no hls/ project; recompile it")
        shapes = [tuple(o["shape"]) for o in manifest["outputs"]]
        return FpgaRunner(load_runner(hls_dir, manifest["target"], engine), shapes)

    def width_emulator(self, options: dict, calibration: list[np.ndarray] | None, context=None):
        """f(model, widths, inputs) -> outputs: the model lowered at those widths, run by the numpy engine."""
        from accelc.hls.width_trial import width_emulator

        return width_emulator(options, calibration, context)

    def cross_check(self, artifact_dir: Path, manifest: dict, inputs: list[np.ndarray]) -> dict | None:
        """The numpy engine against the C simulation on `inputs`, every traced layer bit for bit (a difference
        is a VerificationError naming the first layer); None where there is nothing to compare."""
        from accelc.hls.engine_choice import cross_check

        return cross_check(artifact_dir / "hls", manifest["target"], inputs)
