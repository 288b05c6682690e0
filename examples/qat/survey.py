"""Issue 16's closing table: every QAT fixture through qonnx's executor, accelc (fpga emulator, cpu) and raw hls4ml.

Run from anywhere: ``python examples/qat/survey.py [MODEL ...] [--no-torchscript] [--json PATH]``.
The models are tests/_qat_models.py's ALL_MODELS (Brevitas QONNX exports, QKeras-style graphs), plus each Brevitas
model's TorchScript export at opset 11 (``<name>-ts11``). Each is scored on the digits test split against qonnx's
executor, the reference semantics of a QONNX file: top-1 accuracy, max |error| and the fraction of outputs exactly
equal to the executor's; for the fpga artifact also the fixed-point types hls4ml's project declares and the compile
seconds (cold accelc cache); and the same file through hls4ml 1.3.0's own ONNX frontend as its documentation says to
use it (accelc.hls.direct, one blanket fixed<16,6>). A model accelc or hls4ml does not compile is a row saying so
("refused: <first line of the reason>"); the table goes to stdout, progress to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
HLS4ML_PRECISION = "fixed<16,6>"
WRONG_DROP = 0.05  # hls4ml "wrong": compiled, but its accuracy is this far below the executor's


def fixtures():
    """tests/_qat_models.py, imported from the checkout (the test fixtures are not a package)."""
    tests = str(ROOT / "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)
    import _qat_models

    return _qat_models


# --- one model --------------------------------------------------------------------------------------------------


def first_line(e: BaseException) -> str:
    lines = [ln.strip() for ln in str(e).strip().splitlines() if ln.strip()]
    return f"{type(e).__name__}: {lines[0] if lines else ''}"[:160]


def _failure(status: str, e: BaseException, t0: float | None = None, reason: str | None = None) -> dict:
    frames = traceback.extract_tb(e.__traceback__)
    rec = {"status": status, "reason": reason or first_line(e), "error": f"{type(e).__name__}: {e}"[:2000],
           "at": f"{Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else "?"}
    if t0 is not None:
        rec["seconds"] = round(time.perf_counter() - t0, 1)
    return rec


def score(got, ref: np.ndarray, y: np.ndarray) -> dict:
    got = np.asarray(got[0] if isinstance(got, list) else got, dtype=np.float32).reshape(ref.shape)
    return {"acc": float((got.argmax(1) == y).mean()), "max_err": float(np.max(np.abs(got - ref))),
            "exact": float(np.mean(got == ref)), "agreement": float((got.argmax(1) == ref.argmax(1)).mean())}


# hls4ml's typedefs in defines.h: `typedef ap_fixed<..> name;`, or in io_stream `typedef nnet::array<ap_fixed<..>, N>`
TYPEDEF = re.compile(r"typedef\s+(?:nnet::array<\s*)?((?:ap_u?fixed|ap_u?int)<[^>]*>)[^;]*?\s(\w+)\s*;")


def _kind(name: str, typ: str) -> str | None:
    """What an hls4ml typedef in defines.h types: w weights, b Dense/Conv biases, s the scale and bias of rescaling
    layers (BatchNorm, ApplyAlpha), acc accumulators, a layer outputs; None for bookkeeping (lookup tables,
    indices, the ap_uint<1> placeholders of absent biases, the model default)."""
    if typ == "ap_uint<1>" or name == "model_default_t" or name.endswith(("_table_t", "_index", "_precision")):
        return None
    if re.fullmatch(r"weight\d+_t", name) or name.endswith("_weight_t"):
        return "w"
    if name.endswith("_bias_t") and name.lower().startswith(("dense", "conv")):
        return "b"
    if re.fullmatch(r"(scale|bias)\d+_t", name) or name.endswith(("_scale_t", "_bias_t")):
        return "s"
    if name.endswith("_accum_t"):
        return "acc"
    return "a"


def fixed_types(artifact) -> dict[str, list[str]]:
    """The distinct fixed-point types the fpga artifact's hls4ml project declares (hls/firmware/defines.h, where
    the manifest's "auto" precisions are resolved), per kind, the rounding/saturation modes dropped; from the
    manifest's per-layer "precision" where the project has no defines.h."""
    defines = Path(artifact.path) / "hls" / "firmware" / "defines.h"
    if defines.exists():
        pairs = [(t, n) for t, n in TYPEDEF.findall(defines.read_text())]
    else:
        precision = artifact.manifest["target"].get("precision") or {}
        pairs = [(t, f"{layer}_{k}_t") for layer, d in precision.items() for k, t in d.items() if t != "auto"]
    out: dict[str, set[str]] = {}
    for t, n in pairs:
        kind = _kind(n, t)
        if kind is not None:
            out.setdefault(kind, set()).add(re.sub(r"<(\d+(?:,\s*-?\d+)?)[^>]*>", r"<\1>", t))
    width = lambda t: [int(v) for v in re.findall(r"-?\d+", t)]  # noqa: E731
    return {k: sorted(v, key=width) for k, v in out.items()}


def run_accelc(path: Path, target: str, x, ref, y, work: Path) -> dict:
    import accelc
    from accelc.errors import AccelcError, VerificationError

    t0 = time.perf_counter()
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            art = accelc.compile(str(path), target=target, out=work / target, calibration="digits", force=True)
    except VerificationError as e:  # "... self-check on <which rows>: <what failed>": the table keeps the latter
        return _failure("self-check failed", e, t0, str(e).split("): ", 1)[-1].splitlines()[0][:160])
    except AccelcError as e:
        return _failure("refused", e, t0)
    except Exception as e:  # noqa: BLE001 - the table reports any failure
        return _failure("crashed", e, t0)
    rec = {"status": "compiled", "seconds": round(time.perf_counter() - t0, 1)}
    if target == "fpga":
        rec["types"] = fixed_types(art)
        rec["precision"] = art.manifest["target"].get("precision")
    try:
        rec.update(score(art.predict(x), ref, y))
    except Exception as e:  # noqa: BLE001
        return {**rec, **_failure("predict failed", e)}
    return rec


def run_hls4ml(path: Path, x, ref, y, work: Path) -> dict:
    import onnx

    from accelc.hls.direct import build_direct, convert_direct

    t0 = time.perf_counter()
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            meta = convert_direct(onnx.load(str(path)), work / "hls4ml", HLS4ML_PRECISION)
    except Exception as e:  # noqa: BLE001 - hls4ml raises bare Exceptions (and IndexErrors) where it refuses
        return _failure("refused", e, t0)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            got = build_direct(work / "hls4ml", meta).run([x])[0]
    except Exception as e:  # noqa: BLE001
        return _failure("build failed", e, t0)
    return {"status": "compiled", "seconds": round(time.perf_counter() - t0, 1), **score(got, ref, y)}


def survey_one(name: str, m, path: Path, work: Path, log) -> dict:
    import onnx

    qat = fixtures()
    proto = onnx.load(str(path))
    ops: dict[str, int] = {}
    for n in proto.graph.node:
        ops[n.op_type] = ops.get(n.op_type, 0) + 1
    rec = {"model": name, "file": str(path), "source_acc": m.accuracy, "ops": ops,
           "opset": {o.domain or "ai.onnx": o.version for o in proto.opset_import}}
    x, y = qat.digits(m.input_shape, "test")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = qat.executor_predict(path, x)
    except Exception as e:  # noqa: BLE001
        rec["executor"] = _failure("failed", e)
        return rec
    rec["executor_acc"] = float((ref.argmax(1) == y).mean())
    for target in ("fpga", "cpu"):
        rec[target] = run_accelc(path, target, x, ref, y, work / name)
        log(f"{name} accelc {target}: {_brief(rec[target])}")
    rec["hls4ml"] = run_hls4ml(path, x, ref, y, work / name)
    log(f"{name} hls4ml: {_brief(rec['hls4ml'])}")
    return rec


def _brief(r: dict) -> str:
    if "acc" in r:
        return f"acc {r['acc']:.3f}, max err {r['max_err']:.3g}, {r['seconds']} s"
    return f"{r['status']}: {r['reason']}"


def cases(names: list[str], torchscript: bool, work: Path, log):
    """(name, QATModel, file) per fixture asked for, each Brevitas model followed by its TorchScript export at
    opset 11 (the exporter older setups use) unless torchscript is False."""
    qat = fixtures()
    unknown = set(names) - set(qat.ALL_MODELS) - {f"{n}-ts11" for n in qat.BREVITAS_MODELS}
    if unknown:
        raise SystemExit(f"unknown model(s) {sorted(unknown)}; known: {', '.join(qat.ALL_MODELS)}")
    for name, build in qat.ALL_MODELS.items():
        ts = f"{name}-ts11"
        want_self, want_ts = (not names or name in names), (not names or name in names or ts in names)
        if not (want_self or want_ts):
            continue
        m = build()
        if want_self:
            yield name, m, m.path
        if m.torch_model is None or not torchscript or not want_ts:
            continue
        path = work / "models" / f"{ts}.onnx"
        try:
            qat._export(m.torch_model, m.input_shape, path, dynamo=False, opset=11)
        except Exception as e:  # noqa: BLE001
            log(f"{ts}: export failed: {first_line(e)}")
            continue
        yield ts, m, path


# --- the table --------------------------------------------------------------------------------------------------

COLUMNS = ["model", "executor acc", "fpga acc", "fpga max err", "fpga exact", "fpga types", "fpga compile s",
           "cpu acc / max err", "hls4ml acc / max err", "max err accelc / hls4ml"]


def _err(v: float) -> str:
    return "0" if v == 0 else f"{v:.3g}"


def _cell(text: str) -> str:
    return text.replace("|", "/").replace("\n", " ")


def _types(types: dict[str, list[str]]) -> str:
    order = ["w", "b", "s", "a", "acc"]
    return "; ".join(f"{k} {' '.join(types[k])}" for k in sorted(types, key=lambda k: order.index(k)))


def _ratio(rec: dict) -> str:
    fpga, hls = rec.get("fpga") or {}, rec.get("hls4ml") or {}
    if "max_err" not in fpga:
        return "–"
    if "max_err" not in hls:
        return f"hls4ml {hls.get('status', 'not run')}"
    if hls["acc"] < rec["executor_acc"] - WRONG_DROP:
        return f"hls4ml wrong (acc {hls['acc']:.3f})"
    if hls["max_err"] == 0:
        return "both exact" if fpga["max_err"] == 0 else "∞ (hls4ml exact)"
    return f"{fpga['max_err'] / hls['max_err']:.2g}"


def row(rec: dict) -> list[str]:
    """One table row: the record's numbers, or what refused it."""
    cells = [rec["model"]]
    if "executor_acc" not in rec:
        return cells + [f"executor failed: {rec['executor']['reason']}"] + ["–"] * (len(COLUMNS) - 2)
    cells.append(f"{rec['executor_acc']:.3f}")
    fpga = rec["fpga"]
    if "acc" in fpga:
        cells += [f"{fpga['acc']:.3f}", _err(fpga["max_err"]), f"{100 * fpga['exact']:.1f} %",
                  _types(fpga.get("types") or {}), f"{fpga['seconds']:.1f}"]
    else:
        cells += [f"{fpga['status']}: {fpga['reason']}", "–", "–", _types(fpga.get("types") or {}) or "–",
                  f"{fpga['seconds']:.1f}" if "seconds" in fpga else "–"]
    for target in ("cpu", "hls4ml"):
        r = rec[target]
        cells.append(f"{r['acc']:.3f} / {_err(r['max_err'])}" if "acc" in r else f"{r['status']}: {r['reason']}")
    cells.append(_ratio(rec))
    return [_cell(c) for c in cells]


def format_table(records: list[dict]) -> str:
    """The markdown table of survey records (the --json file's "records")."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    return "\n".join(lines + ["| " + " | ".join(row(r)) + " |" for r in records]) + "\n"


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("accelc", "hls4ml", "qonnx", "brevitas", "torch", "onnx"):
        with contextlib.suppress(PackageNotFoundError):
            out[pkg] = version(pkg)
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="*", help="fixture names (tests/_qat_models.py ALL_MODELS, or NAME-ts11); "
                                             "default: all")
    p.add_argument("--no-torchscript", action="store_true", help="skip the TorchScript opset-11 exports")
    p.add_argument("--json", type=Path, help="also write the records (every number, the full reasons) here")
    p.add_argument("--out", type=Path, help="keep the artifacts and hls4ml projects here (default: a temp dir)")
    a = p.parse_args(argv)
    warnings.simplefilter("ignore")
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    with tempfile.TemporaryDirectory(prefix="accelc-qat-survey-") as tmp:
        work = a.out or Path(tmp)
        os.environ["ACCELC_CACHE_DIR"] = str(Path(tmp) / "cache")  # cold compiles: a cache of this run only
        records = [survey_one(name, m, path, work, log)
                   for name, m, path in cases(a.models, not a.no_torchscript, work, log)]
    sys.stdout.write(format_table(records))
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps({"versions": _versions(), "hls4ml_precision": HLS4ML_PRECISION,
                                      "records": records}, indent=1) + "\n")


if __name__ == "__main__":
    main()
