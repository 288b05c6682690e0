"""An ONNX graph as a trainable torch module, exact to the graph, and the trained weights written back into it.

Why not onnx2torch (measured on the digits CNN, onnx2torch 1.5.15): it is exact on float graphs (5.7e-6 max abs
error on the logits) but (1) has no QuantizeLinear/DequantizeLinear converter, so an int8 QDQ graph does not
convert ("Converter is not implemented ... DequantizeLinear"), and (2) imports torchvision at module level for its
NMS/RoiAlign converters; `pip install onnx2torch` pulled torch 2.14.1 with 18 CUDA wheels over the pinned CPU torch,
and torchvision's PyPI wheel does not load against the CPU build. So this module interprets the graph node by node
with torch ops, keeps every trainable initializer as a Parameter under its ONNX name (write-back is a lookup), and
runs QDQ with ONNX's exact arithmetic (round(x / scale) half to even, saturate) and a straight-through gradient.

Trainable: the weights and biases of Conv/Gemm/MatMul (and a constant Add right after a MatMul), whether float
initializers or int8/int32 initializers behind a DequantizeLinear. A quantized weight trains as a float master copy
seen through fake quantization with the graph's own scale, zero point and integer range, and is written back as
round(master / scale) + zero point: the graph then computes exactly what the module computed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper
from torch import nn

from accelc.errors import UnsupportedOpError

WEIGHTED = ("Conv", "Gemm", "MatMul")
INT_RANGES = {np.dtype(np.int8): (-128, 127), np.dtype(np.uint8): (0, 255), np.dtype(np.int32): (-2**31, 2**31 - 1)}
TARGET = "finetune (torch)"


class _QuantizeSTE(torch.autograd.Function):
    """ONNX QuantizeLinear's integer grid (as float), with the straight-through gradient inside the range."""

    @staticmethod
    def forward(ctx, x, scale, zero_point, qmin: float, qmax: float):  # noqa: ANN001
        raw = torch.round(x / scale) + zero_point  # torch.round is half-to-even, like ONNX
        ctx.save_for_backward((raw >= qmin) & (raw <= qmax), scale)
        return raw.clamp(qmin, qmax)

    @staticmethod
    def backward(ctx, grad):  # noqa: ANN001
        inside, scale = ctx.saved_tensors
        return grad * inside / scale, None, None, None, None


@dataclass
class QuantInfo:
    """How a quantized initializer is stored: its integer dtype and range, scale and zero point (broadcastable)."""

    dtype: np.dtype
    qmin: int
    qmax: int
    scale: torch.Tensor
    zero_point: torch.Tensor

    def quantize(self, w: torch.Tensor) -> torch.Tensor:
        return _QuantizeSTE.apply(w, self.scale, self.zero_point, float(self.qmin), float(self.qmax))

    def fake(self, w: torch.Tensor) -> torch.Tensor:
        return (self.quantize(w) - self.zero_point) * self.scale

    @property
    def bits(self) -> int:
        return int(np.ceil(np.log2(self.qmax - self.qmin + 1)))


def _broadcast(v: np.ndarray, axis: int, rank: int) -> np.ndarray:
    """A per-axis scale/zero point (1-D) shaped to broadcast along `axis` of a rank-`rank` tensor."""
    if v.ndim == 0:
        return v
    shape = [1] * rank
    shape[axis % rank] = v.size
    return v.reshape(shape)


def _weight_range(q: np.ndarray, dtype: np.dtype) -> tuple[int, int]:
    """The integer range a quantized weight was made for. Symmetric weight quantization maps each channel's
    largest |w| to the end of its range, so the largest |q| tells the range: 64 is onnxruntime's reduce_range
    [-64, 64] (7-bit weights, which keep its fused int8 CPU kernels exact), 127 its symmetric [-127, 127].
    Re-quantized trained weights must stay in that range, not spill into the full int8 one."""
    lo, hi = INT_RANGES[dtype]
    if dtype == np.int8 and q.size:
        top = int(np.max(np.abs(q.astype(np.int32))))
        return (-64, 64) if top <= 64 else (-127, 127) if top <= 127 else (lo, hi)
    return lo, hi


class GraphModule(nn.Module):
    """Runs an ONNX graph with torch ops; trainable initializers are Parameters (see the module docstring)."""

    def __init__(self, model: onnx.ModelProto) -> None:
        super().__init__()
        self.proto = model
        self.graph = model.graph
        inits = {t.name for t in model.graph.initializer}
        self.input_names = [i.name for i in model.graph.input if i.name not in inits]
        self.output_names = [o.name for o in model.graph.output]
        arrays = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
        for node in model.graph.node:  # Constant nodes are initializers by another name
            if node.op_type == "Constant":
                arrays[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
        self._check_ops()
        producers = {o: n for n in model.graph.node for o in n.output}
        self.params = nn.ParameterDict()
        self.keys: dict[str, str] = {}  # initializer name -> key in self.params
        self.quant: dict[str, QuantInfo] = {}  # quantized trainable initializer -> its storage
        self.weights: list[str] = []  # trainable initializers that are Conv/Gemm/MatMul weights (masks apply)
        for name, kind in self._trainable(model, arrays, producers):
            src = producers.get(name)
            if src is not None and src.op_type == "DequantizeLinear":
                name = src.input[0]
                info = self._quant_info(src, arrays)
                self.quant[name] = info  # the master copy starts at the dequantized value, on the grid
                value = (torch.from_numpy(arrays[name].astype(np.float32)) - info.zero_point) * info.scale
            else:
                value = torch.from_numpy(arrays[name].astype(np.float32))
            if name in self.keys:
                continue
            self.keys[name] = f"p{len(self.keys)}"
            self.params[self.keys[name]] = nn.Parameter(value.clone())
            if kind == "weight":
                self.weights.append(name)
        self.consts = {k: torch.from_numpy(np.array(v, copy=True)) for k, v in arrays.items() if k not in self.keys}

    # -- structure ---------------------------------------------------------------------------------------------------

    def _check_ops(self) -> None:
        from accelc.errors import Unsupported

        bad = [Unsupported(n.op_type, n.name, TARGET, "no torch translation for this op",
                           "fine-tune a graph of Conv/Gemm/MatMul, elementwise, pooling, reshape and QDQ ops")
               for n in self.graph.node if n.domain not in ("", "ai.onnx") or not hasattr(self, f"_op_{n.op_type}")]
        if bad:
            raise UnsupportedOpError(TARGET, bad)

    @staticmethod
    def _trainable(model: onnx.ModelProto, arrays: dict, producers: dict) -> list[tuple[str, str]]:
        found = []

        def is_float_const(name: str) -> bool:
            if name in arrays:
                return arrays[name].dtype.kind == "f"
            src = producers.get(name)
            return src is not None and src.op_type == "DequantizeLinear" and src.input[0] in arrays

        for node in model.graph.node:
            if node.op_type in WEIGHTED:
                for idx, kind in ((1, "weight"), (2, "bias")):
                    if len(node.input) > idx and node.input[idx] and is_float_const(node.input[idx]):
                        found.append((node.input[idx], kind))
            if node.op_type == "Add" and any(producers.get(i) is not None and producers[i].op_type == "MatMul"
                                             for i in node.input):
                found += [(i, "bias") for i in node.input if is_float_const(i)]
        return found

    @staticmethod
    def _quant_info(dq: onnx.NodeProto, arrays: dict) -> QuantInfo:
        q = arrays[dq.input[0]]
        scale = np.asarray(arrays[dq.input[1]], dtype=np.float32)
        zp = arrays[dq.input[2]] if len(dq.input) > 2 and dq.input[2] else np.zeros((), q.dtype)
        axis = next((a.i for a in dq.attribute if a.name == "axis"), 1)
        qmin, qmax = _weight_range(q, q.dtype) if q.dtype != np.int32 else INT_RANGES[q.dtype]
        return QuantInfo(q.dtype, qmin, qmax, torch.from_numpy(_broadcast(scale, axis, q.ndim).copy()),
                         torch.from_numpy(_broadcast(np.asarray(zp, np.float32), axis, q.ndim).copy()))

    def _apply(self, fn, recurse: bool = True):  # noqa: ANN001, ANN206 - .to(device) must move the constants too
        super()._apply(fn, recurse)
        self.consts = {k: fn(v) for k, v in self.consts.items()}
        for info in self.quant.values():
            info.scale, info.zero_point = fn(info.scale), fn(info.zero_point)
        return self

    def param(self, name: str) -> nn.Parameter:
        return self.params[self.keys[name]]

    # -- forward -----------------------------------------------------------------------------------------------------

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        env: dict[str, torch.Tensor] = dict(zip(self.input_names, inputs))
        for name, key in self.keys.items():
            p = self.params[key]
            env[name] = p if name not in self.quant else self.quant[name].fake(p)
        for node in self.graph.node:
            if node.op_type == "Constant":
                continue
            if node.op_type == "DequantizeLinear" and node.input[0] in self.quant:
                env[node.output[0]] = env[node.input[0]]  # already the fake-quantized float weight
                continue
            args = [self._value(env, i) for i in node.input]
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            out = getattr(self, f"_op_{node.op_type}")(args, attrs)
            env[node.output[0]] = out
        outs = tuple(env[o] for o in self.output_names)
        return outs[0] if len(outs) == 1 else outs

    def _value(self, env: dict, name: str) -> torch.Tensor | None:
        if not name:
            return None
        if name in env:
            return env[name]
        return self.consts[name]

    # -- ops (ONNX semantics, opset 13) --------------------------------------------------------------------------------

    def _op_Conv(self, a, at):  # noqa: ANN001, ANN202
        x, w = a[0], a[1]
        b = a[2] if len(a) > 2 else None
        nd = w.dim() - 2
        if at.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET", b"VALID", "VALID"):
            raise UnsupportedOpError(TARGET, [f"Conv auto_pad={at['auto_pad']!r}"])
        pads = list(at.get("pads", [0] * 2 * nd))
        if pads[:nd] != pads[nd:]:
            x = F.pad(x, [p for i in reversed(range(nd)) for p in (pads[i], pads[i + nd])])
            pads = [0] * 2 * nd
        conv = (F.conv1d, F.conv2d, F.conv3d)[nd - 1]
        return conv(x, w, b, stride=at.get("strides", 1), padding=pads[:nd], dilation=at.get("dilations", 1),
                    groups=at.get("group", 1))

    def _op_Gemm(self, a, at):  # noqa: ANN001, ANN202
        x = a[0].t() if at.get("transA", 0) else a[0]
        w = a[1].t() if at.get("transB", 0) else a[1]
        y = at.get("alpha", 1.0) * (x @ w)
        return y + at.get("beta", 1.0) * a[2] if len(a) > 2 and a[2] is not None else y

    def _op_MatMul(self, a, at):  # noqa: ANN001, ANN202
        return torch.matmul(a[0], a[1])

    def _op_Add(self, a, at):  # noqa: ANN001, ANN202
        return a[0] + a[1]

    def _op_Sub(self, a, at):  # noqa: ANN001, ANN202
        return a[0] - a[1]

    def _op_Mul(self, a, at):  # noqa: ANN001, ANN202
        return a[0] * a[1]

    def _op_Div(self, a, at):  # noqa: ANN001, ANN202
        return a[0] / a[1]

    def _op_Relu(self, a, at):  # noqa: ANN001, ANN202
        return F.relu(a[0])

    def _op_LeakyRelu(self, a, at):  # noqa: ANN001, ANN202
        return F.leaky_relu(a[0], at.get("alpha", 0.01))

    def _op_Sigmoid(self, a, at):  # noqa: ANN001, ANN202
        return torch.sigmoid(a[0])

    def _op_Tanh(self, a, at):  # noqa: ANN001, ANN202
        return torch.tanh(a[0])

    def _op_Clip(self, a, at):  # noqa: ANN001, ANN202
        lo = a[1] if len(a) > 1 and a[1] is not None else None
        hi = a[2] if len(a) > 2 and a[2] is not None else None
        return torch.clamp(a[0], lo, hi)

    def _op_Softmax(self, a, at):  # noqa: ANN001, ANN202
        return F.softmax(a[0], dim=at.get("axis", -1))

    def _op_LogSoftmax(self, a, at):  # noqa: ANN001, ANN202
        return F.log_softmax(a[0], dim=at.get("axis", -1))

    def _op_Identity(self, a, at):  # noqa: ANN001, ANN202
        return a[0]

    _op_Dropout = _op_Identity  # inference semantics: canonicalization removes it anyway

    def _pool(self, a, at, kind: str):  # noqa: ANN001, ANN202
        x = a[0]
        k = list(at["kernel_shape"])
        nd = len(k)
        pads = list(at.get("pads", [0] * 2 * nd))
        if pads[:nd] != pads[nd:]:
            fill = float("-inf") if kind == "max" else 0.0
            x = F.pad(x, [p for i in reversed(range(nd)) for p in (pads[i], pads[i + nd])], value=fill)
            pads = [0] * 2 * nd
        stride = list(at.get("strides", [1] * nd))
        ceil = bool(at.get("ceil_mode", 0))
        if kind == "max":
            fn = (F.max_pool1d, F.max_pool2d, F.max_pool3d)[nd - 1]
            return fn(x, k, stride, pads[:nd], dilation=list(at.get("dilations", [1] * nd)), ceil_mode=ceil)
        fn = (F.avg_pool1d, F.avg_pool2d, F.avg_pool3d)[nd - 1]
        return fn(x, k, stride, pads[:nd], ceil_mode=ceil, count_include_pad=bool(at.get("count_include_pad", 0)))

    def _op_MaxPool(self, a, at):  # noqa: ANN001, ANN202
        return self._pool(a, at, "max")

    def _op_AveragePool(self, a, at):  # noqa: ANN001, ANN202
        return self._pool(a, at, "avg")

    def _op_GlobalAveragePool(self, a, at):  # noqa: ANN001, ANN202
        return a[0].mean(dim=tuple(range(2, a[0].dim())), keepdim=True)

    def _op_GlobalMaxPool(self, a, at):  # noqa: ANN001, ANN202
        return a[0].amax(dim=tuple(range(2, a[0].dim())), keepdim=True)

    def _op_Flatten(self, a, at):  # noqa: ANN001, ANN202
        axis = at.get("axis", 1) % max(a[0].dim(), 1)
        return a[0].reshape(int(np.prod(a[0].shape[:axis])), -1)

    def _op_Reshape(self, a, at):  # noqa: ANN001, ANN202
        shape = [int(d) for d in a[1].tolist()]
        if not at.get("allowzero", 0):
            shape = [a[0].shape[i] if d == 0 else d for i, d in enumerate(shape)]
        return a[0].reshape(shape)

    def _op_Transpose(self, a, at):  # noqa: ANN001, ANN202
        perm = at.get("perm", list(reversed(range(a[0].dim()))))
        return a[0].permute(*perm)

    def _op_Concat(self, a, at):  # noqa: ANN001, ANN202
        return torch.cat([t for t in a if t is not None], dim=at["axis"])

    def _op_Squeeze(self, a, at):  # noqa: ANN001, ANN202
        axes = a[1].tolist() if len(a) > 1 and a[1] is not None else None
        return a[0].squeeze() if axes is None else a[0].squeeze(tuple(int(d) for d in axes))

    def _op_Unsqueeze(self, a, at):  # noqa: ANN001, ANN202
        y = a[0]
        for d in sorted(int(v) % (y.dim() + len(a[1])) for v in a[1].tolist()):
            y = y.unsqueeze(d)
        return y

    def _op_BatchNormalization(self, a, at):  # noqa: ANN001, ANN202
        x, s, b, m, v = a[:5]
        return F.batch_norm(x, m.float(), v.float(), s, b, training=False, eps=at.get("epsilon", 1e-5))

    def _op_QuantizeLinear(self, a, at):  # noqa: ANN001, ANN202
        """An activation's integer grid, kept as float; the following DequantizeLinear scales it back."""
        x, scale = a[0], a[1].float()
        zp = a[2] if len(a) > 2 and a[2] is not None else torch.zeros((), dtype=torch.uint8)
        qmin, qmax = INT_RANGES[np.dtype(str(zp.dtype).replace("torch.", ""))]
        axis = at.get("axis", 1)
        scale_b = scale.reshape(_broadcast(np.zeros(scale.shape), axis, x.dim()).shape)
        zp_b = zp.float().reshape(scale_b.shape)
        return _QuantizeSTE.apply(x, scale_b, zp_b, float(qmin), float(qmax))

    def _op_DequantizeLinear(self, a, at):  # noqa: ANN001, ANN202
        q, scale = a[0].float(), a[1].float()
        zp = a[2].float() if len(a) > 2 and a[2] is not None else torch.zeros(())
        axis = at.get("axis", 1)
        shape = _broadcast(np.zeros(scale.shape), axis, q.dim()).shape
        return (q - zp.reshape(shape)) * scale.reshape(shape)

    # -- write-back --------------------------------------------------------------------------------------------------

    def stored(self, name: str) -> np.ndarray:
        """The initializer `name` as the graph stores it: float, or integers re-quantized with the graph's scale."""
        p = self.param(name).detach()
        info = self.quant.get(name)
        if info is None:
            return p.numpy().astype(np.float32)
        return info.quantize(p).numpy().astype(info.dtype)

    def to_onnx(self) -> onnx.ModelProto:
        """A copy of the graph with the trained weights written into its initializers (nothing else changes)."""
        new = onnx.ModelProto.FromString(self.proto.SerializeToString())
        for init in new.graph.initializer:
            if init.name in self.keys:
                init.CopyFrom(numpy_helper.from_array(self.stored(init.name), init.name))
        return new


def max_abs_error(module: GraphModule, x: np.ndarray) -> tuple[float, float]:
    """(max |torch - ONNX Runtime| on x, max |ONNX Runtime output|): the conversion's exactness on real inputs."""
    from accelc.reference import Reference

    ref = Reference(module.proto).run([x])[0]
    with torch.no_grad():
        out = module(torch.from_numpy(np.asarray(x, np.float32)))
    out = out[0] if isinstance(out, tuple) else out
    return float(np.max(np.abs(out.numpy() - ref))), float(np.max(np.abs(ref)))
