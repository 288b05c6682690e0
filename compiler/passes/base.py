"""What every accelc pass is: an onnx-ir pass that also reports stats and warnings, built with a PassContext."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import onnx
import onnx_ir as ir

from accelc.errors import PassError


@dataclass
class PassResult(ir.passes.PassResult):
    """onnx-ir's result plus what the pass measured and what it declined to do (and why)."""

    stats: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


@dataclass
class PassContext:
    """What a pass may need beyond the graph: calibration data, the target, a seed, the graph before the passes."""

    calibration: np.ndarray | None = None
    target: str | None = None
    seed: int = 0
    reference: onnx.ModelProto | None = None  # the canonical graph before the user's passes (a teacher for recover)
    # What passes need to know of the target without importing it (passes are target-blind): the target's
    # options as the user gave them (fpga: strategy, io_type, ...).
    target_options: dict = field(default_factory=dict)
    # The fidelity budget of the lossy passes (prune, depthwise, quantize): the least top-1 agreement with the
    # graph before them that a classifier may keep (None: the default budget); below it a warning, or with
    # strict=True an error.
    min_agreement: float | None = None
    strict: bool = False
    # The target computing a model at given per-node fixed-point widths: f(model, widths, inputs) -> outputs (fpga:
    # the real lowering run by the bit-exact numpy engine). quantize:auto decides its widths with it.
    emulate_widths: Callable | None = None


class AccelcPass(ir.passes.InPlacePass):
    """Base of accelc's passes: in place, leaves a model that passes the ONNX checker."""

    name: ClassVar[str] = ""

    def __init__(self, context: PassContext | None = None, **options: Any) -> None:
        self.context = context or PassContext()
        if options:
            raise PassError(f"pass '{self.name}' takes no options, got {sorted(options)}")

    @property
    def options(self) -> dict:
        """The options this pass was built with, as recorded in the manifest."""
        return {}

    def ensures(self, model: ir.Model) -> None:
        # Every pass must leave a valid model; full_check=False keeps this cheap (no shape inference).
        onnx.checker.check_model(ir.to_proto(model), full_check=False)


class NewModelPass(AccelcPass):
    """A pass that returns a new model and leaves its input as it was (quantize builds one with onnxruntime,
    recover writes trained weights into a copy)."""

    @property
    def in_place(self) -> bool:
        return False

    @property
    def changes_input(self) -> bool:
        return False
