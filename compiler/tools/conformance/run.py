"""Run conformance cases: through accelc (fpga, cpu) and through hls4ml's own ONNX frontend, each compared with
ONNX Runtime on the original model, each case in a subprocess so that an abort or a hang is one outcome.

Outcome classes (CLASSES):
- matched: compiled, and the max abs error on a fresh seeded N(0,1) test set is within the tolerance;
- refused: a clean refusal before lowering (accelc: UnsupportedOpError or another AccelcError raised before the
  target's `lower`; hls4ml: an exception during QONNX preparation or conversion);
- self-check: accelc lowered the model but its own self-check (VerificationError) refused the artifact: caught,
  but late;
- wrong: compiled, but the numbers (or the output size) disagree with ONNX Runtime beyond the tolerance, or (fpga)
  accelc's numpy engine and hls4ml's C simulation disagree by a single bit (at compile, on the self-check inputs,
  or on the test set);
- crashed: any other exception (an AccelcError raised while lowering included: the support check should have
  refused first), a C++ build failure, the process dying, or a timeout.

The tolerance is one rule for every fixed-point runner (accelc fpga and hls4ml alike), appropriate for 16-bit
fixed point: max abs err <= 0.02 * max(1, max |reference|); the cpu target (ONNX Runtime on the canonicalized
graph) must agree to float rounding: max abs err <= 1e-5 * max(1, max |reference|).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

CLASSES = ("matched", "refused", "self-check", "wrong", "crashed")
RUNNERS = ("fpga", "cpu", "hls4ml")
FIXED_RTOL = 0.02
FLOAT_RTOL = 1e-5
CALIBRATION_SAMPLES, CALIBRATION_SEED = 64, 0
TEST_SAMPLES, TEST_SEED = 16, 1  # a test set distinct from the calibration data
RUNNER_TIMEOUT_S = 300
HLS4ML_PRECISION = "fixed<16,6>"  # hls4ml's documented default
# Frames of the lowering step: an AccelcError raised inside them is a failure to lower, not a refusal.
_LOWERING_FRAMES = {"lower", "lower_to_hls", "write_project", "build_emulator"}


@dataclass
class Outcome:
    case: str
    op: str
    runner: str  # "fpga" | "cpu" | "hls4ml"
    cls: str  # one of CLASSES
    max_err: float | None = None
    tol: float | None = None
    detail: str = ""
    seconds: float = 0.0
    engine: str = ""  # fpga: "bit-exact" (the numpy engine ran it, equal to the C simulation) | "csim only: why"

    def to_dict(self) -> dict:
        return asdict(self)


def tolerance(runner: str, reference: list[np.ndarray]) -> float:
    """The rule in the module docstring: relative to the output scale, floored at 1."""
    scale = max([1.0, *(float(np.max(np.abs(r))) for r in reference if r.size)])
    return (FLOAT_RTOL if runner == "cpu" else FIXED_RTOL) * scale


def make_inputs(case, n: int, seed: int) -> list[np.ndarray]:
    """Seeded N(0,1) inputs (|N(0,1)| + 0.5 for divisors); axis 0 is the batch (run chunk-wise if static)."""
    rng = np.random.default_rng(seed)
    out = []
    for i, shape in enumerate(case.input_shapes):
        x = rng.standard_normal((n, *shape[1:])).astype(np.float32)
        out.append(np.abs(x) + 0.5 if i in case.positive_inputs else x)
    return out


def reference(model_path: Path, inputs: list[np.ndarray]) -> list[np.ndarray]:
    import onnxruntime as ort

    from accelc.reference import run_batched

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(str(model_path), opts, providers=["CPUExecutionProvider"])
    feeds = {i.name: x for i, x in zip(sess.get_inputs(), inputs)}
    return [np.asarray(y, dtype=np.float32) for y in run_batched(sess, feeds)]


def compare(case, runner: str, got: list[np.ndarray], ref: list[np.ndarray], t0: float) -> Outcome:
    tol = tolerance(runner, ref)
    if len(got) != len(ref):
        return Outcome(case.name, case.op, runner, "wrong", None, tol, f"{len(got)} outputs, expected {len(ref)}",
                       time.perf_counter() - t0)
    err = 0.0
    for g, r in zip(got, ref):
        g = np.asarray(g, dtype=np.float32)
        if g.size != r.size:
            return Outcome(case.name, case.op, runner, "wrong", None, tol,
                           f"output shape {list(g.shape)} has {g.size} values, expected {list(r.shape)}",
                           time.perf_counter() - t0)
        diff = np.abs(g.reshape(r.shape) - r)
        err = max(err, float(np.max(diff)) if np.all(np.isfinite(diff)) else float("inf"))
    cls = "matched" if err <= tol else "wrong"
    return Outcome(case.name, case.op, runner, cls, err, tol, "", time.perf_counter() - t0)


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:400] if text else ''}"


def _raised_while_lowering(e: BaseException) -> bool:
    tb = e.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_name in _LOWERING_FRAMES:
            return True
        tb = tb.tb_next
    return False


def run_accelc(case, target: str, model_path: Path, workdir: Path) -> Outcome:
    """Compile with accelc for `target` and compare the artifact's predictions with ONNX Runtime."""
    import accelc
    from accelc.errors import AccelcError, EngineMismatchError, UnsupportedOpError, VerificationError

    t0 = time.perf_counter()
    calib = make_inputs(case, CALIBRATION_SAMPLES, CALIBRATION_SEED)
    test = make_inputs(case, TEST_SAMPLES, TEST_SEED)
    ref = reference(model_path, test)

    def outcome(cls: str, detail: str) -> Outcome:
        return Outcome(case.name, case.op, target, cls, None, None, detail, time.perf_counter() - t0)

    try:
        # The driver takes one calibration array; a multi-input model is calibrated on its own random inputs.
        art = accelc.compile(str(model_path), target=target, out=workdir / target,
                             calibration=calib[0] if len(calib) == 1 else None)
    except UnsupportedOpError as e:
        return outcome("refused", _one_line(e))
    except EngineMismatchError as e:
        return outcome("wrong", _one_line(e))
    except VerificationError as e:
        return outcome("self-check", _one_line(e))
    except AccelcError as e:
        return outcome("crashed" if _raised_while_lowering(e) else "refused", _one_line(e))
    except Exception as e:  # noqa: BLE001 - every other failure is a crash, by definition
        return outcome("crashed", f"{_one_line(e)} @ {_where(e)}")
    try:
        got = art.predict(test if len(test) > 1 else test[0])
    except Exception as e:  # noqa: BLE001
        return outcome("crashed", f"predict: {_one_line(e)}")
    got = got if isinstance(got, list) else [got]
    engine = ""
    if target == "fpga":
        status = art.manifest["target"].get("engine", {})
        engine = "bit-exact" if status.get("numpy") == "ok" else f"csim only: {status.get('why', '')}"
        if engine == "bit-exact":  # the test set too: the engine's outputs are the C simulation's, bit for bit
            csim = accelc.load(art.path, engine="csim").predict(test if len(test) > 1 else test[0])
            csim = csim if isinstance(csim, list) else [csim]
            if any(not np.array_equal(a, b) for a, b in zip(got, csim)):
                return outcome("wrong", "the numpy engine and the C simulation differ on the test set")
    result = compare(case, target, got, ref, t0)
    result.engine = engine
    return result


def _where(e: BaseException) -> str:
    frames = traceback.extract_tb(e.__traceback__)
    return f"{Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else "?"


def run_hls4ml(case, model_path: Path, workdir: Path) -> Outcome:
    """hls4ml 1.3's own ONNX frontend, configured as documented (accelc.hls.direct); the C simulation is built
    with accelc's build function, so flags and caching equal accelc's."""
    import onnx

    from accelc.hls.direct import build_direct, convert_direct

    t0 = time.perf_counter()
    test = make_inputs(case, TEST_SAMPLES, TEST_SEED)
    ref = reference(model_path, test)

    def outcome(cls: str, detail: str) -> Outcome:
        return Outcome(case.name, case.op, "hls4ml", cls, None, None, detail, time.perf_counter() - t0)

    project = workdir / "hls4ml-direct"
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            meta = convert_direct(onnx.load(str(model_path)), project, HLS4ML_PRECISION)
    except Exception as e:  # noqa: BLE001 - hls4ml raises bare Exceptions: a refusal at conversion
        return outcome("refused", _one_line(e))
    try:
        got = build_direct(project, meta).run(test)
    except Exception as e:  # noqa: BLE001
        return outcome("crashed", _one_line(e))
    return compare(case, "hls4ml", got, ref, t0)


def run_in_process(case_name: str, runners: Iterable[str], workdir: Path, out: Path) -> None:
    """Runs the runners one after another in this process, appending each outcome to `out` as it ends."""
    import onnx

    from accelc.tools.conformance.cases import by_name

    case = by_name(case_name)
    workdir.mkdir(parents=True, exist_ok=True)
    model_path = workdir / "model.onnx"
    if not model_path.exists():
        onnx.save(case.build(), str(model_path))
    for runner in runners:
        sub = Path(tempfile.mkdtemp(prefix=f"{runner}-", dir=workdir))
        if runner == "hls4ml":
            result = run_hls4ml(case, model_path, sub)
        else:
            result = run_accelc(case, runner, model_path, sub)
        with open(out, "a") as f:
            f.write(json.dumps(result.to_dict()) + "\n")


def run_subprocess(cmd: list[str], env: dict, timeout: float) -> tuple[str, str]:
    """Run `cmd` in its own session: (its stdout and stderr, why it ended). On a timeout the whole process group
    (g++ included) is killed, nothing else."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        log, _ = proc.communicate(timeout=timeout)
        why = f"process exited with status {proc.returncode}"
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        log, _ = proc.communicate()
        why = f"timed out after {timeout:.0f} s"
    return log.decode(errors="replace"), why


def run_isolated(case, runners: Iterable[str], workdir: Path, timeout: float = RUNNER_TIMEOUT_S) -> list[Outcome]:
    """Run one case's runners in a subprocess; a runner whose process dies or hangs is 'crashed', the rest go on
    in a fresh process. ACCELC_CONFORMANCE_CACHE, when set, is the accelc cache the subprocesses use."""
    workdir = Path(workdir) / case.name
    workdir.mkdir(parents=True, exist_ok=True)
    out = workdir / "outcomes.jsonl"
    out.unlink(missing_ok=True)
    env = dict(os.environ)
    if os.environ.get("ACCELC_CONFORMANCE_CACHE"):
        env["ACCELC_CACHE_DIR"] = os.environ["ACCELC_CONFORMANCE_CACHE"]
    results: dict[str, Outcome] = {}
    remaining = list(runners)
    while remaining:
        cmd = [sys.executable, "-c", "import sys; from accelc.tools.conformance.run import main; main(sys.argv[1:])",
               case.name, "--runners", ",".join(remaining), "--workdir", str(workdir), "--out", str(out)]
        t0 = time.perf_counter()
        log, why = run_subprocess(cmd, env, timeout * len(remaining))
        if out.exists():
            for line in out.read_text().splitlines():
                o = Outcome(**json.loads(line))
                results[o.runner] = o
        still = [r for r in remaining if r not in results]
        if still:
            tail = " | ".join(log.strip().splitlines()[-2:])[-300:]
            results[still[0]] = Outcome(case.name, case.op, still[0], "crashed", None, None, f"{why}: {tail}",
                                        time.perf_counter() - t0)
            still = still[1:]
        remaining = still
    return [results[r] for r in runners]


def run_cases(cases, runners: Iterable[str] = RUNNERS, jobs: int = 2, workdir: Path | None = None,
              progress: Callable[[list[Outcome]], None] | None = None) -> list[Outcome]:
    """Run every case (in parallel, `jobs` subprocesses at a time); outcomes in catalogue order."""
    runners = list(runners)
    root = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="accelc-conformance-"))

    # hls4ml keeps one ONNX handler table per process, and accelc's extensions replace some of its handlers
    # (Softmax, Resize, MaxPool): hls4ml's own frontend is measured in a process accelc never registered in.
    groups = [g for g in ([r for r in runners if r != "hls4ml"], [r for r in runners if r == "hls4ml"]) if g]

    def one(case) -> list[Outcome]:
        got = {o.runner: o for g in groups for o in run_isolated(case, g, root)}
        res = [got[r] for r in runners]
        if progress:
            progress(res)
        return res

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return [o for res in pool.map(one, cases) for o in res]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="run one conformance case in this process (used by run_isolated)")
    p.add_argument("case")
    p.add_argument("--runners", default=",".join(RUNNERS))
    p.add_argument("--workdir", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    a = p.parse_args(argv)
    run_in_process(a.case, a.runners.split(","), a.workdir, a.out)


if __name__ == "__main__":
    main()
