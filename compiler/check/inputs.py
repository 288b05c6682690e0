"""Which inputs set the fixed-point ranges, which check the artifact, which `verify` and `report` default to.

Ranges come from the calibration rows (or rows drawn uniformly from a declared --input-range, or seeded N(0,1)
when there is neither). The self-check never reuses those: with 64 or more calibration rows the last 32 are held
out; with fewer, it runs on mixes of pairs of them (in the data's range, yet none of them); with a declared range
or without data, on rows of another seed. A small sample (held-out rows first) is kept in the artifact, so that
`verify` and `report` default to real-range inputs, not N(0,1).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from accelc.data import random_inputs
from accelc.errors import AccelcError
from accelc.spec import TensorSpec

SELF_CHECK_SAMPLES = 32
HOLD_OUT_FROM = 64  # calibration rows from which the last SELF_CHECK_SAMPLES are held out
RANGE_ROWS = 256  # rows drawn from a declared input range (its two endpoints among them)
SAMPLE_ROWS = 64  # calibration rows kept in the artifact
SAMPLE_FILE = "calibration_sample.npz"
RANGE_SEED, SELF_CHECK_SEED = 0, 1234  # the lowering draws its N(0,1) range inputs with seed 0 too
VERIFY_SEED = 1 << 20  # verify --random --seed S draws with VERIFY_SEED + S: never the calibration's inputs

InputRange = tuple[float, float]


@dataclass
class InputPlan:
    calibration: list[np.ndarray] | None  # per input, source layout: what sets the ranges (None: N(0,1))
    check: list[np.ndarray]  # per input, source layout: the self-check's inputs
    check_described: str
    record: dict  # the manifest's "calibration" section
    sample: list[np.ndarray] | None = None  # kept in the artifact

    def save_sample(self, directory: Path) -> None:
        if self.sample is not None:
            np.savez(directory / SAMPLE_FILE, *self.sample)
            self.record["sample"] = SAMPLE_FILE


def parse_input_range(value: str | Sequence | None, n_inputs: int) -> list[InputRange] | None:
    """'0,255' or '0,255;-1,1' (one per input), or (lo, hi) / [(lo, hi), ...]; one range serves every input."""
    if value is None:
        return None
    if isinstance(value, str):
        parts = [p for p in value.split(";") if p.strip()]
        try:
            ranges = [tuple(float(v) for v in p.split(",")) for p in parts]
        except ValueError:
            ranges = []
    else:
        items = list(value)
        ranges = [tuple(items)] if items and np.isscalar(items[0]) else [tuple(r) for r in items]
    if not ranges or any(len(r) != 2 or not all(np.isfinite(r)) or r[0] >= r[1] for r in ranges):
        raise AccelcError(f"input range {value!r}: expected LO,HI with LO < HI (e.g. 0,255), ';' between inputs")
    if len(ranges) == 1:
        ranges = ranges * n_inputs
    if len(ranges) != n_inputs:
        raise AccelcError(f"{len(ranges)} input ranges given; the model has {n_inputs} input(s)")
    return [(float(lo), float(hi)) for lo, hi in ranges]


def uniform_rows(specs: list[TensorSpec], ranges: list[InputRange], n: int, seed: int,
                 endpoints: bool = False) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for spec, (lo, hi) in zip(specs, ranges):
        x = rng.uniform(lo, hi, (n, *spec.shape[1:])).astype(np.float32)
        if endpoints and n >= 2:  # the input types must hold both ends exactly
            x[0], x[1] = lo, hi
        out.append(x)
    return out


def _mixes(rows: list[np.ndarray], n: int, seed: int) -> list[np.ndarray]:
    """n convex mixes of two different calibration rows each (of one row and zero, if there is only one)."""
    rng = np.random.default_rng(seed)
    count = len(rows[0])
    i = rng.integers(0, count, n)
    j = (i + rng.integers(1, count, n)) % count if count > 1 else i
    lam = rng.uniform(0.1, 0.9, n).astype(np.float32)
    out = []
    for x in rows:
        w = lam.reshape((n,) + (1,) * (x.ndim - 1))
        other = x[j] if count > 1 else np.zeros_like(x[i])
        out.append((w * x[i] + (1 - w) * other).astype(np.float32))
    return out


def as_rows(calibration, specs: list[TensorSpec]) -> list[np.ndarray]:
    """One float32 array per input from an array (single-input models) or a list of arrays."""
    arrays = list(calibration) if isinstance(calibration, (list, tuple)) else [calibration]
    if len(arrays) != len(specs):
        raise AccelcError(f"calibration data covers {len(arrays)} input(s); the model has {len(specs)}: "
                          "pass one array per input (a list)")
    rows = [np.asarray(a, dtype=np.float32) for a in arrays]
    if len({len(r) for r in rows}) != 1 or not len(rows[0]):
        raise AccelcError("calibration arrays must hold the same, non-zero number of rows (samples) per input")
    for r, spec in zip(rows, specs):
        if tuple(r.shape[1:]) != tuple(spec.shape[1:]):
            raise AccelcError(f"calibration data for input '{spec.name}' has shape {tuple(r.shape)}, expected "
                              f"(N, {', '.join(map(str, spec.shape[1:]))}) in {spec.layout} layout")
    return rows


def plan_inputs(specs: list[TensorSpec], calibration, input_range: list[InputRange] | None,
                origin: str = "calibration data") -> InputPlan:
    n = SELF_CHECK_SAMPLES
    if calibration is not None:
        rows = as_rows(calibration, specs)
        count = len(rows[0])
        if count >= HOLD_OUT_FROM:
            calib, check = [r[:-n] for r in rows], [r[-n:] for r in rows]
            described = f"{n} held-out rows of the {origin} (the other {count - n} set the ranges)"
        else:
            calib, check = rows, _mixes(rows, n, SELF_CHECK_SEED)
            described = f"{n} mixes of two of the {count} rows of the {origin} (too few to hold any out)"
        sample = [np.concatenate([c, k])[:SAMPLE_ROWS] for c, k in zip(check, calib)]
        record = {"kind": "data", "origin": origin, "rows": len(calib[0]), "held_out": count >= HOLD_OUT_FROM}
        return InputPlan(calib, check, described, record, sample)
    if input_range is not None:
        calib = uniform_rows(specs, input_range, RANGE_ROWS, RANGE_SEED, endpoints=True)
        check = uniform_rows(specs, input_range, n, SELF_CHECK_SEED)
        shown = "; ".join(f"[{lo:g}, {hi:g}]" for lo, hi in input_range)
        record = {"kind": "range", "range": [list(r) for r in input_range], "rows": RANGE_ROWS}
        return InputPlan(calib, check, f"{n} uniform rows in the declared input range {shown} (another seed)",
                         record)
    return InputPlan(None, random_inputs(specs, n, SELF_CHECK_SEED),
                     f"{n} N(0,1) rows of another seed than the ones that set the ranges", {"kind": "random"})


def default_inputs(art, n: int | None = None, seed: int = 0) -> list[np.ndarray]:
    """What `verify`/`report` run without --data/--dataset: the kept calibration sample (n None), else n rows
    of the artifact's input distribution (its declared range, or N(0,1)), never those that set its ranges."""
    record = art.manifest.get("calibration") or {}
    path = art.path / SAMPLE_FILE
    if n is None and record.get("sample") and path.exists():
        with np.load(path, allow_pickle=False) as z:
            return [z[f"arr_{i}"] for i in range(len(z.files))]
    n = n or 16
    if record.get("kind") == "range":
        return uniform_rows(art.inputs, [tuple(r) for r in record["range"]], n, VERIFY_SEED + seed)
    return random_inputs(art.inputs, n, VERIFY_SEED + seed)


def describe_default(art, n: int | None) -> str:
    record = art.manifest.get("calibration") or {}
    if n is None and record.get("sample") and (art.path / SAMPLE_FILE).exists():
        return f"the calibration sample kept in the artifact ({record.get('origin', 'calibration data')})"
    if record.get("kind") == "range":
        return "uniform rows in the declared input range"
    return "seeded N(0,1) rows"
