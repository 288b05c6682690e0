"""Quantization-aware test models from the real tools (issue 16), shared by the tests: small networks trained on
scikit-learn's digits with Brevitas and exported with its QONNX export, plus QKeras-style QONNX graphs written with
onnx.helper the way qonnx's Keras converter writes them (Quant nodes in the FINN domain, no opset import for it,
opset 11).

Every builder is seeded and takes seconds; it returns a `QATModel` (the .onnx path, the trained torch model where
there is one, and its float accuracy on the digits test split). Built models are cached per process (one export per
test session), in a temporary folder unless a path is given. `executor_predict` runs a file through qonnx's own
executor, the reference QONNX semantics.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

from accelc.data import load_dataset
from accelc.spec import TensorSpec

FINN_DOMAIN = "finn.custom_op.general"  # what qonnx's Keras converter and FINN-era files use


@dataclass
class QATModel:
    name: str
    path: Path
    torch_model: torch.nn.Module | None  # None for the onnx.helper graphs
    accuracy: float  # the source model's own (torch) accuracy on the digits test split, after the export
    input_shape: tuple[int, ...]  # one sample, batch first
    trained_accuracy: float | None = None  # Brevitas models: the torch accuracy before the export


_CACHE: dict[str, QATModel] = {}
_CACHE_DIR: Path | None = None


def cache_dir() -> Path:
    global _CACHE_DIR
    if _CACHE_DIR is None:
        _CACHE_DIR = Path(tempfile.mkdtemp(prefix="accelc-qat-models-"))
    return _CACHE_DIR


def digits(input_shape: tuple[int, ...], split: str) -> tuple[np.ndarray, np.ndarray]:
    """accelc's digits split (1x8x8 images /16), shaped for a model taking `input_shape` (batch first)."""
    return load_dataset("digits", [TensorSpec("x", tuple(input_shape))], split=split)


# --- training -------------------------------------------------------------------------------------------------------


def _train(model: torch.nn.Module, input_shape: tuple[int, ...], seed: int, epochs: int, lr: float) -> float:
    """Adam on the train split, batches of 128, seeded; returns the accuracy on the test split."""
    x, y = digits(input_shape, "train")
    xs, ys = torch.from_numpy(x), torch.from_numpy(y)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(len(xs), generator=gen)
        for i in range(0, len(xs), 128):
            idx = perm[i:i + 128]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(xs[idx]), ys[idx]).backward()
            opt.step()
        sched.step()
    model.eval()
    return torch_accuracy(model, input_shape)


def torch_accuracy(model: torch.nn.Module, input_shape: tuple[int, ...]) -> float:
    x, y = digits(input_shape, "test")
    with torch.no_grad():
        return float((model(torch.from_numpy(x)).argmax(1).numpy() == y).mean())


def _export(model: torch.nn.Module, input_shape: tuple[int, ...], path: Path, dynamo: bool,
            opset: int | None) -> None:
    """Brevitas's QONNX export, with a batch-1 example input. dynamo=True is its default on torch >= 2.9 (Gemm,
    Reshape); dynamo=False is the TorchScript exporter older setups use (Transpose + MatMul, Flatten), which also
    takes an old `opset` (e.g. 11)."""
    from brevitas.export import export_qonnx

    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kwargs = {} if opset is None else {"opset_version": opset}
        export_qonnx(model, torch.zeros((1, *input_shape[1:])), str(path), dynamo=dynamo, **kwargs)


def _build(name: str, make, input_shape: tuple[int, ...], path: str | Path | None, dynamo: bool, opset: int | None,
           seed: int, epochs: int, lr: float) -> QATModel:
    key = f"{name}-{'dynamo' if dynamo else 'torchscript'}{'' if opset is None else f'-opset{opset}'}"
    if path is None and key in _CACHE:
        return _CACHE[key]
    torch.manual_seed(seed)
    model = make()
    trained = _train(model, input_shape, seed, epochs, lr)
    out = Path(path) if path is not None else cache_dir() / f"{key}.onnx"
    _export(model, input_shape, out, dynamo, opset)
    # Measured again after the export, which can move a Brevitas model's outputs (a 2-bit QuantHardTanh model:
    # 0.958 before, 0.951 after, and the file computes the latter)
    result = QATModel(name, out, model, torch_accuracy(model, input_shape), input_shape, trained)
    if path is None:
        _CACHE[key] = result
    return result


# --- Brevitas models ------------------------------------------------------------------------------------------------

MLP_INPUT = (1, 64)
CNN_INPUT = (1, 1, 8, 8)


def _weight_quant(bits: int):
    """Brevitas weight quantizer: signed binary (BipolarQuant in QONNX) for 1 bit, else per-tensor int (Quant)."""
    from brevitas.quant import Int8WeightPerTensorFloat, SignedBinaryWeightPerTensorConst

    return SignedBinaryWeightPerTensorConst if bits == 1 else Int8WeightPerTensorFloat


def _signed_act(bits: int):
    """A signed activation quantizer on [-1, 1]: binary for 1 bit (BipolarQuant), else QuantHardTanh (Quant)."""
    import brevitas.nn as qnn
    from brevitas.quant import SignedBinaryActPerTensorConst

    if bits == 1:
        return qnn.QuantIdentity(act_quant=SignedBinaryActPerTensorConst, return_quant_tensor=False)
    return qnn.QuantHardTanh(bit_width=bits, max_val=1.0, min_val=-1.0, narrow_range=True)


class _TFC(torch.nn.Module):
    """FINN's TFC layout shrunk to digits: input 2x-1, a binary input quant, then (QuantLinear without bias,
    BatchNorm1d, act quant) per hidden layer, a last QuantLinear. As brevitas_examples' TFC, whose forward starts
    with 2x-1 so that a sign quantizer sees a zero-centred input."""

    def __init__(self, weight_bits: int, act_bits: int, hidden: tuple[int, ...] = (64, 64)):
        import brevitas.nn as qnn

        super().__init__()
        layers: list[torch.nn.Module] = [_signed_act(act_bits)]
        width = 64
        for h in hidden:
            layers += [qnn.QuantLinear(width, h, bias=False, weight_quant=_weight_quant(weight_bits),
                                       weight_bit_width=max(weight_bits, 2)),
                       torch.nn.BatchNorm1d(h), _signed_act(act_bits)]
            width = h
        layers.append(qnn.QuantLinear(width, 10, bias=False, weight_quant=_weight_quant(weight_bits),
                                      weight_bit_width=max(weight_bits, 2)))
        self.features = torch.nn.Sequential(*layers)

    def forward(self, x):
        return self.features(2.0 * x - 1.0)


def tfc_1w1a(path: str | Path | None = None, dynamo: bool = True, opset: int | None = None) -> QATModel:
    """(a) TFC-style binarized MLP: 1-bit weights and activations (BipolarQuant)."""
    return _build("tfc_1w1a", lambda: _TFC(1, 1), MLP_INPUT, path, dynamo, opset, seed=0, epochs=12, lr=2e-2)


def tfc_1w2a(path: str | Path | None = None, dynamo: bool = True, opset: int | None = None) -> QATModel:
    """(b) binary weights (BipolarQuant), 2-bit signed activations (Quant, narrow range)."""
    return _build("tfc_1w2a", lambda: _TFC(1, 2), MLP_INPUT, path, dynamo, opset, seed=0, epochs=12, lr=2e-2)


def tfc_2w2a(path: str | Path | None = None, dynamo: bool = True, opset: int | None = None) -> QATModel:
    """(c) 2-bit weights and 2-bit signed activations (Quant everywhere)."""
    return _build("tfc_2w2a", lambda: _TFC(2, 2), MLP_INPUT, path, dynamo, opset, seed=0, epochs=12, lr=2e-2)


def _mlp_3bit_bn() -> torch.nn.Module:
    import brevitas.nn as qnn

    return torch.nn.Sequential(
        qnn.QuantLinear(64, 32, bias=True, weight_bit_width=3),
        torch.nn.BatchNorm1d(32),
        qnn.QuantReLU(bit_width=3),
        qnn.QuantLinear(32, 10, bias=True, weight_bit_width=3),
    )


def mlp_3bit_bn(path: str | Path | None = None, dynamo: bool = True, opset: int | None = None) -> QATModel:
    """(d) 3-bit weights (with float biases), BatchNorm1d after the first layer, 3-bit unsigned QuantReLU; the float
    input feeds the first quantized-weight layer directly."""
    return _build("mlp_3bit_bn", _mlp_3bit_bn, MLP_INPUT, path, dynamo, opset, seed=0, epochs=12, lr=2e-2)


def _cnn_4bit() -> torch.nn.Module:
    import brevitas.nn as qnn

    return torch.nn.Sequential(
        qnn.QuantIdentity(bit_width=4, return_quant_tensor=False),
        qnn.QuantConv2d(1, 8, 3, padding=1, bias=True, weight_bit_width=4),
        qnn.QuantReLU(bit_width=4),
        torch.nn.MaxPool2d(2),
        qnn.QuantConv2d(8, 16, 3, bias=True, weight_bit_width=4),
        qnn.QuantReLU(bit_width=4),
        torch.nn.Flatten(),
        qnn.QuantLinear(16 * 2 * 2, 10, bias=True, weight_bit_width=4),
    )


def cnn_4bit(path: str | Path | None = None, dynamo: bool = True, opset: int | None = None) -> QATModel:
    """(e) a small CNN: 4-bit input quant, two 4-bit QuantConv2d with 4-bit QuantReLU, MaxPool, a 4-bit QuantLinear."""
    return _build("cnn_4bit", _cnn_4bit, CNN_INPUT, path, dynamo, opset, seed=0, epochs=8, lr=2e-2)


def _cnn_trunc_avgpool() -> torch.nn.Module:
    import brevitas.nn as qnn

    return torch.nn.Sequential(
        qnn.QuantIdentity(bit_width=4, return_quant_tensor=True),
        qnn.QuantConv2d(1, 8, 3, padding=1, bias=False, weight_bit_width=4, return_quant_tensor=True),
        qnn.QuantReLU(bit_width=4, return_quant_tensor=True),
        qnn.TruncAvgPool2d(kernel_size=2, bit_width=4, float_to_int_impl_type="floor", return_quant_tensor=False),
        torch.nn.Flatten(),
        qnn.QuantLinear(8 * 4 * 4, 10, bias=True, weight_bit_width=4),
    )


def cnn_trunc_avgpool(path: str | Path | None = None, dynamo: bool = True, opset: int | None = None) -> QATModel:
    """(e') a CNN with Brevitas' TruncAvgPool2d: the 2x2 sum of 4-bit activations truncated (FLOOR) back to 4 bits,
    exported as AveragePool -> Mul -> Trunc."""
    return _build("cnn_trunc_avgpool", _cnn_trunc_avgpool, CNN_INPUT, path, dynamo, opset, seed=0, epochs=8, lr=2e-2)


DIGITS_MEAN, DIGITS_STD = 0.30, 0.38  # about the train split's pixel mean and std


class _Scaled(torch.nn.Module):
    """(x - mean) / std before the first quant layer, as a user who normalizes inside forward() exports it."""

    def __init__(self):
        import brevitas.nn as qnn

        super().__init__()
        self.body = torch.nn.Sequential(
            qnn.QuantIdentity(bit_width=8, return_quant_tensor=False),
            qnn.QuantLinear(64, 32, bias=True, weight_bit_width=4),
            qnn.QuantReLU(bit_width=4),
            qnn.QuantLinear(32, 10, bias=True, weight_bit_width=4),
        )

    def forward(self, x):
        return self.body((x - DIGITS_MEAN) / DIGITS_STD)


def mlp_input_scaling(path: str | Path | None = None, dynamo: bool = True, opset: int | None = None) -> QATModel:
    """(f) input normalization (Sub, Div) before an 8-bit input quant, then a 4-bit MLP."""
    return _build("mlp_input_scaling", _Scaled, MLP_INPUT, path, dynamo, opset, seed=0, epochs=12, lr=2e-2)


BREVITAS_MODELS = {"tfc_1w1a": tfc_1w1a, "tfc_1w2a": tfc_1w2a, "tfc_2w2a": tfc_2w2a, "mlp_3bit_bn": mlp_3bit_bn,
                   "cnn_4bit": cnn_4bit, "cnn_trunc_avgpool": cnn_trunc_avgpool, "mlp_input_scaling": mlp_input_scaling}


# --- QKeras-style QONNX graphs (onnx.helper) -----------------------------------------------------------------------


def quant_po2(x: np.ndarray, bits: int, integer: int, signed: bool) -> np.ndarray:
    """QONNX Quant with QKeras's quantized_bits/quantized_relu scale 2^-(bits-integer-signed), zero point 0,
    narrow=0, rounding ROUND (half to even, as numpy)."""
    scale = 2.0 ** -(bits - integer - int(signed))
    lo, hi = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2 ** bits - 1)
    return (np.clip(np.round(x / scale), lo, hi) * scale).astype(np.float32)


class _QKerasMLP(torch.nn.Module):
    """Trains the weights the graph will carry: fake-quantized exactly as the graph's Quant nodes (STE)."""

    def __init__(self, spec):
        super().__init__()
        self.spec = spec
        widths = (64, *spec["hidden"], 10)
        self.dense = torch.nn.ModuleList(torch.nn.Linear(a, b) for a, b in zip(widths, widths[1:]))

    @staticmethod
    def q(x, bits, integer, signed, rounding="ROUND"):
        scale = 2.0 ** -(bits - integer - int(signed))
        lo, hi = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2 ** bits - 1)
        y = torch.clamp((torch.floor if rounding == "FLOOR" else torch.round)(x / scale), lo, hi) * scale
        return x + (y - x).detach()

    def forward(self, x):
        s = self.spec
        x = self.q(x, *s["in"], False)
        for i, lin in enumerate(self.dense):
            x = x @ self.q(lin.weight.T, *s["w"], True) + self.q(lin.bias, *s["b"], True)
            if i < len(s["act"]):
                bits, integer, rounding = s["act"][i]
                x = self.q(torch.relu(x), bits, integer, False, rounding)
        return x


# (bits, integer) per tensor; "act": (bits, integer, rounding_mode) per hidden layer's quantized_relu
QKERAS_SPEC = {"hidden": (32,), "in": (8, 1), "w": (6, 0), "b": (8, 3), "act": ((4, 2, "ROUND"),)}
# The widths QKeras/HGQ users give high-precision layers: 12-bit weights and biases, 10-bit activations, one of
# them truncating (FLOOR: QKeras's quantized_relu without rounding, HGQ's RND mode off)
QKERAS_WIDE_SPEC = {"hidden": (32, 32), "in": (10, 1), "w": (12, 1), "b": (12, 4),
                    "act": ((10, 4, "FLOOR"), (10, 4, "ROUND"))}


def _quant_node(inp: str, out: str, bits: int, integer: int, signed: bool, inits: list,
                rounding: str = "ROUND") -> onnx.NodeProto:
    scale = 2.0 ** -(bits - integer - int(signed))
    for suffix, value in (("scale", scale), ("zeropt", 0.0), ("bitwidth", float(bits))):
        inits.append(numpy_helper.from_array(np.array(value, dtype=np.float32), f"{out}_{suffix}"))
    return helper.make_node("Quant", [inp, f"{out}_scale", f"{out}_zeropt", f"{out}_bitwidth"], [out], name=out,
                            domain=FINN_DOMAIN, signed=int(signed), narrow=0, rounding_mode=rounding)


def _qkeras_graph(name: str, spec: dict, path: str | Path | None) -> QATModel:
    """Trains a _QKerasMLP on `spec` and writes it as qonnx's Keras converter would: Quant on the input, on each
    weight and bias (initializers) before MatMul + Add, Relu + unsigned Quant per quantized_relu; Quant in the FINN
    domain with no opset import for it; opset 11."""
    if path is None and name in _CACHE:
        return _CACHE[name]
    torch.manual_seed(0)
    net = _QKerasMLP(spec)
    acc = _train(net, MLP_INPUT, seed=0, epochs=12, lr=2e-2)
    inits: list = []
    for i, lin in enumerate(net.dense, 1):
        inits.append(numpy_helper.from_array(lin.weight.detach().numpy().T.copy(), f"dense{i}_kernel"))
        inits.append(numpy_helper.from_array(lin.bias.detach().numpy().copy(), f"dense{i}_bias"))
    nodes = [_quant_node("input_1", "input_q", *spec["in"], False, inits)]
    prev = "input_q"
    for i in range(1, len(net.dense) + 1):
        nodes += [_quant_node(f"dense{i}_kernel", f"dense{i}_kernel_q", *spec["w"], True, inits),
                  _quant_node(f"dense{i}_bias", f"dense{i}_bias_q", *spec["b"], True, inits),
                  helper.make_node("MatMul", [prev, f"dense{i}_kernel_q"], [f"dense{i}_mm"], name=f"dense{i}_mm"),
                  helper.make_node("Add", [f"dense{i}_mm", f"dense{i}_bias_q"], [f"dense{i}"],
                                   name=f"dense{i}_add")]
        prev = f"dense{i}"
        if i <= len(spec["act"]):
            bits, integer, rounding = spec["act"][i - 1]
            nodes += [helper.make_node("Relu", [prev], [f"act{i}_relu"], name=f"act{i}_relu"),
                      _quant_node(f"act{i}_relu", f"act{i}", bits, integer, False, inits, rounding)]
            prev = f"act{i}"
    graph = helper.make_graph(
        nodes, name,
        [helper.make_tensor_value_info("input_1", TensorProto.FLOAT, ["unk__0", 64])],
        [helper.make_tensor_value_info(prev, TensorProto.FLOAT, ["unk__0", 10])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)], producer_name="qkeras-style")
    model.ir_version = 6
    out = Path(path) if path is not None else cache_dir() / f"{name}.onnx"
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(out))
    result = QATModel(name, out, None, acc, MLP_INPUT)
    if path is None:
        _CACHE[name] = result
    return result


def qkeras_mlp(path: str | Path | None = None) -> QATModel:
    """(g) a QKeras-style QONNX MLP as qonnx's Keras converter writes one: 8-bit input, 6-bit weights, 8-bit
    biases, one 4-bit quantized_relu (64-32-10)."""
    return _qkeras_graph("qkeras_mlp", QKERAS_SPEC, path)


def qkeras_wide(path: str | Path | None = None) -> QATModel:
    """(h) the same as written for high-precision layers (QKeras, HGQ): 10-bit input, 12-bit weights and biases
    (power-of-2 scales), two 10-bit unsigned quantized_relu, the first with rounding_mode FLOOR, the second ROUND
    (64-32-32-10)."""
    return _qkeras_graph("qkeras_wide", QKERAS_WIDE_SPEC, path)


ALL_MODELS = {**BREVITAS_MODELS, "qkeras_mlp": qkeras_mlp, "qkeras_wide": qkeras_wide}


# --- qonnx's executor -----------------------------------------------------------------------------------------------


def executor_predict(path: str | Path, x: np.ndarray) -> np.ndarray:
    """The first output of qonnx's executor on a batch: the file as-is through qonnx's cleanup (shape inference,
    constant folding), the batch size set to len(x). qonnx's ModelWrapper itself moves finn.custom_op.general nodes
    to its own domain (with a warning), and aliases onnx.brevitas."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.transformation.change_batchsize import ChangeBatchSize
    from qonnx.transformation.infer_shapes import InferShapes
    from qonnx.util.cleanup import cleanup_model

    model = cleanup_model(ModelWrapper(str(path)))
    model = model.transform(ChangeBatchSize(len(x))).transform(InferShapes())
    name = model.graph.input[0].name
    return execute_onnx(model, {name: np.ascontiguousarray(x, dtype=np.float32)})[model.graph.output[0].name]


def executor_accuracy(m: QATModel) -> float:
    x, y = digits(m.input_shape, "test")
    return float((executor_predict(m.path, x).argmax(1) == y).mean())
