"""Compile every zoo model (examples/real_models/zoo.py) for cpu and fpga and print a markdown table.

Run from anywhere: ``python examples/real_models/table.py [--targets cpu,fpga] [--models lenet,dscnn]``.
Each model is exported by its real tool into a temporary directory and compiled through the API with a fresh
accelc cache, so the compile times are cold. Per target the table says whether it compiled, the max abs error
against the framework's own output (worst over the input distributions) and the top-1 agreement (worst), and
for fpga the compile time and the C simulation's time per sample — or the first 100 characters of the refusal.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Make `examples` importable when this file is run as a script from any directory.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from examples.real_models.zoo import CASES, Case, score  # noqa: E402

TARGETS = ("cpu", "fpga")


def _reason(e: BaseException) -> str:
    text = " ".join(f"{type(e).__name__}: {e}".split())
    return text[:100].replace("|", "/")


def run_case(case: Case, target: str, work: Path, built) -> dict:
    import accelc

    t0 = time.perf_counter()
    try:
        art = accelc.compile(str(built.path), target=target, input_shape=built.input_shape,
                             out=work / f"{case.id}-{target}")
    except Exception as e:  # noqa: BLE001 - the table reports any failure, refusal or crash
        return {"compiled": False, "why": _reason(e), "seconds": time.perf_counter() - t0}
    seconds = time.perf_counter() - t0
    scores, predict_s, samples = [], 0.0, 0
    try:
        for name, x in built.data.items():
            t1 = time.perf_counter()
            got = art.predict(x)
            predict_s += time.perf_counter() - t1
            samples += len(x)
            scores.append(score(case, target, got, built.expected[name]))
    except Exception as e:  # noqa: BLE001
        return {"compiled": True, "why": "predict: " + _reason(e), "seconds": seconds}
    agreements = [s["agreement"] for s in scores if s["agreement"] is not None]
    return {"compiled": True, "seconds": seconds, "ms_per_sample": 1000 * predict_s / samples,
            "max_err": max(s["max_err"] for s in scores), "tol": min(s["tol"] for s in scores),
            "agreement": min(agreements) if agreements else None, "ok": all(s["ok"] for s in scores)}


def cell(r: dict | None, target: str) -> str:
    if r is None:
        return "–"
    if "max_err" not in r:
        return f"{'compiled, ' if r['compiled'] else ''}**no**: {r['why']}"
    verdict = "yes" if r["ok"] else "**WRONG**"
    agree = f" / {r['agreement']:.3f}" if r["agreement"] is not None else " / (regression)"
    text = f"{verdict} / {r['max_err']:.2g} (tol {r['tol']:.2g}){agree}"
    if target == "fpga":
        text += f" / {r['seconds']:.1f} s / {r['ms_per_sample']:.1f} ms"
    return text


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--targets", default=",".join(TARGETS))
    p.add_argument("--models", default="", help="comma-separated zoo model names (default: all)")
    a = p.parse_args(argv)
    targets = a.targets.split(",")
    wanted = set(filter(None, a.models.split(",")))
    cases = [c for c in CASES if not wanted or c.model in wanted]
    warnings.simplefilter("ignore")
    with tempfile.TemporaryDirectory(prefix="accelc-zoo-") as tmp:
        work = Path(tmp)
        os.environ["ACCELC_CACHE_DIR"] = str(work / "cache")  # cold compiles: a cache of this run only
        print("| model | export path | cpu: compiled / max err / agreement | "
              "fpga: compiled / max err / agreement / compile s / emulation ms per sample |")
        print("|---|---|---|---|")
        for case in cases:
            built = case.build(work / "models" / case.id)
            res = {t: run_case(case, t, work, built) for t in targets}
            export = case.id.removeprefix(case.model + "-")
            print(f"| {case.model} | {export} ({built.path.suffix}; {', '.join(built.data)}) | "
                  f"{cell(res.get('cpu'), 'cpu')} | {cell(res.get('fpga'), 'fpga')} |", flush=True)


if __name__ == "__main__":
    main()
