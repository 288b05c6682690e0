"""`accelc.compile`: load, canonicalize, run passes, check support, lower, self-check, write the artifact."""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import logging
import os
import shutil
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from accelc import __version__
from accelc.artifact import FORMAT_VERSION, MODEL, REFERENCE, Artifact, load, write_atomically, write_manifest
from accelc.cache import cache_root
from accelc.errors import AccelcError, AccelcWarning, ArtifactError, UnsupportedOpError, VerificationError
from accelc.fpga_rules import check_engine
from accelc.spec import with_absorbed_layouts

# The heavy modules (onnx-ir, ONNX Runtime, torch, hls4ml) are imported inside compile(), after the
# cache lookup, so that an unchanged model recompiles in well under a second.

log = logging.getLogger("accelc")
# The keys of accelc.backends.TARGETS, named here so a cached compile need not import the runtimes.
TARGET_NAMES = ("cpu", "cuda", "fpga")
CALIBRATION_SAMPLES = 256  # of a named dataset's training split


def _default_out(source: Any, target: str) -> Path:
    """accelc-out/<name>-<target>-<6 hex of the source's absolute path>: two files both named model.onnx in
    different folders (a sweep, a parallel test run) get different directories."""
    if isinstance(source, (str, os.PathLike)):
        name, where = Path(str(source)).stem, str(Path(source).resolve())
    else:
        name, where = type(source).__name__.lower(), f"{type(source).__module__}.{type(source).__qualname__}"
    return Path("accelc-out") / f"{name}-{target}-{hashlib.sha256(where.encode()).hexdigest()[:6]}"


@contextlib.contextmanager
def _out_lock(out: Path) -> Iterator[None]:
    """Held while `out` is replaced and loaded: a compile into the same directory from another process waits,
    so each compile loads the artifact it wrote, never the other's."""
    # In the cache, not beside `out`: a compile leaves nothing next to its artifact.
    name = hashlib.sha256(str(Path(out).resolve()).encode()).hexdigest()[:24]
    lock = cache_root() / "locks" / f"{name}.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        yield


def _own(art: Artifact, key: str) -> Artifact:
    if art.manifest.get("cache_key") != key:  # cannot happen under the lock; checked, not assumed
        raise ArtifactError(f"{art.path} holds another compile's artifact (cache key {art.manifest.get('cache_key')},"
                            f" expected {key}); compile again or choose another -o")
    return art


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@functools.lru_cache(maxsize=1)
def _code_fingerprint() -> str:
    """accelc's own sources: a changed pass or lowering must not be served an artifact the old code built."""
    import importlib.util

    roots = set()
    for package in ("accelc", "accelc.backends", "accelc.hls"):  # three source dirs (pyproject package-dir)
        spec = importlib.util.find_spec(package)  # locates without importing the heavy packages
        roots |= {Path(p) for p in (spec.submodule_search_locations or [])} if spec else set()
    h = hashlib.sha256()
    for root in sorted(roots):
        for f in sorted(root.rglob("*")):
            if f.suffix in (".py", ".h") and "__pycache__" not in f.parts:
                h.update(str(f.relative_to(root)).encode())
                h.update(f.read_bytes())
    return h.hexdigest()[:16]


def _cache_key(source_sha: str, target: str, options: dict, passes: list, input_shape, calibration,
               self_check: str, extra: dict) -> str:
    h = hashlib.sha256()
    # self_check is part of the key: an artifact kept under 'warn' must not satisfy an 'error' compile.
    shapes = [list(s) for s in input_shape] if input_shape else None
    h.update(json.dumps([__version__, _code_fingerprint(), FORMAT_VERSION, source_sha, target, options, passes,
                         self_check, shapes, extra], sort_keys=True, default=str).encode())
    if isinstance(calibration, str):
        h.update(f"dataset:{calibration}".encode())
    elif calibration is not None:
        for array in calibration if isinstance(calibration, (list, tuple)) else [calibration]:
            a = np.ascontiguousarray(array, dtype=np.float32)
            h.update(str(a.shape).encode())
            h.update(a.tobytes())
    return h.hexdigest()[:24]


def _normalize_shape(input_shape) -> list[tuple[int, ...]] | None:
    if input_shape is None:
        return None
    if isinstance(input_shape, str):
        from accelc.spec import parse_shape

        return [parse_shape(input_shape)]
    items = list(input_shape)
    if items and all(isinstance(d, (int, np.integer)) for d in items):
        return [tuple(int(d) for d in items)]
    return [tuple(int(d) for d in s) for s in items]


def compile(  # noqa: A001 - the public name DESIGN.md fixes
    source: Any,
    target: str = "cpu",
    input_shape: Sequence[int] | Sequence[Sequence[int]] | str | None = None,
    passes: Sequence[Any] = (),
    out: str | Path | None = None,
    calibration: np.ndarray | str | None = None,
    options: dict | None = None,
    trust_pickle: bool = False,
    self_check: str = "error",
    force: bool = False,
    input_range: str | Sequence | None = None,
    min_agreement: float | None = None,
    strict: bool = False,
    engine: str | None = None,
) -> Artifact:
    """Compile a model file or nn.Module for a target into an artifact directory (see DESIGN.md).

    `calibration`: an array of inputs (a list of arrays, one per input, for several), or a dataset name ('digits':
    its training split). `input_range`: without data, the range real inputs take, e.g. (0, 255) (one per input
    or one for all). `min_agreement`: the fidelity budget of the lossy passes (top-1 agreement for classifiers);
    below it a warning, or with `strict` an error. `engine` (fpga): "auto" (default: build the C simulation and
    check the numpy engine against it bit for bit), "numpy" (the engine alone: no g++ build; the manifest records
    it) or "csim" (the C simulation alone)."""
    if self_check not in ("error", "warn", "off"):
        raise AccelcError(f"self_check must be 'error', 'warn' or 'off', not {self_check!r}")
    if target not in TARGET_NAMES:
        raise AccelcError(f"unknown target '{target}'; choose one of: {', '.join(TARGET_NAMES)}")
    options = dict(options or {})
    if engine is not None:
        if target != "fpga":
            raise AccelcError(f"engine={engine!r} applies to the fpga target only (target '{target}')")
        options["engine"] = check_engine(engine)
    shapes = _normalize_shape(input_shape)
    out = Path(out) if out is not None else _default_out(source, target)
    pass_specs = [p if isinstance(p, str) else f"{p.name}:{p.options}" for p in passes]
    is_path = isinstance(source, (str, os.PathLike))

    if calibration is not None and input_range is not None:
        raise AccelcError("give calibration data or an input range, not both (the data's own range is used)")
    # Part of the key: they change the ranges (input_range) or what a compile refuses (the budget).
    extra = {"input_range": input_range if input_range is None or isinstance(input_range, str)
             else json.loads(json.dumps(input_range, default=float)),
             "min_agreement": min_agreement, "strict": strict}
    key = None
    if is_path and Path(source).is_file():
        key = _cache_key(_file_sha256(Path(source)), target, options, pass_specs, shapes, calibration, self_check,
                         extra)
        if not force:
            with _out_lock(out):
                cached = _reuse(out, key)
            if cached is not None:
                return _warned(cached)

    import onnx_ir as ir

    from accelc.backends import get_target
    from accelc.frontend import load as load_model
    from accelc.passes import PassContext, apply_passes
    from accelc.transforms.canonical import Canonicalize

    tgt = get_target(target)
    loaded = load_model(source, input_shape=shapes, trust_pickle=trust_pickle)
    if key is None:
        key = _cache_key(loaded.sha256, target, options, pass_specs, shapes, calibration, self_check, extra)
        if not force:
            with _out_lock(out):
                cached = _reuse(out, key)
            if cached is not None:
                return _warned(cached)
    model = loaded.model
    from accelc.check.inputs import RANGE_ROWS, SELF_CHECK_SAMPLES, parse_input_range, plan_inputs
    from accelc.frontend.sanity import RUN_SAMPLES, refuse_huge_values

    origin = "calibration data"
    if isinstance(calibration, str):
        # A dataset name: its training split calibrates (verify uses the test split, so it stays unseen), and
        # the rows after those hold out the self-check's inputs.
        from accelc.data import load_dataset

        origin = f"dataset '{calibration}' (training split)"
        calibration = load_dataset(calibration, loaded.inputs, split="train")[0][
            : CALIBRATION_SAMPLES + SELF_CHECK_SAMPLES]
    refuse_huge_values(model, RANGE_ROWS if input_range is not None else RUN_SAMPLES)  # before rows are drawn
    plan = plan_inputs(loaded.inputs, calibration, parse_input_range(input_range, len(loaded.inputs)), origin)
    context = PassContext(target=target, target_options=options, min_agreement=min_agreement, strict=strict)
    canon = Canonicalize(context)
    canon(model)
    refuse_huge_values(model, max(RUN_SAMPLES, len(plan.calibration[0]) if plan.calibration else 0))
    inputs = with_absorbed_layouts(loaded.inputs, model.metadata_props)  # absorb-input-layout's perms, if any
    # The graph's passes and the lowering read the rows in the graph's axis order; the passes, which take one
    # array, the first input's.
    calib_list = [s.to_graph(x) for s, x in zip(inputs, plan.calibration)] if plan.calibration else None
    context.calibration = calib_list[0] if calib_list else None
    if hasattr(tgt, "width_emulator") and options.get("engine") != "csim":
        context.emulate_widths = tgt.width_emulator(options, calib_list, context)
    reference = ir.to_proto(model)
    context.reference = reference
    records = []
    if passes:
        model, records = apply_passes(model, passes, context)

    # The target's exact rewrites run on a copy: model.onnx keeps the graph before them, so the
    # self-check judges the rewrites as well as the lowering.
    lowered, legal_records = tgt.legalize(model, context)
    unsupported = tgt.supports(lowered, options)
    if unsupported:
        raise UnsupportedOpError(target, unsupported)

    manifest = {
        "format": FORMAT_VERSION,
        "accelc": __version__,
        "cache_key": key,
        "source": {"path": loaded.source, "sha256": loaded.sha256, "kind": loaded.kind},
        "target": {"name": target, "options": options},
        "inputs": [s.to_dict() for s in inputs],
        "outputs": [s.to_dict() for s in loaded.outputs],
        **({"batch": loaded.batch.to_dict()} if loaded.batch else {}),  # a batch fixed at export: freed or why not
        "canonicalize": [r.to_dict() for r in canon.records],
        "passes": [r.to_dict() for r in records],
        "legalize": [r.to_dict() for r in legal_records if r.modified and r.name != "infer-shapes"],
        "calibration": plan.record,
    }

    def build(tmp: Path) -> None:
        from accelc.check.self_check import run_self_check

        ir.save(model, tmp / MODEL)
        if any(r.modified for r in records):
            import onnx

            onnx.save(reference, tmp / REFERENCE)
        section = tgt.lower(lowered, options, tmp, calib_list)
        # A target may change its own options while lowering (ORT: run QDQ unfused) and say why.
        manifest.setdefault("warnings", []).extend(section.pop("warnings", []))
        manifest["target"].update(section)
        plan.save_sample(tmp)
        write_manifest(tmp, manifest)
        art = Artifact(tmp, manifest)
        if hasattr(tgt, "cross_check"):  # fpga: the numpy engine against the C simulation, bit for bit
            record = tgt.cross_check(tmp, manifest, art.as_inputs(plan.check))
            if record:
                manifest["target"]["engine"]["cross_check"] = record
                write_manifest(tmp, manifest)
        if self_check != "off":
            report = run_self_check(art, plan.check, plan.check_described, loaded.run_source)
            manifest["self_check"] = report.to_dict()
            write_manifest(tmp, manifest)
            if not report.passed:
                msg = (f"{target} artifact failed its self-check on {report.inputs}: "
                       f"{'; '.join(report.violations[:6])}"
                       " — refusing to write it (pass --self-check warn to keep it anyway)")
                if self_check == "error":
                    raise VerificationError(msg)
                log.warning(msg)

    with _out_lock(out):
        write_atomically(out, build)
        art = _own(load(out), key)
    _store_in_cache(out, key)
    return _warned(art)


def _warned(art: Artifact) -> Artifact:
    """The artifact's warnings (e.g. fixed-point ranges from random inputs, a lossy pass below its budget) as
    Python warnings, for API users; the CLI prints them from the manifest instead. Every compile says them, a
    cached one too."""
    for message in art.manifest.get("warnings", []):
        warnings.warn(message, AccelcWarning, stacklevel=3)
    for record in art.manifest.get("passes", []):
        for message in record.get("warnings", []):
            warnings.warn(f"{record['name']}: {message}", AccelcWarning, stacklevel=3)
    return art


def _reuse(out: Path, key: str) -> Artifact | None:
    """An identical earlier compile: the artifact already at `out`, or one in the artifact cache."""
    try:
        art = load(out)
        if art.manifest.get("cache_key") == key:
            return art
    except AccelcError:
        pass
    cached = cache_root() / "artifacts" / key
    if (cached / "manifest.json").exists():
        write_atomically(out, lambda tmp: shutil.copytree(cached, tmp, dirs_exist_ok=True))
        return _own(load(out), key)
    return None


def _store_in_cache(out: Path, key: str) -> None:
    dest = cache_root() / "artifacts" / key
    if dest.exists():
        return
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(dest, lambda tmp: shutil.copytree(out, tmp, dirs_exist_ok=True))
    except OSError as e:  # a cache that cannot be written only costs time
        log.debug("artifact cache not written: %s", e)
