"""Running passes in order: the Pipeline keeps every result's stats, which onnx-ir's `Sequential` would drop."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import onnx_ir as ir

from accelc.errors import PassError
from accelc.passes.base import AccelcPass, PassContext, PassResult
from accelc.passes.registry import create_pass


@dataclass
class PassRecord:
    """One pass as it ran: what the manifest keeps."""

    name: str
    options: dict
    modified: bool
    seconds: float
    stats: dict
    warnings: list[str]

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "options": self.options,
            "modified": self.modified,
            "seconds": round(self.seconds, 4),
            "stats": self.stats,
            "warnings": self.warnings,
        }


class Pipeline(AccelcPass):
    """Runs passes in order, one at a time, and keeps each one's record. A pipeline is a pass."""

    name = "pipeline"

    def __init__(self, passes: Sequence[AccelcPass], context: PassContext | None = None) -> None:
        super().__init__(context)
        self.passes = list(passes)
        self.records: list[PassRecord] = []

    @property
    def in_place(self) -> bool:
        # A pass that builds a new model (quantization) makes the pipeline return a new one too.
        return all(p.in_place for p in self.passes)

    @property
    def changes_input(self) -> bool:
        return bool(self.passes) and (self.passes[0].in_place or self.passes[0].changes_input)

    def call(self, model: ir.Model) -> PassResult:
        self.records = []
        modified = False
        for p in self.passes:
            start = time.perf_counter()
            try:
                result = p(model)
            except PassError:
                raise
            except Exception as e:  # re-raised typed, naming the pass
                raise PassError(f"pass '{p.name}' failed: {type(e).__name__}: {_first_line(e)}") from e
            stats = getattr(result, "stats", {})
            warnings = getattr(result, "warnings", [])
            self.records.append(
                PassRecord(p.name, p.options, result.modified, time.perf_counter() - start, stats, warnings)
            )
            modified |= result.modified
            model = result.model
        return PassResult(
            model,
            modified,
            stats={r.name: r.stats for r in self.records},
            warnings=[f"{r.name}: {w}" for r in self.records for w in r.warnings],
        )


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else ""


def apply_passes(model: ir.Model, passes: Iterable[str | AccelcPass],
                 context: PassContext) -> tuple[ir.Model, list[PassRecord]]:
    """Run passes given as specs or objects; returns the resulting model (a new one when a pass builds
    one, e.g. quantize) and each pass's record."""
    pipeline = Pipeline([create_pass(p, context) for p in passes], context)
    result = pipeline(model)
    return result.model, pipeline.records


def run_passes(model: ir.Model, passes: Iterable[str | AccelcPass], context: PassContext) -> list[PassRecord]:
    """apply_passes for in-place passes: the model changes in place; returns the records."""
    return apply_passes(model, passes, context)[1]
