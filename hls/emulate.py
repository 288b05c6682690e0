"""hls4ml C simulation: build the emulator library with g++, cache it by content hash, run and trace it.

The generated library loads its weights at run time from an absolute path baked in at build time
(WEIGHTS_DIR) and calls exit(1) when they are missing, so each emulator is built in its final cache
directory and only loaded after its weight files are checked. Running goes through ctypes directly
(the same C entry points hls4ml's predict/trace use), so loading an artifact needs no hls4ml
conversion and no recompilation.
"""

from __future__ import annotations

import ctypes
import fcntl
import hashlib
import json
import logging
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from accelc.cache import cache_root
from accelc.errors import AccelcError

log = logging.getLogger("accelc")

EMULATOR_META = "accelc_emulator.json"
# -O1: measured on this machine class (shared/MEASURED.md) to build 2x faster than hls4ml's -O3
# and to run no slower; the numbers are identical.
DEFAULT_OPT_FLAG = "-O1"
_HASHED_SUFFIXES = {".cpp", ".h", ".hpp", ".txt", ".sh", ".json"}


def project_hash(project_dir: Path, opt_flag: str) -> str:
    """Content hash of what the emulator is built from (sources, weights, build script, flags)."""
    h = hashlib.sha256(opt_flag.encode())
    for p in sorted(project_dir.rglob("*")):
        rel = p.relative_to(project_dir).as_posix()
        if p.is_file() and p.suffix in _HASHED_SUFFIXES and not rel.startswith("tb_data"):
            if "ap_types" in rel or "nnet_utils" in rel:
                continue  # library headers: covered by the hls4ml version in the meta file
            h.update(rel.encode())
            # hls4ml writes a random LIB_STAMP into build_lib.sh on every conversion: not content.
            h.update(re.sub(rb"LIB_STAMP=\w+", b"", p.read_bytes()))
    return h.hexdigest()[:20]


@dataclass
class EmulatorBuild:
    lib: Path
    seconds: float
    cached: bool
    key: str


def build_emulator(project_dir: Path, opt_flag: str = DEFAULT_OPT_FLAG) -> EmulatorBuild:
    """Build (or reuse) the C-simulation library of an hls4ml project; returns the library path."""
    key = project_hash(project_dir, opt_flag)
    lock = cache_root() / "emulators" / f"{key}.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    # Two processes building the same project (same hash) would delete each other's files: one builds, the
    # other waits and then reuses that build.
    with open(lock, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        return _build_unlocked(project_dir, opt_flag, key)


def _file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _cached_library(done: Path) -> Path | None:
    """The library a finished build recorded, if it is still the very file that build wrote. A library that
    was overwritten or truncated since (or a record without a checksum, from an older accelc) is never loaded:
    ctypes would crash or run other code; the caller rebuilds instead."""
    try:
        record = json.loads(done.read_text())
        lib = Path(record["lib"])
        expected = record["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        log.debug("cached hls4ml emulator in %s has no checksum record (an older accelc): rebuilding it", done.parent)
        return None
    if lib.exists() and _file_sha256(lib) == expected:
        return lib
    log.warning("cached hls4ml emulator in %s does not match its checksum: rebuilding it", done.parent)
    return None


def _build_unlocked(project_dir: Path, opt_flag: str, key: str) -> EmulatorBuild:
    home = cache_root() / "emulators" / key
    done = home / "BUILD_OK"
    if done.exists() and (lib := _cached_library(done)) is not None:
        return EmulatorBuild(lib, 0.0, True, key)
    start = time.perf_counter()
    if home.exists():
        shutil.rmtree(home)  # an interrupted earlier build, or one whose library no longer matches
    home.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(project_dir, home, ignore=shutil.ignore_patterns("*.so", "tb_data"))
    script = home / "build_lib.sh"
    text = script.read_text()
    text = re.sub(r'CFLAGS="-O\d -fPIC"', f'CFLAGS="{opt_flag} -fPIC"', text)
    script.write_text(text)
    proc = subprocess.run(["bash", "build_lib.sh"], cwd=home, capture_output=True, text=True)
    (home / "build.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
        raise AccelcError(f"g++ failed to build the hls4ml emulator in {home} (see build.log): {tail}")
    libs = sorted((home / "firmware").glob("*.so"))
    if not libs:
        raise AccelcError(f"the hls4ml emulator build in {home} produced no library (see build.log)")
    done.write_text(json.dumps({"lib": str(libs[-1]), "sha256": _file_sha256(libs[-1])}))
    return EmulatorBuild(libs[-1], time.perf_counter() - start, False, key)


def check_input_sizes(inputs: list[np.ndarray], meta: dict, runner: str) -> int:
    """The number of samples, after checking each input's values per sample against the project's (meta)."""
    for x, spec in zip(inputs, meta["inputs"]):
        if int(np.prod(x.shape[1:])) != spec["size"]:
            raise AccelcError(f"input has {int(np.prod(x.shape[1:]))} values per sample, {runner} "
                              f"expects {spec['size']} (shape {spec['shape']})")
    return inputs[0].shape[0]


class _TraceData(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("data", ctypes.c_void_p)]


class Emulator:
    """Runs an hls4ml C-simulation library through ctypes: NCHW arrays in, arrays out, optional trace."""

    description = "hls4ml C simulation (g++)"

    def __init__(self, lib: Path, meta: dict) -> None:
        self.meta = meta
        weights = lib.parent / "weights"
        if not weights.is_dir():
            raise AccelcError(f"emulator library {lib} has no weights directory beside it; recompile the artifact")
        self._lib = ctypes.CDLL(str(lib))
        self._fn = getattr(self._lib, f"{meta['project']}_float")
        self._fn.restype = None
        n = len(meta["inputs"]) + len(meta["outputs"])
        self._fn.argtypes = [np.ctypeslib.ndpointer(ctypes.c_float, flags="C_CONTIGUOUS")] * n

    def _call(self, inputs: list[np.ndarray], i: int) -> list[np.ndarray]:
        args = [np.ascontiguousarray(x[i], dtype=np.float32).reshape(-1) for x in inputs]
        outs = [np.zeros(int(np.prod(o["shape"])), dtype=np.float32) for o in self.meta["outputs"]]
        self._fn(*args, *outs)
        return outs

    def _check(self, inputs: list[np.ndarray]) -> int:
        return check_input_sizes(inputs, self.meta, "the emulator")

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        n = self._check(inputs)
        results = [self._call(inputs, i) for i in range(n)]
        return [np.stack([r[k] for r in results]).reshape((n, *o["shape"]))
                for k, o in enumerate(self.meta["outputs"])]

    def trace(self, inputs: list[np.ndarray]) -> tuple[list[np.ndarray], dict[str, np.ndarray]]:
        """Outputs plus every traced layer's output (hls4ml layer name -> array, channels-last)."""
        n = self._check(inputs)
        layers = self.meta["trace"]
        self._lib.allocate_trace_storage.argtypes = [ctypes.c_size_t]
        self._lib.collect_trace_output.argtypes = [ctypes.POINTER(_TraceData)]
        buf = (_TraceData * len(layers))()
        traced: dict[str, list[np.ndarray]] = {layer["name"]: [] for layer in layers}
        shapes = {layer["name"]: layer["shape"] for layer in layers}
        results = []
        self._lib.allocate_trace_storage(ctypes.sizeof(ctypes.c_float))
        try:
            for i in range(n):
                results.append(self._call(inputs, i))
                self._lib.collect_trace_output(buf)
                for t in buf:
                    if not t.name:
                        continue  # the bridge traces fewer layers than were marked (e.g. optimized away)
                    name = t.name.decode()
                    ptr = ctypes.cast(t.data, ctypes.POINTER(ctypes.c_float))
                    traced.setdefault(name, []).append(np.ctypeslib.as_array(ptr, shape=shapes[name]).copy())
        finally:
            self._lib.free_trace_storage()
        outs = [np.stack([r[k] for r in results]).reshape((n, *o["shape"]))
                for k, o in enumerate(self.meta["outputs"])]
        return outs, {k: np.stack(v) for k, v in traced.items() if v}


def emulator_meta(hls_model, node_names: dict[str, str]) -> dict:
    """What the ctypes runner needs to know about an hls4ml model, saved beside the project."""
    import hls4ml
    from hls4ml.model.types import XnorPrecisionType

    from accelc.hls.project import layer_origin

    trace = []
    for layer in hls_model.get_layers():
        if layer.get_attr("function_cpp", None) and layer.get_attr("trace", False):
            var = layer.get_output_variable()
            # an xnor (binary) output holds 0/1 codes of -1/+1 (BatchNorm + BipolarQuant merged): nothing to compare
            xnor = isinstance(getattr(var.type, "precision", None), XnorPrecisionType)
            trace.append({"name": layer.name, "shape": [int(s) for s in var.shape], "class": layer.class_name,
                          "onnx_node": None if xnor else layer_origin(layer.name, node_names)})
    # When hls4ml splits one ONNX node over several layers (a quantized Gemm -> Dense + bias), only the last of
    # them holds the node's output; the earlier ones are partial results with nothing to compare to.
    last = {t["onnx_node"]: i for i, t in enumerate(trace)}
    for i, t in enumerate(trace):
        if last.get(t["onnx_node"]) != i:
            t["onnx_node"] = None
    return {
        "project": hls_model.config.get_project_name(),
        "hls4ml": hls4ml.__version__,
        "inputs": [{"name": v.name, "shape": [int(s) for s in v.shape], "size": int(v.size())}
                   for v in hls_model.get_input_variables()],
        "outputs": [{"name": v.name, "shape": [int(s) for s in v.shape]} for v in hls_model.get_output_variables()],
        "trace": trace,
    }


def save_meta(project_dir: Path, meta: dict) -> None:
    (project_dir / EMULATOR_META).write_text(json.dumps(meta, indent=1))


def load_emulator(project_dir: Path, opt_flag: str = DEFAULT_OPT_FLAG) -> Emulator:
    """The runnable emulator of a written project, building it into the cache when it is not there."""
    meta = json.loads((project_dir / EMULATOR_META).read_text())
    return Emulator(build_emulator(project_dir, opt_flag).lib, meta)
