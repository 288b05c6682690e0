"""Factorize a KxK convolution into a depthwise KxK conv (channel multiplier m) and a pointwise 1x1 conv.

For each input channel i the slice W[:, i] is a C_out x K matrix (K = kernel size); its rank-m
truncated SVD U S V^T is the best rank-m fit (Eckart-Young), so m depthwise filters sqrt(S) V^T and
the pointwise columns U sqrt(S) give the smallest reconstruction error any factorization with
multiplier m can have. Output channel i*m + r of the depthwise conv is the one ONNX's grouped conv
(group = C_in) computes from input channel i.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, numpy_helper


@dataclass
class Factorization:
    depthwise: np.ndarray  # [C_in*m, 1, *kernel]
    pointwise: np.ndarray  # [C_out, C_in*m, 1, ...]
    multiplier: int
    weight_error: float  # relative Frobenius error of the reconstructed weight


def factorize(weight: np.ndarray, m: int) -> Factorization:
    c_out, c_in, *kernel = weight.shape
    k = int(np.prod(kernel))
    w64 = weight.astype(np.float64)
    dw = np.zeros((c_in * m, k))
    pw = np.zeros((c_out, c_in * m))
    for i in range(c_in):
        u, s, vt = np.linalg.svd(w64[:, i].reshape(c_out, k), full_matrices=False)
        r = min(m, len(s))  # ranks beyond min(C_out, K) add nothing: leave those filters zero
        root = np.sqrt(s[:r])
        dw[i * m : i * m + r] = root[:, None] * vt[:r]
        pw[:, i * m : i * m + r] = u[:, :r] * root[None, :]
    recon = np.einsum("oim,imk->oik", pw.reshape(c_out, c_in, m), dw.reshape(c_in, m, k))
    err = float(np.linalg.norm(recon - w64.reshape(c_out, c_in, k)) / max(np.linalg.norm(w64), 1e-30))
    return Factorization(dw.reshape(c_in * m, 1, *kernel).astype(np.float32),
                         pw.reshape(c_out, c_in * m, *([1] * len(kernel))).astype(np.float32), m, err)


def macs_per_pixel(c_in: int, c_out: int, kernel_size: int, m: int | None) -> int:
    """MACs per output pixel: the standard conv (m=None) or its depthwise + pointwise factorization."""
    if m is None:
        return c_out * c_in * kernel_size
    return c_in * m * kernel_size + c_out * c_in * m


def _conv_model(x_shape: list[int], nodes: list, inits: list) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "conv", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, x_shape)],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def _run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x})[0]


def output_error(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, attrs: dict,
                 f: Factorization) -> float:
    """Relative RMS error ||y' - y|| / ||y|| of the factorized conv's output on inputs x (ONNX Runtime)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    shape = [None, *x.shape[1:]]
    b = [numpy_helper.from_array(bias.astype(np.float32), "b")] if bias is not None else []
    b_in = ["b"] if bias is not None else []
    original = _conv_model(shape, [helper.make_node("Conv", ["x", "w", *b_in], ["y"], **attrs)],
                           [numpy_helper.from_array(weight.astype(np.float32), "w"), *b])
    c_in = weight.shape[1]
    factored = _conv_model(shape, [
        helper.make_node("Conv", ["x", "dw"], ["t"], **{**attrs, "group": c_in}),
        helper.make_node("Conv", ["t", "pw", *b_in], ["y"]),
    ], [numpy_helper.from_array(f.depthwise, "dw"), numpy_helper.from_array(f.pointwise, "pw"), *b])
    y, y2 = _run(original, x).astype(np.float64), _run(factored, x).astype(np.float64)
    return float(np.linalg.norm(y2 - y) / max(np.linalg.norm(y), 1e-30))
