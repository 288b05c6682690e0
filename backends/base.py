"""The Target protocol: check support before lowering, lower into a directory, run what was lowered."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np
import onnx_ir as ir

from accelc.errors import Unsupported  # noqa: F401 - re-exported: part of the Target protocol


class Runner(Protocol):
    """Runs a lowered model: a list of arrays in the source layout in, a list of arrays out."""

    description: str

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]: ...


class Target(Protocol):
    name: str

    def legalize(self, model: ir.Model, context) -> tuple[ir.Model, list]:
        """Exact rewrites into ops this target lowers, on a copy (the caller keeps the original as the
        reference); returns the model to check and lower, and the rewrite passes' records."""
        ...

    def supports(self, model: ir.Model, options: dict | None = None) -> list[Unsupported]:
        """Every node this target cannot lower (with these target options), found before any lowering work starts."""
        ...

    def lower(self, model: ir.Model, options: dict, out_dir: Path) -> dict:
        """Write the target's files into out_dir; return the manifest's `target` section."""
        ...

    def runner(self, artifact_dir: Path, manifest: dict, engine: str = "auto") -> Runner:
        """Rebuild the runnable object of an artifact from its files and manifest (`engine`: what runs an fpga
        artifact, see accelc.artifact.load)."""
        ...
