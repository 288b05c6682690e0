"""The conformance catalogue: single-node ONNX models over the attribute combinations the operator spec defines.

Each case is a tiny model with a symbolic batch dimension 'N' (a static batch where the op's semantics need
one), weights drawn from a generator seeded by the case name, and every spatial attribute written out the way
exporters (torch.onnx) write them — hls4ml's QONNX preparation requires `kernel_shape`, `strides`, `pads`,
`dilations` and `group` to be explicit, so omitting them would measure an exporter difference, not the op;
`Conv_defaults_omitted` measures that on its own. Multi-op patterns of real models are in `patterns.py`.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from functools import lru_cache

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from accelc.tools.conformance.case import OPSET, Case, Shape
from accelc.tools.conformance.patterns import pattern_cases


def _rng(name: str) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(name.encode()))


def make_model(name: str, nodes: list, inputs: dict[str, Shape], inits: dict[str, np.ndarray] | None = None,
               outputs: tuple[str, ...] = ("y",), opset: int = OPSET) -> onnx.ModelProto:
    """A checked model; the outputs' shapes are inferred."""
    graph = helper.make_graph(
        nodes, name,
        [helper.make_tensor_value_info(k, TensorProto.FLOAT, list(s)) for k, s in inputs.items()],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in (inits or {}).items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="accelc-conformance")
    model.ir_version = 8  # what ONNX Runtime and QONNX both read
    model = onnx.shape_inference.infer_shapes(model, strict_mode=True)  # fills in the outputs' shapes
    onnx.checker.check_model(model, full_check=True)
    return model


def _single(name: str, op: str, inputs: dict[str, Shape], inits: dict | None = None, node_inputs=None,
            opset: int = OPSET, **attrs) -> Callable[[], onnx.ModelProto]:
    """A builder for one node `op` reading `node_inputs` (default: graph inputs, then initializers)."""
    def build() -> onnx.ModelProto:
        ins = node_inputs if node_inputs is not None else [*inputs, *(inits or {})]
        node = helper.make_node(op, list(ins), ["y"], name=f"{op.lower()}0", **attrs)
        return make_model(name, [node], inputs, inits, opset=opset)
    return build


class _Catalogue:
    """Collects cases; `add` builds single-node cases, `add_case` takes a ready builder."""

    def __init__(self) -> None:
        self.cases: list[Case] = []

    def add_case(self, name: str, op: str, build, shapes, fast: bool = False, positive=()) -> None:
        self.cases.append(Case(name, op, build, tuple(tuple(s) for s in shapes), fast, tuple(positive)))

    def add(self, name: str, op: str, inputs: dict[str, Shape], inits: dict | None = None, fast: bool = False,
            positive=(), node_inputs=None, opset: int = OPSET, **attrs) -> None:
        build = _single(name, op, inputs, inits, node_inputs, opset, **attrs)
        self.add_case(name, op, build, inputs.values(), fast, positive)


def _w(name: str, *shape: int, scale: float = 0.4) -> np.ndarray:
    return (_rng(name).standard_normal(shape) * scale).astype(np.float32)


def _conv_attrs(k: list[int], strides=None, pads=None, dilations=None, group: int = 1, auto_pad=None) -> dict:
    n = len(k)
    attrs = {"kernel_shape": k, "strides": strides or [1] * n, "dilations": dilations or [1] * n, "group": group}
    if auto_pad:
        attrs["auto_pad"] = auto_pad
    else:
        attrs["pads"] = pads or [0] * (2 * n)
    return attrs


def _conv_cases(c: _Catalogue) -> None:
    x2, x1 = {"x": ("N", 4, 8, 8)}, {"x": ("N", 4, 12)}
    variants = [  # name, spatial dims, c_out, kernel, attrs, bias, fast
        ("k3", 2, 6, [3, 3], {}, True, True),
        ("k3_nobias", 2, 6, [3, 3], {}, False, False),
        ("k1_pointwise", 2, 6, [1, 1], {}, True, False),
        ("k1x3", 2, 6, [1, 3], {}, True, False),
        ("pads_sym", 2, 6, [3, 3], {"pads": [1, 1, 1, 1]}, True, True),
        ("pads_asym", 2, 6, [3, 3], {"pads": [0, 1, 1, 2]}, True, False),
        ("strides2", 2, 6, [3, 3], {"strides": [2, 2]}, True, False),
        ("strides2x1_pads", 2, 6, [3, 3], {"strides": [2, 1], "pads": [1, 1, 1, 1]}, True, False),
        ("dilations2", 2, 6, [3, 3], {"dilations": [2, 2]}, True, False),
        ("auto_pad_same_upper", 2, 6, [4, 4], {"auto_pad": "SAME_UPPER"}, True, False),
        ("auto_pad_same_lower", 2, 6, [4, 4], {"auto_pad": "SAME_LOWER"}, True, False),
        ("auto_pad_same_upper_s2", 2, 6, [3, 3], {"auto_pad": "SAME_UPPER", "strides": [2, 2]}, True, False),
        ("auto_pad_valid", 2, 6, [3, 3], {"auto_pad": "VALID"}, True, False),
        ("group2", 2, 6, [3, 3], {"group": 2}, True, True),
        ("depthwise", 2, 4, [3, 3], {"group": 4, "pads": [1, 1, 1, 1]}, True, True),
        ("depthwise_mult2", 2, 8, [3, 3], {"group": 4}, True, False),
        ("1d_k3", 1, 6, [3], {}, True, True),
        ("1d_pads_strides2", 1, 6, [3], {"pads": [1, 2], "strides": [2]}, True, False),
        ("1d_dilations2", 1, 6, [3], {"dilations": [2]}, True, False),
        ("1d_depthwise", 1, 4, [3], {"group": 4}, True, False),
        ("1d_auto_pad_same_upper", 1, 6, [4], {"auto_pad": "SAME_UPPER"}, True, False),
    ]
    for tag, dims, c_out, k, attrs, bias, fast in variants:
        name = f"Conv_{tag}"
        group = attrs.get("group", 1)
        inits = {"W": _w(name, c_out, 4 // group, *k)}
        if bias:
            inits["B"] = _w(name + "b", c_out)
        c.add(name, "Conv", x2 if dims == 2 else x1, inits, fast, **_conv_attrs(k, **attrs))
    name = "Conv_defaults_omitted"  # legal ONNX: kernel_shape, strides, pads, dilations, group all defaulted
    c.add(name, "Conv", x2, {"W": _w(name, 6, 4, 3, 3), "B": _w(name + "b", 6)})


def _pool_cases(c: _Catalogue) -> None:
    x2, x1 = {"x": ("N", 3, 8, 8)}, {"x": ("N", 3, 12)}
    common = [  # name, input, attrs, fast
        ("k2s2", x2, {"kernel_shape": [2, 2], "strides": [2, 2]}, True),
        ("k3s1", x2, {"kernel_shape": [3, 3], "strides": [1, 1]}, False),
        ("k3s2_pads1", x2, {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}, False),
        ("k3s2_pads_asym", x2, {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [0, 0, 1, 1]}, False),
        ("k3s2_ceil", x2, {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1}, False),
        ("k2x3_s2x1", x2, {"kernel_shape": [2, 3], "strides": [2, 1]}, False),
        ("auto_pad_same_upper", x2, {"kernel_shape": [3, 3], "strides": [2, 2], "auto_pad": "SAME_UPPER"}, False),
        ("auto_pad_same_lower", x2, {"kernel_shape": [2, 2], "strides": [1, 1], "auto_pad": "SAME_LOWER"}, False),
        ("auto_pad_valid", x2, {"kernel_shape": [3, 3], "strides": [2, 2], "auto_pad": "VALID"}, False),
        ("1d_k2s2", x1, {"kernel_shape": [2], "strides": [2]}, True),
        ("1d_k3s1_pads1", x1, {"kernel_shape": [3], "strides": [1], "pads": [1, 1]}, False),
    ]
    for op in ("MaxPool", "AveragePool"):
        for tag, x, attrs, fast in common:
            attrs = dict(attrs)
            if "auto_pad" not in attrs:
                attrs.setdefault("pads", [0] * (2 * len(attrs["kernel_shape"])))
            c.add(f"{op}_{tag}", op, x, fast=fast and (op == "MaxPool" or tag == "k2s2"), **attrs)
    c.add("MaxPool_dilations2", "MaxPool", x2, kernel_shape=[2, 2], strides=[1, 1], pads=[0, 0, 0, 0],
          dilations=[2, 2])
    for incl in (0, 1):
        c.add(f"AveragePool_pads1_count_include_pad{incl}", "AveragePool", x2, kernel_shape=[3, 3], strides=[1, 1],
              pads=[1, 1, 1, 1], count_include_pad=incl)
    c.add("GlobalAveragePool_2d", "GlobalAveragePool", x2, fast=True)
    c.add("GlobalAveragePool_1d", "GlobalAveragePool", x1)


def _shape_cases(c: _Catalogue) -> None:
    x4, x3 = {"x": ("N", 3, 4, 5)}, {"x": ("N", 4, 6)}
    for mode, pads, value, fast in [("constant", [0, 0, 1, 1, 0, 0, 1, 1], 0.0, True),
                                    ("constant", [0, 0, 0, 2, 0, 0, 1, 0], 0.5, False),
                                    ("constant", [0, 1, 0, 0, 0, 1, 0, 0], 0.0, False),  # channels
                                    ("reflect", [0, 0, 1, 2, 0, 0, 2, 1], None, False),
                                    ("edge", [0, 0, 1, 1, 0, 0, 1, 1], None, False)]:
        tag = f"{mode}_{'_'.join(map(str, pads))}" + ("_value" if value else "")
        inits = {"pads": np.array(pads, dtype=np.int64)}
        if value is not None:
            inits["value"] = np.array(value, dtype=np.float32)
        c.add(f"Pad_{tag}", "Pad", x4, inits, fast, mode=mode)
    c.add("Pad_1d_constant", "Pad", x3, {"pads": np.array([0, 0, 2, 0, 0, 1], dtype=np.int64)}, mode="constant")
    for axis, fast in [(1, True), (2, False), (3, False), (-1, False), (0, False)]:
        c.add(f"Flatten_4d_axis{axis}", "Flatten", x4, fast=fast, axis=axis)
    c.add("Flatten_3d_axis1", "Flatten", x3, axis=1)
    for tag, x, shape, fast in [("4d_to_2d", x4, [0, -1], True), ("4d_to_4d", x4, [0, 6, 2, 5], False),
                                ("2d_to_4d", {"x": ("N", 60)}, [-1, 3, 4, 5], False),
                                ("3d_to_3d", x3, [0, 6, 4], False), ("4d_to_3d", x4, [0, 3, 20], False)]:
        c.add(f"Reshape_{tag}", "Reshape", x, {"shape": np.array(shape, dtype=np.int64)}, fast)
    for perm, fast in [((0, 2, 3, 1), True), ((0, 3, 1, 2), False), ((0, 1, 3, 2), False), ((0, 2, 1, 3), False),
                       ((0, 3, 2, 1), False), ((0, 1, 2, 3), False)]:
        c.add(f"Transpose_4d_{''.join(map(str, perm))}", "Transpose", x4, fast=fast, perm=list(perm))
    c.add("Transpose_3d_021", "Transpose", x3, perm=[0, 2, 1])
    c.add("Transpose_2d_01", "Transpose", {"x": ("N", 7)}, perm=[0, 1])
    for tag, inputs, axis, fast in [("4d_axis1", {"a": ("N", 3, 4, 4), "b": ("N", 2, 4, 4)}, 1, True),
                                    ("4d_axis2", {"a": ("N", 3, 4, 4), "b": ("N", 3, 2, 4)}, 2, False),
                                    ("4d_axis3", {"a": ("N", 3, 4, 4), "b": ("N", 3, 4, 3)}, 3, False),
                                    ("4d_axis-3", {"a": ("N", 3, 4, 4), "b": ("N", 2, 4, 4)}, -3, False),
                                    ("3d_axis1", {"a": ("N", 4, 6), "b": ("N", 2, 6)}, 1, False),
                                    ("3d_axis2", {"a": ("N", 4, 6), "b": ("N", 4, 3)}, 2, False),
                                    ("2d_axis1", {"a": ("N", 5), "b": ("N", 3)}, 1, True)]:
        c.add(f"Concat_{tag}", "Concat", inputs, fast=fast, axis=axis)
    c.add("Concat_2d_const", "Concat", {"a": (1, 5)}, {"k": _w("Concat_2d_const", 1, 3)}, axis=1)


def _gemm_cases(c: _Catalogue) -> None:
    x = {"x": ("N", 8)}
    for tag, attrs, with_c, fast in [("plain", {}, None, False), ("bias", {}, (5,), True),
                                     ("bias_scalar", {}, (1,), False), ("bias_row", {}, (1, 5), False),
                                     ("transB", {"transB": 1}, (5,), True), ("alpha0.5", {"alpha": 0.5}, (5,), False),
                                     ("beta2", {"beta": 2.0}, (5,), False),
                                     ("alpha_beta_transB", {"alpha": 1.5, "beta": 0.5, "transB": 1}, (5,), False)]:
        name = f"Gemm_{tag}"
        inits = {"B": _w(name, *((5, 8) if attrs.get("transB") else (8, 5)))}
        if with_c:
            inits["C"] = _w(name + "c", *with_c)
        c.add(name, "Gemm", x, inits, fast, **attrs)
    # transA: A is the input laid out (K, M); a static batch, since the batch axis is transposed away.
    c.add("Gemm_transA", "Gemm", {"x": (1, 8)}, {"B": _w("Gemm_transA", 1, 5), "C": _w("Gemm_transAc", 5)}, transA=1)
    c.add("MatMul_2d", "MatMul", x, {"W": _w("MatMul_2d", 8, 5)}, True)
    c.add("MatMul_3d_broadcast", "MatMul", {"x": ("N", 4, 8)}, {"W": _w("MatMul_3d", 8, 5)})
    c.add("MatMul_4d_broadcast", "MatMul", {"x": ("N", 2, 3, 8)}, {"W": _w("MatMul_4d", 8, 5)})
    c.add("MatMul_two_inputs", "MatMul", {"a": ("N", 4, 8), "b": ("N", 8, 3)})


def _binary_cases(c: _Catalogue) -> None:
    for op in ("Add", "Sub", "Mul", "Div"):
        positive = (1,) if op == "Div" else ()

        def const(name, *shape, divisor=op == "Div"):
            w = _w(name, *shape, scale=1.0)
            return np.abs(w) + 0.5 if divisor else w  # divisors kept away from zero

        c.add(f"{op}_same_shape_4d", op, {"a": ("N", 3, 4, 4), "b": ("N", 3, 4, 4)}, fast=op in ("Add", "Mul"),
              positive=positive)
        c.add(f"{op}_same_shape_2d", op, {"a": ("N", 6), "b": ("N", 6)}, fast=op in ("Sub", "Div"), positive=positive)
        c.add(f"{op}_scalar_const", op, {"x": ("N", 3, 4, 4)}, {"k": const(f"{op}s", 1)[0]}, fast=op == "Mul")
        c.add(f"{op}_scalar_const_2d", op, {"x": ("N", 6)}, {"k": const(f"{op}s2", 1)[0]})
        c.add(f"{op}_const_first", op, {"x": ("N", 6)}, {"k": const(f"{op}cf", 6)}, node_inputs=["k", "x"],
              positive=(0,) if op == "Div" else ())
        c.add(f"{op}_per_channel_const", op, {"x": ("N", 3, 4, 4)}, {"k": const(f"{op}pc", 3, 1, 1)},
              fast=op == "Add")
        c.add(f"{op}_last_axis_const", op, {"x": ("N", 3, 4, 4)}, {"k": const(f"{op}la", 4)})
        c.add(f"{op}_feature_const_2d", op, {"x": ("N", 6)}, {"k": const(f"{op}f", 6)})
        c.add(f"{op}_broadcast_inputs", op, {"a": ("N", 3, 4, 4), "b": ("N", 1, 4, 4)}, positive=positive)


def _activation_cases(c: _Catalogue) -> None:
    x2, x4 = {"x": ("N", 10)}, {"x": ("N", 3, 4, 4)}
    for op in ("Softmax", "LogSoftmax"):
        c.add(f"{op}_2d_axis-1", op, x2, fast=True, axis=-1)
        c.add(f"{op}_2d_axis1", op, x2, axis=1)
        for axis in (1, 2, 3, -1):
            c.add(f"{op}_4d_axis{axis}", op, x4, axis=axis)
        c.add(f"{op}_3d_axis2", op, {"x": ("N", 4, 6)}, axis=2)
    # Clip (opset 13): min and max are optional inputs; '' marks an absent one.
    for tag, lo, hi, fast in [("min_max", -0.5, 1.0, True), ("min_only", -0.5, None, False),
                              ("max_only", None, 0.7, False), ("neither", None, None, False),
                              ("relu6", 0.0, 6.0, False)]:
        inits = {k: np.array(v, dtype=np.float32) for k, v in (("lo", lo), ("hi", hi)) if v is not None}
        ins = ["x", "lo" if lo is not None else "", "hi" if hi is not None else ""]
        while ins[-1] == "":
            ins.pop()
        c.add(f"Clip_{tag}", "Clip", x2, inits, fast, node_inputs=ins)
    c.add("Clip_4d_min_max", "Clip", x4, {"lo": np.float32(-0.3), "hi": np.float32(0.4)}, node_inputs=["x", "lo", "hi"])
    for op in ("Relu", "Sigmoid", "Tanh"):
        c.add(f"{op}_2d", op, x2, fast=True)
        c.add(f"{op}_4d", op, x4)
    for tag, attrs, fast in [("default", {}, True), ("alpha0.5_beta0.3", {"alpha": 0.5, "beta": 0.3}, False)]:
        c.add(f"HardSigmoid_{tag}", "HardSigmoid", x2, fast=fast, **attrs)
    c.add("HardSigmoid_4d", "HardSigmoid", x4)
    for op, alphas in (("Elu", (None, 0.5)), ("LeakyRelu", (None, 0.2)), ("Selu", (None, 1.2))):
        for alpha in alphas:
            attrs = {} if alpha is None else {"alpha": alpha}
            c.add(f"{op}_{'default' if alpha is None else f'alpha{alpha}'}", op, x2, fast=alpha is None, **attrs)
        c.add(f"{op}_4d", op, x4)
    c.add("Selu_alpha_gamma", "Selu", x2, alpha=1.5, gamma=1.1)
    c.add("PRelu_scalar_slope", "PRelu", x2, {"slope": np.array([0.25], dtype=np.float32)}, fast=True)
    c.add("PRelu_feature_slope", "PRelu", x2, {"slope": np.abs(_w("PRelu_f", 10))})
    c.add("PRelu_channel_slope_4d", "PRelu", x4, {"slope": np.abs(_w("PRelu_c", 3, 1, 1))})
    c.add("Dropout_default", "Dropout", x2, fast=True)
    c.add("Dropout_ratio_4d", "Dropout", x4, {"ratio": np.array(0.3, dtype=np.float32)})
    c.add("Identity_2d", "Identity", x2, fast=True)
    c.add("Identity_4d", "Identity", x4)


def _resize_cases(c: _Catalogue) -> None:
    x4 = {"x": ("N", 3, 4, 5)}
    empty = np.array([], dtype=np.float32)
    up2 = np.array([1, 1, 2, 2], dtype=np.float32)
    for tag, scales, attrs, fast in [
        ("nearest_x2", up2, {"mode": "nearest"}, True),
        ("nearest_x2_asymmetric_floor", up2, {"mode": "nearest", "coordinate_transformation_mode": "asymmetric",
                                              "nearest_mode": "floor"}, False),
        ("nearest_x3x2", np.array([1, 1, 3, 2], dtype=np.float32), {"mode": "nearest"}, False),
        ("nearest_down0.5", np.array([1, 1, 0.5, 0.5], dtype=np.float32), {"mode": "nearest"}, False),
        ("linear_x2_half_pixel", up2, {"mode": "linear"}, True),
        ("linear_x2_align_corners", up2, {"mode": "linear", "coordinate_transformation_mode": "align_corners"}, False),
        ("linear_x2_asymmetric", up2, {"mode": "linear", "coordinate_transformation_mode": "asymmetric"}, False),
        ("linear_x2_pytorch_half_pixel", up2, {"mode": "linear",
                                               "coordinate_transformation_mode": "pytorch_half_pixel"}, False),
    ]:
        c.add(f"Resize_{tag}", "Resize", x4, {"roi": empty, "scales": scales}, fast, **attrs)
    c.add("Resize_nearest_sizes", "Resize", {"x": (1, 3, 4, 5)},
          {"roi": empty, "scales": empty, "sizes": np.array([1, 3, 8, 10], dtype=np.int64)}, mode="nearest")
    # Upsample: deprecated since opset 10, kept for models exported long ago (opset 9).
    for mode in ("nearest", "linear"):
        c.add(f"Upsample_{mode}_x2_opset9", "Upsample", x4, {"scales": up2}, opset=9, mode=mode)


def _conv_transpose_cases(c: _Catalogue) -> None:
    x2, x1 = {"x": ("N", 4, 5, 5)}, {"x": ("N", 4, 8)}
    for tag, x, k, attrs, fast in [
        ("k3_s1", x2, [3, 3], {}, True),
        ("k3_s2", x2, [3, 3], {"strides": [2, 2]}, False),
        ("k2_s2", x2, [2, 2], {"strides": [2, 2]}, False),
        ("k3_s2_pads1_outpad1", x2, [3, 3], {"strides": [2, 2], "pads": [1, 1, 1, 1], "output_padding": [1, 1]},
         False),
        ("k3_group2", x2, [3, 3], {"group": 2}, False),
        ("1d_k3_s2", x1, [3], {"strides": [2]}, False),
    ]:
        name = f"ConvTranspose_{tag}"
        group = attrs.get("group", 1)
        full = _conv_attrs(k, strides=attrs.get("strides"), pads=attrs.get("pads"), group=group)
        if "output_padding" in attrs:
            full["output_padding"] = attrs["output_padding"]
        inits = {"W": _w(name, 4, 6 // group, *k), "B": _w(name + "b", 6)}
        c.add(name, "ConvTranspose", x, inits, fast, **full)


def _batchnorm_cases(c: _Catalogue) -> None:
    for tag, x, ch, attrs, fast in [("4d", ("N", 3, 4, 4), 3, {}, True), ("2d", ("N", 6), 6, {}, False),
                                    ("3d", ("N", 4, 6), 4, {}, False), ("4d_eps0.1", ("N", 3, 4, 4), 3,
                                                                         {"epsilon": 0.1}, False)]:
        name = f"BatchNormalization_{tag}"
        r = _rng(name)
        inits = {"scale": (r.uniform(0.5, 1.5, ch)).astype(np.float32), "bias": _w(name + "b", ch),
                 "mean": _w(name + "m", ch), "var": r.uniform(0.5, 2.0, ch).astype(np.float32)}
        c.add(name, "BatchNormalization", {"x": x}, inits, fast, **attrs)


def _qdq_cases(c: _Catalogue) -> None:
    """QuantizeLinear -> DequantizeLinear pairs (a fake-quantized activation) and a QDQ Conv as ORT writes it."""
    def pair(name: str, x: dict, scale, zp, axis: int | None = None):
        def build() -> onnx.ModelProto:
            attrs = {} if axis is None else {"axis": axis}
            nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"], name="q0", **attrs),
                     helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"], name="dq0", **attrs)]
            return make_model(name, nodes, x, {"s": scale, "z": zp})
        return build

    x2, x4 = {"x": ("N", 10)}, {"x": ("N", 3, 4, 4)}
    c.add_case("QDQ_uint8_per_tensor", "QuantizeLinear/DequantizeLinear",
               pair("QDQ_uint8_per_tensor", x2, np.float32(0.02), np.uint8(128)), x2.values(), fast=True)
    c.add_case("QDQ_int8_symmetric", "QuantizeLinear/DequantizeLinear",
               pair("QDQ_int8_symmetric", x4, np.float32(0.025), np.int8(0)), x4.values())
    c.add_case("QDQ_int8_per_channel_axis1", "QuantizeLinear/DequantizeLinear",
               pair("QDQ_int8_per_channel_axis1", x4, np.array([0.02, 0.03, 0.025], dtype=np.float32),
                    np.zeros(3, dtype=np.int8), axis=1), x4.values())

    def qdq_conv() -> onnx.ModelProto:
        name = "QDQ_conv_int8_weights"
        w = _w(name, 6, 3, 3, 3)
        w_scale = np.float32(np.abs(w).max() / 127)
        wq = np.clip(np.round(w / w_scale), -127, 127).astype(np.int8)
        nodes = [helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"], name="qx"),
                 helper.make_node("DequantizeLinear", ["xq", "xs", "xz"], ["xd"], name="dqx"),
                 helper.make_node("DequantizeLinear", ["wq", "ws", "wz"], ["wd"], name="dqw"),
                 helper.make_node("Conv", ["xd", "wd"], ["y"], name="conv0", **_conv_attrs([3, 3], pads=[1] * 4))]
        return make_model(name, nodes, x4, {"xs": np.float32(0.03), "xz": np.int8(0), "wq": wq, "ws": w_scale,
                                            "wz": np.int8(0)})
    c.add_case("QDQ_conv_int8_weights", "QuantizeLinear/DequantizeLinear", qdq_conv, x4.values())


@lru_cache(maxsize=1)
def _all_cases() -> tuple[Case, ...]:
    c = _Catalogue()
    for add in (_conv_cases, _pool_cases, _shape_cases, _gemm_cases, _binary_cases, _activation_cases,
                _resize_cases, _conv_transpose_cases, _batchnorm_cases, _qdq_cases):
        add(c)
    cases = (*c.cases, *pattern_cases())
    names = [case.name for case in cases]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise ValueError(f"duplicate conformance case names: {sorted(dupes)}")
    return cases


def catalogue(fast: bool = False, ops: list[str] | None = None) -> list[Case]:
    """The cases, optionally only the fast slice and/or only some ops (by `Case.op`, case-insensitive)."""
    wanted = {o.lower() for o in ops} if ops else None
    return [c for c in _all_cases() if (not fast or c.fast) and (wanted is None or c.op.lower() in wanted)]


def by_name(name: str) -> Case:
    for case in _all_cases():
        if case.name == name:
            return case
    raise KeyError(f"no conformance case named {name!r}")
