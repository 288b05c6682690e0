"""Accuracy recovery after compression on the digits CNN: distillation fine-tuning (`accelc.finetune`).

Prints the test accuracy of the float model, of the 50% channel-pruned one before and after recovery, and of the
int8 (static QDQ) one and the channel-pruned + int8 one before and after; the fine-tuning seconds; and the
wall-clock ratio of `nproc=2` to `nproc=1` (DistributedDataParallel over torchrun, gloo) for the same epochs.

Run from the repository root after `make install`: `python examples/digits/recover.py [--epochs 20]`.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import accelc

HERE = Path(__file__).resolve().parent
OUT = Path("build") / "recover"
VARIANTS = {"50% channel-pruned": ["prune:mode=channel,ratio=0.5"], "int8 (QDQ)": ["quantize:int8"],
            "50% channel-pruned + int8": ["prune:mode=channel,ratio=0.5", "quantize:int8"]}


def accuracy(art: accelc.Artifact, x: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(art.predict(x).argmax(1) == y))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args()
    x, y = np.load(HERE / "digits_test_x.npy"), np.load(HERE / "digits_test_y.npy")
    model = HERE / "digits_cnn.pt"
    dense = accelc.compile(model, target="cpu", input_shape=(1, 1, 8, 8), out=OUT / "float", calibration="digits")
    print(f"digits test split, {len(x)} images; fine-tuning on the training split (labels + distillation), "
          f"at most {args.epochs} epochs, early stop on a 10% validation split")
    print("| model | test accuracy | recovered | fine-tune s | epochs | sparsity / bits kept |")
    print("|---|---|---|---|---|---|")
    print(f"| float | {accuracy(dense, x, y):.4f} | | | | |")
    for name, passes in VARIANTS.items():
        tag = name.replace(" ", "").replace("%", "").replace("+", "-").replace("(", "").replace(")", "")
        art = accelc.compile(model, target="cpu", input_shape=(1, 1, 8, 8), passes=passes, out=OUT / tag,
                             calibration="digits")
        start = time.perf_counter()
        result = accelc.finetune(art, dataset="digits", epochs=args.epochs, out=OUT / f"{tag}-recovered")
        total = time.perf_counter() - start
        st = result.stats()
        bits = sorted(set(st["bits"].values()))
        print(f"| {name} | {accuracy(art, x, y):.4f} | {accuracy(result.artifact, x, y):.4f} | "
              f"{result.seconds:.1f} (with teacher, re-lowering: {total:.1f}) | {len(result.history)} | "
              f"{st['sparsity']['before']:.3f} -> {st['sparsity']['after']:.3f}, bits {bits} |")
    pruned = accelc.load(OUT / "50channel-pruned")
    epochs = 10
    print(f"\nDistributedDataParallel, {epochs} epochs on the 50% channel-pruned model, this machine:")
    times = {}
    for nproc in (1, 2):
        start = time.perf_counter()
        result = accelc.finetune(pruned, dataset="digits", epochs=epochs, patience=epochs, nproc=nproc)
        times[nproc] = (time.perf_counter() - start, result.seconds)
        print(f"  nproc={nproc}: wall {times[nproc][0]:.1f} s (training loop {result.seconds:.1f} s, "
              f"{result.steps} optimizer steps per rank), test accuracy of the result "
              f"{float(np.mean(_run(result.model, x).argmax(1) == y)):.4f}"
              + (f", rank weights max diff {result.rank_weight_max_diff}" if nproc > 1 else ""))
    print(f"  wall-clock ratio nproc 2 / nproc 1: {times[2][0] / times[1][0]:.2f} "
          f"(training loops alone: {times[2][1] / times[1][1]:.2f})")


def _run(model, x: np.ndarray) -> np.ndarray:
    from accelc.reference import Reference

    return Reference(model).run([x])[0]


if __name__ == "__main__":
    main()
