"""Targets, found through one explicit dict."""

from __future__ import annotations

from accelc.backends.base import Runner, Target, Unsupported
from accelc.backends.fpga import FpgaTarget
from accelc.backends.ort import CpuTarget, CudaTarget
from accelc.errors import AccelcError

TARGETS: dict[str, Target] = {"cpu": CpuTarget(), "cuda": CudaTarget(), "fpga": FpgaTarget()}


def get_target(name: str) -> Target:
    if name not in TARGETS:
        raise AccelcError(f"unknown target '{name}'; choose one of: {', '.join(TARGETS)}")
    return TARGETS[name]


__all__ = ["TARGETS", "Runner", "Target", "Unsupported", "get_target"]
