"""ONNX's own backend node tests through accelc, with the inputs they come with and no calibration.

`python -m accelc.tools.conformance.onnx_nodes [--target fpga] [--jobs 2] [--json out.json] [--ops Conv,MaxPool]
[--limit N]` prints a table per op and the totals, then every silent or crashed case; exit 1 if there is any.

The cases come from the onnx wheel's generators (`onnx.backend.test.case.node.collect_testcases()`: each case's
model and its one data set; the wheel ships no `data/node` directories). Selected: the single-node cases whose op
accelc.hls.support has a check for (`CHECKS`: the ops the fpga target lowers where they are right, and refuses by
name where not), and the function-expanded variants of those cases, which are counted as not applicable.

Conversion: node tests pass weights as graph inputs. The first input stays the model's runtime input; every other
input becomes an initializer holding its test value (so Conv's W, Gemm's B, Add's second operand, Reshape's shape,
Clip's bounds are constants, as in a real model). Each case is compiled with `accelc.compile(path, target=...,
calibration=None)` in a subprocess of its own (a timeout or an abort is one outcome) and predicted on its own
input, under `warnings.catch_warnings(record=True)`. Classes (CLASSES):
- right: compiled, every output within run.tolerance of ONNX's expected output (FIXED_RTOL * max(1, max|ref|) for
  fpga), and no warning;
- refused: a clean refusal at compile: UnsupportedOpError or another AccelcError before lowering, or a
  VerificationError from the compile self-check;
- warned: compiled, and `Artifact.predict` gave an AccelcWarning (InputRangeWarning: the range guard), or compile
  gave an AccelcWarning about the result (the generic "no calibration data" note every uncalibrated compile gives
  is not one); the detail says whether the output was within the tolerance anyway;
- silent: compiled, predict quiet, an output wrong (or of the wrong size): each one is a bug;
- crashed: any other exception (an AccelcError raised while lowering included), the process dying, a timeout;
- n/a: not applicable, with the reason: the first input is not float32 (int, bool, float16/64, float8 and 4-bit
  cases), an empty tensor, an output numpy cannot hold, a non-tensor input, several data sets, a
  function-expanded variant (its graph is the function's body, other ops).
"""

from __future__ import annotations

import argparse
import copy
import functools
import json
import os
import shutil
import sys
import tempfile
import time
import warnings
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from accelc.tools.conformance.run import (
    RUNNER_TIMEOUT_S,
    Outcome,
    _one_line,
    _raised_while_lowering,
    _where,
    compare,
    run_subprocess,
)

CLASSES = ("right", "refused", "warned", "silent", "crashed", "n/a")
TARGETS = ("fpga", "cpu")
EXPANDED = "_expanded"


@dataclass
class NodeCase:
    """One ONNX node test, converted: `model` takes `inputs` (the runtime input) and should give `outputs`;
    `skip` is the reason it is not applicable (then model is None)."""

    name: str
    op: str
    model: onnx.ModelProto | None = field(default=None, repr=False)
    inputs: list[np.ndarray] = field(default_factory=list, repr=False)
    outputs: list[np.ndarray] = field(default_factory=list, repr=False)
    skip: str = ""


def lowered_ops() -> set[str]:
    """The ops accelc's fpga target has a support check for (accelc.hls.support.CHECKS)."""
    from accelc.hls.support import CHECKS

    return set(CHECKS)


@functools.lru_cache(maxsize=1)
def onnx_testcases() -> tuple:
    """Every node test case the onnx wheel generates (about 5 s; its generators warn about overflows on purpose)."""
    from onnx.backend.test.case.node import collect_testcases

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return tuple(collect_testcases())


def node_op(model: onnx.ModelProto) -> str | None:
    """The op of a single-node model in the default domain, else None."""
    nodes = model.graph.node
    return nodes[0].op_type if len(nodes) == 1 and nodes[0].domain in ("", "ai.onnx") else None


def _dtype(x) -> str:
    if isinstance(x, np.ndarray):
        return str(x.dtype)
    if isinstance(x, onnx.TensorProto):
        return onnx.helper.tensor_dtype_to_np_dtype(x.data_type).name if x.data_type else "a TensorProto"
    return type(x).__name__


def _not_applicable(model: onnx.ModelProto, inputs: list, outputs: list) -> str:
    """Why a node test cannot be run as a one-input float model ('' if it can)."""
    if not inputs or not model.graph.input:
        return "no inputs"
    first = inputs[0]
    if not isinstance(first, np.ndarray) or first.dtype != np.float32:
        return f"the first input is {_dtype(first)} (accelc's inputs are float32)"
    if any(i.type.WhichOneof("value") != "tensor_type" for i in model.graph.input):
        return "a non-tensor input (sequence or optional)"
    if any(isinstance(x, np.ndarray) and x.size == 0 for x in [*inputs, *outputs]):
        return "an empty tensor (a zero-size dim)"
    if any(not isinstance(y, np.ndarray) or y.dtype.kind not in "fiub" for y in outputs):
        return "an expected output numpy does not hold (float8, 4-bit or 2-bit)"
    return ""


def _initializer(value, name: str) -> onnx.TensorProto:
    if isinstance(value, onnx.TensorProto):
        t = copy.deepcopy(value)
        t.name = name
        return t
    return numpy_helper.from_array(np.asarray(value), name)


def convert(tc, op: str) -> NodeCase:
    """A node test case as a NodeCase: the first input stays an input, the others become initializers."""
    if len(tc.data_sets or []) != 1:
        return NodeCase(tc.name, op, skip=f"{len(tc.data_sets or [])} data sets (one is run)")
    inputs, outputs = (list(x) for x in tc.data_sets[0])
    why = _not_applicable(tc.model, inputs, outputs)
    if why:
        return NodeCase(tc.name, op, skip=why)
    model = copy.deepcopy(tc.model)
    graph = model.graph
    names = [i.name for i in graph.input]
    graph.initializer.extend(_initializer(v, n) for v, n in zip(inputs[1:], names[1:]))
    del graph.input[1:]
    return NodeCase(tc.name, op, model, [inputs[0]], [np.asarray(y) for y in outputs])


def select(ops: list[str] | None = None, names: list[str] | None = None) -> list[NodeCase]:
    """The node tests of the lowered ops (only `ops`, or only the cases named `names`, when given), in the wheel's
    order; function-expanded variants are included, as not applicable."""
    wanted = lowered_ops() if ops is None else set(ops) & lowered_ops()
    cases, op_of = [], {}
    for tc in onnx_testcases():
        if EXPANDED in tc.name:
            op = op_of.get(tc.name.split(EXPANDED)[0])
            case = NodeCase(tc.name, op or "", skip="a function-expanded variant (its graph is the function body)")
        else:
            op = node_op(tc.model)
            op_of[tc.name] = op
            case = None
        if op not in wanted or (names is not None and tc.name not in names):
            continue
        cases.append(case or convert(tc, op))
    return cases


def classify(case: NodeCase, model_path: Path, target: str, workdir: Path) -> Outcome:
    """Compile the case's model with no calibration, predict on its input, and classify (module docstring)."""
    import accelc
    from accelc.errors import AccelcError, AccelcWarning, UnsupportedOpError, VerificationError
    from accelc.hls.lower import RANDOM_RANGES_WARNING

    t0 = time.perf_counter()

    def outcome(cls: str, detail: str, err: float | None = None, tol: float | None = None) -> Outcome:
        return Outcome(case.name, case.op, target, cls, err, tol, detail, time.perf_counter() - t0)

    with warnings.catch_warnings(record=True) as at_compile:
        warnings.simplefilter("always")
        try:
            art = accelc.compile(str(model_path), target=target, out=workdir / "artifact", calibration=None)
        except UnsupportedOpError as e:
            return outcome("refused", _one_line(e))
        except VerificationError as e:
            return outcome("refused", f"self-check: {_one_line(e)}")
        except AccelcError as e:
            return outcome("crashed" if _raised_while_lowering(e) else "refused", f"{_one_line(e)} @ {_where(e)}")
        except Exception as e:  # noqa: BLE001 - every other failure is a crash, by definition
            return outcome("crashed", f"{_one_line(e)} @ {_where(e)}")
    about = [str(w.message) for w in at_compile
             if issubclass(w.category, AccelcWarning) and str(w.message) != RANDOM_RANGES_WARNING]
    with warnings.catch_warnings(record=True) as at_predict:
        warnings.simplefilter("always")
        try:
            got = art.predict(case.inputs[0] if len(case.inputs) == 1 else case.inputs)
        except Exception as e:  # noqa: BLE001
            return outcome("crashed", f"predict: {_one_line(e)} @ {_where(e)}")
    guard = [f"{w.category.__name__}: {w.message}" for w in at_predict if issubclass(w.category, AccelcWarning)]
    expected = [np.asarray(y, dtype=np.float32) for y in case.outputs]
    res = compare(case, target, got if isinstance(got, list) else [got], expected, t0)
    said = guard + [f"compile: {m}" for m in about]
    if said:
        within = "within" if res.cls == "matched" else "BEYOND"
        return outcome("warned", f"{within} tolerance; {said[0][:300]}", res.max_err, res.tol)
    return outcome("right" if res.cls == "matched" else "silent", res.detail, res.max_err, res.tol)


def write_case(case: NodeCase, case_dir: Path) -> Path:
    """The case's model and data (data.npz: in_0.., out_0..) in `case_dir`; returns the model's path."""
    case_dir.mkdir(parents=True, exist_ok=True)
    model_path = case_dir / "model.onnx"
    onnx.save(case.model, str(model_path))
    arrays = {f"in_{i}": x for i, x in enumerate(case.inputs)} | {f"out_{i}": y for i, y in enumerate(case.outputs)}
    np.savez(case_dir / "data.npz", **arrays)
    (case_dir / "case.json").write_text(json.dumps({"name": case.name, "op": case.op}))
    return model_path


def read_case(case_dir: Path) -> NodeCase:
    meta = json.loads((case_dir / "case.json").read_text())
    with np.load(case_dir / "data.npz") as data:
        ins = [data[k] for k in sorted((k for k in data.files if k.startswith("in_")), key=lambda k: int(k[3:]))]
        outs = [data[k] for k in sorted((k for k in data.files if k.startswith("out_")), key=lambda k: int(k[4:]))]
    return NodeCase(meta["name"], meta["op"], onnx.load(str(case_dir / "model.onnx")), ins, outs)


def _child(argv: list[str]) -> None:
    """In the subprocess: classify the case written in argv[0] for target argv[1], into outcome.json there."""
    case_dir, target = Path(argv[0]), argv[1]
    result = classify(read_case(case_dir), case_dir / "model.onnx", target, case_dir)
    (case_dir / "outcome.json").write_text(json.dumps(result.to_dict()))


def run_isolated(case: NodeCase, target: str, root: Path, timeout: float = RUNNER_TIMEOUT_S,
                 keep: bool = False) -> Outcome:
    """One case in a subprocess of its own (n/a cases are not run); the artifact is removed unless `keep`."""
    if case.skip:
        return Outcome(case.name, case.op, target, "n/a", detail=case.skip)
    case_dir = Path(root) / case.name
    shutil.rmtree(case_dir, ignore_errors=True)
    write_case(case, case_dir)
    cmd = [sys.executable, "-c", "import sys; from accelc.tools.conformance.onnx_nodes import _child; "
           "_child(sys.argv[1:])", str(case_dir), target]
    t0 = time.perf_counter()
    log, why = run_subprocess(cmd, dict(os.environ), timeout)
    found = case_dir / "outcome.json"
    if found.exists():
        result = Outcome(**json.loads(found.read_text()))
    else:
        tail = " | ".join(log.strip().splitlines()[-2:])[-300:]
        result = Outcome(case.name, case.op, target, "crashed", None, None, f"{why}: {tail}", time.perf_counter() - t0)
    if not keep:
        shutil.rmtree(case_dir / "artifact", ignore_errors=True)
    return result


def run_node_cases(cases: list[NodeCase], target: str = "fpga", jobs: int = 2, workdir: Path | None = None,
                   progress: Callable[[Outcome], None] | None = None, keep: bool = False) -> list[Outcome]:
    """Every case (`jobs` subprocesses at a time); outcomes in the cases' order."""
    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r}; choose one of {TARGETS}")
    root = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="accelc-onnx-nodes-"))

    def one(case: NodeCase) -> Outcome:
        res = run_isolated(case, target, root, keep=keep)
        if progress:
            progress(res)
        return res

    try:
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            return list(pool.map(one, cases))
    finally:
        if workdir is None and not keep:
            shutil.rmtree(root, ignore_errors=True)


def table(outcomes: list[Outcome]) -> str:
    """Markdown: one row per op, a column per class, and the totals."""
    per_op: dict[str, Counter] = {}
    for o in outcomes:
        per_op.setdefault(o.op, Counter())[o.cls] += 1
    total = Counter(o.cls for o in outcomes)
    lines = ["| op | cases | " + " | ".join(CLASSES) + " |", "|" + "---|" * (2 + len(CLASSES))]
    for op, c in [*sorted(per_op.items()), ("**TOTAL**", total)]:
        lines.append(f"| {op} | {sum(c.values())} | " + " | ".join(str(c.get(k, 0)) for k in CLASSES) + " |")
    return "\n".join(lines)


def bad_lines(outcomes: list[Outcome]) -> list[str]:
    lines = []
    for o in outcomes:
        if o.cls in ("silent", "crashed"):
            err = f" max abs err {o.max_err:.4g} > tol {o.tol:.4g}" if o.max_err is not None else ""
            lines.append(f"- {o.cls} {o.case} ({o.op}):{err} {o.detail}".rstrip())
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m accelc.tools.conformance.onnx_nodes",
                                description=__doc__.split("\n")[0])
    p.add_argument("--target", default="fpga", choices=TARGETS)
    p.add_argument("--jobs", type=int, default=2, help="cases run at once, each in its own process")
    p.add_argument("--json", type=Path, help="write every outcome here")
    p.add_argument("--ops", help="comma-separated ops, e.g. Conv,MaxPool (default: every op accelc lowers)")
    p.add_argument("--limit", type=int, help="run only the first N applicable cases (n/a ones are then not listed)")
    p.add_argument("--workdir", type=Path, help="where models and artifacts go (default: a temporary dir)")
    p.add_argument("--keep", action="store_true", help="keep each case's artifact")
    p.add_argument("--list", action="store_true", help="list the selected cases and exit")
    a = p.parse_args(argv)
    cases = select(a.ops.split(",") if a.ops else None)
    if a.limit is not None:
        cases = [c for c in cases if not c.skip][: a.limit]
    if a.list:
        print("\n".join(f"{c.op:20} {c.name}{f'  (n/a: {c.skip})' if c.skip else ''}" for c in cases))
        return 0
    if not cases:
        print("error: no case selected", file=sys.stderr)
        return 2
    start, done = time.perf_counter(), []

    def progress(o: Outcome) -> None:
        done.append(o)
        if o.cls != "n/a":
            print(f"[{len(done)}/{len(cases)} {time.perf_counter() - start:6.0f}s] {o.case}: {o.cls} "
                  f"{o.detail[:160]}", file=sys.stderr, flush=True)

    outcomes = run_node_cases(cases, a.target, a.jobs, a.workdir, progress, a.keep)
    wall = time.perf_counter() - start
    print(table(outcomes))
    print(f"\n{len(cases)} cases ({a.target}), {wall:.0f} s wall with --jobs {a.jobs}")
    skips = Counter(o.detail for o in outcomes if o.cls == "n/a")
    if skips:
        print("\nnot applicable:\n" + "\n".join(f"- {n} × {why}" for why, n in skips.most_common()))
    bad = bad_lines(outcomes)
    print("\nsilent/crashed cases:" if bad else "\nno silent or crashed case")
    print("\n".join(bad))
    if a.json:
        a.json.write_text(json.dumps({"target": a.target, "jobs": a.jobs, "wall_seconds": wall,
                                      "outcomes": [o.to_dict() for o in outcomes]}, indent=1))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
