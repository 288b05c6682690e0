"""The real-model zoo: each network of `models.py` exported by a real tool, with its test inputs and the
framework's own outputs on them, and the acceptance rule a compiled artifact is judged by.

A `Case` is a model and an export path: TorchScript (``torch.jit.trace(...).save`` -> .pt), the TorchScript
ONNX exporter (``torch.onnx.export(..., dynamo=False)`` -> .onnx, also with a fixed batch or an older opset), the
dynamo ONNX exporter (``torch.onnx.export(..., dynamo=True)``, torch's default), ``torch.export`` (-> .pt2) and
Keras 3 (``model.save`` -> .keras). `Case.build(dir)` writes the file and returns a `Built`: the path, the input
shape accelc needs (TorchScript files carry none), the test inputs by name (>= 64 samples each, in the
source layout: NHWC for Keras) and the framework's outputs on them. Weights are seeded random values with
random BatchNorm statistics (`models.randomize_batchnorm`): these models exercise the compiler, not accuracy.

Used by `tests/e2e/test_real_models.py` and by `examples/real_models/table.py`.
"""

from __future__ import annotations

import logging
import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from examples.real_models import models as M

SAMPLES = 64
# The compile self-check's tolerance scale (accelc.check.self_check.SELF_CHECK_RTOL): max abs error within
# rtol x max(1, max |reference|); classifiers must also agree on the top-1 class for >= 98 % of the samples.
CLASSIFIER_RTOL = {"cpu": 1e-4, "fpga": 0.05}
MIN_AGREEMENT = 0.98
# A regression model has no class to agree on: max abs error within rtol x max |reference|.
REGRESSION_RTOL = {"cpu": 1e-4, "fpga": 0.05}


@dataclass
class Built:
    path: Path
    input_shape: tuple[int, ...] | None  # for accelc (None: the file carries it)
    data: dict[str, np.ndarray]  # test inputs by name, source layout
    expected: dict[str, np.ndarray]  # the framework's outputs on them


@dataclass(frozen=True)
class Case:
    model: str  # zoo model name
    export: str  # "torchscript" | "onnx" | "onnx-fixed-batch" | "onnx-dynamo" | "torch.export" | "keras"
    make: Callable[[int], object] = field(repr=False, compare=False)  # seed -> torch module or keras model
    sample_shape: tuple[int, ...] = ()  # one sample, source layout
    data: tuple[str, ...] = ("normal",)  # input distributions (see `inputs`)
    classifier: bool = True
    cli: bool = False  # compiled through the command line (`accelc compile FILE`) rather than the API
    dynamic_batch: bool = True  # torch.export: export with a symbolic batch (dynamo ONNX path in accelc)
    opset: int = 13  # torch.onnx.export's opset_version (older ones are converted to 13 when accelc loads them)

    @property
    def id(self) -> str:
        return f"{self.model}-{self.export}" + (f"-opset{self.opset}" if self.opset != 13 else "")

    @property
    def fixed_batch(self) -> bool:
        """Exported with the dummy's batch of 1 baked in (no dynamic axes; a static torch.export program)."""
        return self.export == "onnx-fixed-batch" or (self.export == "torch.export" and not self.dynamic_batch)

    @property
    def seed(self) -> int:
        return zlib.crc32(self.model.encode()) % (2**31)

    def build(self, out_dir: Path) -> Built:
        out_dir.mkdir(parents=True, exist_ok=True)
        data = {name: inputs(name, self.sample_shape, SAMPLES, self.seed + i, self.export == "keras")
                for i, name in enumerate(self.data)}
        if self.export == "keras":
            return _build_keras(self, out_dir, data)
        return _build_torch(self, out_dir, data)


def _torch_model(make: Callable[[], torch.nn.Module], seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return M.randomize_batchnorm(make(), seed).eval()


def torch_module(cls: type) -> Callable[[int], torch.nn.Module]:
    return lambda seed: _torch_model(cls, seed)


def inputs(name: str, sample_shape: tuple[int, ...], n: int, seed: int, channels_last: bool = False) -> np.ndarray:
    """'normal': N(0, 1) (standardized features); 'pixels': images in [0, 1) with the spatial correlation of real
    ones (U[0, 1) at a quarter of the resolution, upscaled bilinearly); 'digits': scikit-learn's 8x8 digits in
    [0, 1], upscaled (bilinear) to the sample's spatial size."""
    rng = np.random.default_rng(seed)
    if name == "normal":
        return rng.standard_normal((n, *sample_shape)).astype(np.float32)
    c, h, w = (sample_shape[2], *sample_shape[:2]) if channels_last else sample_shape
    if name == "pixels":
        images = torch.from_numpy(rng.random((n, c, max(2, h // 4), max(2, w // 4)), dtype=np.float32))
    elif name == "digits":
        from sklearn.datasets import load_digits

        images = torch.from_numpy((load_digits().images[:n] / 16.0).astype(np.float32))[:, None].expand(n, c, 8, 8)
    else:
        raise ValueError(f"unknown input distribution {name!r}")
    up = torch.nn.functional.interpolate(images, size=(h, w), mode="bilinear", align_corners=False).numpy()
    return np.ascontiguousarray(up.transpose(0, 2, 3, 1) if channels_last else up)


def _torch_outputs(model: torch.nn.Module, data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    with torch.no_grad():
        return {k: model(torch.from_numpy(x)).numpy() for k, x in data.items()}


def _build_torch(case: Case, out_dir: Path, data: dict[str, np.ndarray]) -> Built:
    model = case.make(case.seed)
    one = torch.randn(1, *case.sample_shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript / legacy-exporter deprecation notices
        if case.export == "torchscript":
            path = out_dir / f"{case.model}.pt"
            torch.jit.trace(model, one).save(str(path))
            shape = (1, *case.sample_shape)
        elif case.export in ("onnx", "onnx-fixed-batch"):
            path = out_dir / f"{case.model}.onnx"
            axes = None if case.export == "onnx-fixed-batch" else {"input": {0: "batch"}, "output": {0: "batch"}}
            torch.onnx.export(model, (one,), str(path), dynamo=False, opset_version=case.opset, input_names=["input"],
                              output_names=["output"], dynamic_axes=axes)
            shape = None
        elif case.export == "onnx-dynamo":  # torch.onnx.export's default since torch 2.9: torch.export, opset 18+
            path = out_dir / f"{case.model}.onnx"
            logging.getLogger("torch.onnx").setLevel(logging.ERROR)  # "torchvision is not installed" notices
            torch.onnx.export(model, (one,), str(path), dynamo=True, input_names=["input"], output_names=["output"],
                              dynamic_shapes=({0: "batch"},), verbose=False)
            shape = None
        elif case.export == "torch.export":
            path = out_dir / f"{case.model}.pt2"
            if case.dynamic_batch:  # a symbolic batch needs an example of batch >= 2 (1 is specialized)
                batch = torch.export.Dim("batch", min=1, max=1024)
                ep = torch.export.export(model, (torch.randn(2, *case.sample_shape),), dynamic_shapes=({0: batch},))
            else:
                ep = torch.export.export(model, (one,))
            torch.export.save(ep, str(path))
            shape = None
        else:
            raise ValueError(f"unknown export path {case.export!r}")
    return Built(path, shape, data, _torch_outputs(model, data))


def _build_keras(case: Case, out_dir: Path, data: dict[str, np.ndarray]) -> Built:
    keras = M.import_keras()
    model = case.make(case.seed)
    model(data[case.data[0]][:1])  # Keras 3 builds a model's export signature on its first call
    path = out_dir / f"{case.model}.keras"
    model.save(str(path))
    expected = {k: keras.ops.convert_to_numpy(model(x, training=False)) for k, x in data.items()}
    return Built(path, None, data, expected)


def score(case: Case, target: str, got: np.ndarray, expected: np.ndarray) -> dict:
    """max abs error, its tolerance, top-1 agreement (classifiers) and whether the acceptance rule holds."""
    got = np.asarray(got, dtype=np.float32).reshape(expected.shape)
    err = float(np.max(np.abs(got - expected))) if np.all(np.isfinite(got)) else float("inf")
    scale = float(np.max(np.abs(expected)))
    if case.classifier:
        tol = CLASSIFIER_RTOL[target] * max(1.0, scale)
        agreement = float(np.mean(got.argmax(-1) == expected.argmax(-1)))
        ok = err <= tol and agreement >= MIN_AGREEMENT
    else:
        tol, agreement = REGRESSION_RTOL[target] * scale, None
        ok = err <= tol
    return {"max_err": err, "tol": tol, "agreement": agreement, "ok": ok}


IMAGE = ("normal", "pixels")
CASES = [
    Case("lenet", "torchscript", torch_module(M.SeedLeNet), (1, 28, 28), (*IMAGE, "digits"), cli=True),
    Case("lenet", "torch.export", torch_module(M.SeedLeNet), (1, 28, 28), ("digits",),
         dynamic_batch=False),
    Case("dsnet", "onnx", torch_module(M.DepthwiseSeparableNet), (1, 16, 16), IMAGE),
    Case("mobilenetv2_block", "onnx", torch_module(M.MobileNetV2Block), (3, 16, 16), IMAGE),
    Case("mobilenetv2_block", "torch.export", torch_module(M.MobileNetV2Block), (3, 16, 16),
         ("pixels",)),
    Case("resnet8", "torchscript", torch_module(M.ResNet8), (3, 32, 32), IMAGE),
    Case("dscnn", "onnx-dynamo", torch_module(M.DSCNN), (1, 49, 10)),
    Case("fc_autoencoder", "onnx", torch_module(M.FCAutoencoder), (640,), classifier=False,
         opset=11),
    Case("conv1d", "torchscript", torch_module(M.Conv1dNet), (4, 64)),
    Case("fixed_batch_cnn", "onnx-fixed-batch", torch_module(M.FixedBatchCNN), (1, 12, 12),
         IMAGE),
    Case("keras_sequential", "keras", M.keras_sequential_cnn, (28, 28, 1), IMAGE, cli=True),
    Case("keras_functional", "keras", M.keras_functional_cnn, (16, 16, 3), IMAGE),
]
