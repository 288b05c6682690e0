"""Quantization figures for the bundled models: what each `quantize` mode costs in accuracy and buys in time.

- cpu (ONNX Runtime): int8-dynamic, int8 (static QDQ), fp16 and auto-int8 — the speed ratio against
  fp32 is the pass's own measurement (same process, interleaved, batch 1 and 64);
- fpga (hls4ml C simulation): the default 18-bit types, fixed16, fixed8 and auto — digits test accuracy
  of the emulated artifact and bit-ops.

Calibration is the digits training split for the digits CNN; the MLP and LeNet (random weights, 28x28
inputs) calibrate on seeded N(0,1) inputs. Run from the repository root: `python examples/compression/quantization.py`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import accelc
from accelc.data import load_dataset
from accelc.spec import TensorSpec

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "build" / "quantization"
MODELS = {
    "mlp": (ROOT / "examples" / "mlp" / "mlp.onnx", (1, 1, 28, 28)),
    "lenet": (ROOT / "examples" / "lenet" / "lenet.pt", (1, 1, 28, 28)),
    "digits": (ROOT / "examples" / "digits" / "digits_cnn.pt", (1, 1, 8, 8)),
}


def _data(name: str, shape: tuple[int, ...]):
    if name == "digits":
        spec = [TensorSpec("input", shape)]
        return load_dataset("digits", spec, "test") + (load_dataset("digits", spec, "train")[0][:256],)
    rng = np.random.default_rng(0)
    return rng.standard_normal((256, *shape[1:])).astype(np.float32), None, rng.standard_normal(
        (256, *shape[1:])).astype(np.float32)


def cpu(name: str) -> None:
    path, shape = MODELS[name]
    x, y, calib = _data(name, shape)
    print(f"\n## {name}: cpu (ONNX Runtime), ratio = quantized / fp32 time")
    print("| mode | batch 1 | batch 64 | max abs err vs fp32 | top-1 agreement | accuracy |\n|---|---|---|---|---|---|")
    dense = accelc.compile(path, target="cpu", input_shape=shape, out=OUT / f"{name}-cpu", calibration=calib)
    if y is not None:
        print(f"| fp32 | 1 | 1 | 0 | 1 | {np.mean(dense.predict(x).argmax(1) == y):.4f} |")
    for mode in ("int8-dynamic", "int8", "fp16", "auto-int8"):
        art = accelc.compile(path, target="cpu", input_shape=shape, passes=[f"quantize:{mode}"], calibration=calib,
                             out=OUT / f"{name}-cpu-{mode}")
        st = art.manifest["passes"][0]["stats"]
        speed = {r["batch"]: r["ratio"] for r in st.get("speed", [])}
        fid = st.get("fidelity", {})
        acc = f"{np.mean(art.predict(x).argmax(1) == y):.4f}" if y is not None else "n/a"
        label = mode if mode != "auto-int8" else f"auto-int8 → {st['chosen'] or 'stays fp32'}"
        print(f"| {label} | {speed.get(1, '-')} | {speed.get(64, '-')} | {fid.get('max_abs_err', 0):.3g} | "
              f"{fid.get('top1_agreement', 1)} | {acc} |")


def fpga(name: str) -> None:
    path, shape = MODELS[name]
    x, y, calib = _data(name, shape)
    print(f"\n## {name}: fpga (hls4ml C simulation)")
    print("| mode | widths | bit-ops | accuracy (test) | top-1 agreement vs float |\n|---|---|---|---|---|")
    for passes in ([], ["quantize:fixed16"], ["quantize:fixed8"], ["quantize:auto"]):
        tag = passes[0].split(":")[1] if passes else "default"
        art = accelc.compile(path, target="fpga", input_shape=shape, passes=passes, calibration=calib,
                             out=OUT / f"{name}-fpga-{tag}")
        report = accelc.verify(art, x, labels=y, per_layer=False)
        st = art.manifest["passes"][0]["stats"] if passes else {}
        widths = st.get("widths") or st.get("width") or 18
        ops = st.get("bit_ops", {})
        ops_text = f"{ops['before']:,} → {ops['after']:,}" if ops else ""
        print(f"| {tag} | {widths} | {ops_text} | {report.accuracy_artifact} | {report.top1_agreement:.4f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-fpga", action="store_true")
    args = parser.parse_args()
    for name in MODELS:
        cpu(name)
    if not args.no_fpga:
        fpga("digits")


if __name__ == "__main__":
    main()
