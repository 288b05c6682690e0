"""Compression figures for the bundled LeNet and digits CNN: what `prune` and `depthwise` buy, measured.

- 50% channel pruning: MACs and params before/after, digits test accuracy before/after, and the
  ONNX Runtime CPU latency ratio pruned/dense, timed interleaved in this one process;
- 80% unstructured pruning: multipliers in the generated HLS (hls4ml's parameters.h) before/after,
  with accelc's default strategy choice and with --strategy latency;
- depthwise factorization: per layer the multiplier chosen, MACs before/after and output error.

Run from the repository root after `make install`: `python examples/compression/figures.py [--no-fpga]`.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import accelc
from accelc.data import load_dataset
from accelc.spec import TensorSpec

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "build" / "compression"
MODELS = {
    "digits": (ROOT / "examples" / "digits" / "digits_cnn.pt", (1, 1, 8, 8)),
    "lenet": (ROOT / "examples" / "lenet" / "lenet.pt", (1, 1, 28, 28)),
}


def _inputs(name: str, shape: tuple[int, ...]):
    """digits: the real test split (and training images to calibrate); lenet: seeded N(0,1) (random weights)."""
    if name == "digits":
        spec = [TensorSpec("input", shape)]
        x, y = load_dataset("digits", spec, "test")
        calib, _ = load_dataset("digits", spec, "train")
        return x, y, calib[:256]
    rng = np.random.default_rng(0)
    return rng.standard_normal((256, *shape[1:])).astype(np.float32), None, None


def _latency_ratio(dense, pruned, x: np.ndarray, reps: int = 200) -> tuple[float, float, float]:
    """Median seconds per call of each ORT session, interleaved so machine noise hits both alike."""
    times: dict[str, list[float]] = {"dense": [], "pruned": []}
    for art in (dense, pruned):
        for _ in range(10):
            art.predict(x)  # warm-up
    for _ in range(reps):
        for key, art in (("dense", dense), ("pruned", pruned)):
            start = time.perf_counter()
            art.predict(x)
            times[key].append(time.perf_counter() - start)
    d, p = float(np.median(times["dense"])), float(np.median(times["pruned"]))
    return d, p, p / d


def channel_pruning(name: str) -> None:
    path, shape = MODELS[name]
    x, y, calib = _inputs(name, shape)
    dense = accelc.compile(path, target="cpu", input_shape=shape, out=OUT / f"{name}-cpu", calibration=calib)
    pruned = accelc.compile(path, target="cpu", input_shape=shape, out=OUT / f"{name}-cpu-ch50",
                            passes=["prune:mode=channel,ratio=0.5"], calibration=calib)
    st = pruned.manifest["passes"][0]["stats"]
    print(f"\n## {name}: 50% channel pruning (prune:mode=channel,ratio=0.5)")
    print("| | before | after |\n|---|---|---|")
    print(f"| MACs | {st['before']['macs']:,} | {st['after']['macs']:,} |")
    print(f"| params | {st['before']['params']:,} | {st['after']['params']:,} |")
    for layer, s in st["layers"].items():
        print(f"| channels {layer} | {s['channels_before']} | {s['channels_after']} |")
    if y is not None:
        acc_d = float(np.mean(dense.predict(x).argmax(1) == y))
        acc_p = float(np.mean(pruned.predict(x).argmax(1) == y))
        print(f"| test accuracy ({len(x)} images) | {acc_d:.4f} | {acc_p:.4f} |")
    for batch in (1, 64):
        d, p, r = _latency_ratio(dense, pruned, x[:batch])
        print(f"| ORT CPU latency, batch {batch} | {d * 1e6:.1f} us | {p * 1e6:.1f} us (ratio pruned/dense {r:.3f}) |")
    for w in pruned.manifest["passes"][0]["warnings"]:
        print(f"  note: {w}")


def unstructured_fpga(name: str) -> None:
    path, shape = MODELS[name]
    _, _, calib = _inputs(name, shape)
    print(f"\n## {name}: 80% unstructured pruning, multipliers in the generated HLS")
    print("| strategy | dense | pruned 80% | realised sparsity |\n|---|---|---|---|")
    for strategy in (None, "latency"):
        opts = {"strategy": strategy} if strategy else {}
        tag = strategy or "default"
        counts, sparsity = [], None
        for passes in ([], ["prune:sparsity=0.8"]):
            start = time.perf_counter()
            art = accelc.compile(path, target="fpga", input_shape=shape, passes=passes, options=opts,
                                 calibration=calib, out=OUT / f"{name}-fpga-{tag}-{len(passes)}")
            counts.append(art.manifest["target"]["multipliers"]["total"])
            if passes:
                sparsity = art.manifest["passes"][0]["stats"]["sparsity"]
            print(f"  ({tag}, {'pruned' if passes else 'dense'}: compiled in {time.perf_counter() - start:.1f} s)")
        print(f"| {tag} | {counts[0]:,} | {counts[1]:,} | {sparsity:.1%} |")


def factorization(name: str) -> None:
    path, shape = MODELS[name]
    x, y, calib = _inputs(name, shape)
    for tol in (0.05, 0.3, 0.6):
        art = accelc.compile(path, target="cpu", input_shape=shape, out=OUT / f"{name}-cpu-dw{tol}",
                             passes=[f"depthwise:tol={tol}"], calibration=calib, self_check="error")
        st = art.manifest["passes"][0]["stats"]
        print(f"\n## {name}: depthwise:tol={tol} — MACs {st['before']['macs']:,} -> {st['after']['macs']:,}")
        print("| layer | status | m | MACs before | MACs after | output error |\n|---|---|---|---|---|---|")
        for layer, s in st["layers"].items():
            print(f"| {layer} | {s['status']} | {s.get('multiplier', '')} | {s.get('macs_before', ''):,} | "
                  f"{s.get('macs_after', ''):,} | {s.get('error', float('nan')):.3f} |")
        if y is not None:
            print(f"test accuracy after: {float(np.mean(art.predict(x).argmax(1) == y)):.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-fpga", action="store_true", help="skip the hls4ml builds (about a minute each)")
    args = parser.parse_args()
    for name in MODELS:
        channel_pruning(name)
        factorization(name)
        if not args.no_fpga:
            unstructured_fpga(name)


if __name__ == "__main__":
    main()
