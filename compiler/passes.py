"""The pass framework: accelc passes are onnx-ir passes that also report stats and warnings.

A pass is constructed with its options (and a PassContext when it needs data or the target), then
called on an `ir.Model`. The Pipeline runs passes one at a time and keeps every result's stats,
which onnx-ir's `Sequential` would drop.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
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


REGISTRY: dict[str, type[AccelcPass]] = {}


def register(cls: type[AccelcPass]) -> type[AccelcPass]:
    """Class decorator: make a pass reachable by name from the CLI, the API and the tests."""
    if not cls.name:
        raise TypeError(f"{cls.__name__} has no name")
    REGISTRY[cls.name] = cls
    return cls


def _parse_value(text: str) -> Any:
    low = text.lower()
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def parse_pass_spec(spec: str) -> tuple[str, dict]:
    """'prune:sparsity=0.5,scope=global' -> ('prune', {'sparsity': 0.5, 'scope': 'global'})."""
    name, _, rest = spec.partition(":")
    options: dict[str, Any] = {}
    for item in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = item.partition("=")
        if not eq:
            # A bare value is the pass's main option, e.g. 'quantize:int8' -> mode=int8.
            options["mode"] = _parse_value(key)
        else:
            options[key.strip()] = _parse_value(value.strip())
    return name.strip(), options


def create_pass(spec: str | AccelcPass, context: PassContext | None = None) -> AccelcPass:
    """Build a pass from its registry spec; a ready Pass object is returned as is."""
    if isinstance(spec, AccelcPass):
        return spec
    _load_builtin_passes()
    name, options = parse_pass_spec(spec)
    if name not in REGISTRY:
        known = ", ".join(sorted(REGISTRY))
        raise PassError(f"unknown pass '{name}'; known passes: {known}")
    try:
        return REGISTRY[name](context, **options)
    except TypeError as e:
        raise PassError(f"bad options for pass '{name}': {e}") from e


def _load_builtin_passes() -> None:
    # Importing the transforms package registers the built-in passes.
    import accelc.transforms  # noqa: F401


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
