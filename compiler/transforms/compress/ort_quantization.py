"""Integer and half-precision variants of a float ONNX model for ONNX Runtime (onnxruntime.quantization).

Files in, files out: onnxruntime.quantization works on paths (it runs its own shape inference and
writes external data for large models), so each function takes a float ModelProto, works in a
temporary directory, and returns the new ModelProto.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx

CALIBRATION_METHODS = ("minmax", "entropy", "percentile")


class _ArrayReader:
    """onnxruntime's CalibrationDataReader over an in-memory array, one sample per call."""

    def __init__(self, input_name: str, data: np.ndarray) -> None:
        self._items = iter([{input_name: data[i : i + 1]} for i in range(len(data))])

    def get_next(self) -> dict | None:
        return next(self._items, None)

    def rewind(self) -> None:  # part of the CalibrationDataReader protocol; one pass is all we need
        pass


def _quiet():
    # onnxruntime.quantization logs a warning per un-preprocessed model and per op it skips.
    logging.getLogger("onnxruntime").setLevel(logging.ERROR)
    logging.getLogger("root").setLevel(logging.ERROR)


def int8_dynamic(model: onnx.ModelProto, op_types: Sequence[str] | None, exclude: Sequence[str],
                 per_channel: bool) -> onnx.ModelProto:
    """Weights int8, activations quantized on the fly (MatMulInteger/ConvInteger + DynamicQuantizeLinear)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    _quiet()
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "float.onnx", Path(tmp) / "int8.onnx"
        onnx.save(model, src)
        quantize_dynamic(src, dst, weight_type=QuantType.QInt8, per_channel=per_channel,
                         op_types_to_quantize=list(op_types) if op_types else None,
                         nodes_to_exclude=list(exclude))
        return onnx.load(str(dst))


def int8_static_qdq(model: onnx.ModelProto, calibration: np.ndarray, method: str, per_channel: bool,
                    exclude: Sequence[str], op_types: Sequence[str] | None = None) -> onnx.ModelProto:
    """QuantizeLinear/DequantizeLinear around int8 weights and activations, ranges from calibration data.

    QDQ (not QOperator) so the same graph runs on every execution provider: CUDA fuses QDQ where it
    has int8 kernels and runs the rest in float, instead of sending integer ops back to the CPU.
    """
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    _quiet()
    methods = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
               "percentile": CalibrationMethod.Percentile}
    with tempfile.TemporaryDirectory() as tmp:
        src, pre, dst = Path(tmp) / "float.onnx", Path(tmp) / "pre.onnx", Path(tmp) / "qdq.onnx"
        onnx.save(model, src)
        quant_pre_process(str(src), str(pre), skip_optimization=True)  # shape inference only: keep node names
        reader = _ArrayReader(model.graph.input[0].name, np.asarray(calibration, dtype=np.float32))
        # reduce_range (7-bit weights): ORT's fused int8 CPU kernels compute s8s8 as u8s8, whose pairwise
        # products saturate in int16 on CPUs without VNNI (measured: 16% of the output scale off on the
        # digits CNN); with 7-bit weights they cannot, so the fused kernels equal the QDQ graph.
        quantize_static(pre, dst, reader, quant_format=QuantFormat.QDQ, per_channel=per_channel, reduce_range=True,
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                        calibrate_method=methods[method], nodes_to_exclude=list(exclude),
                        op_types_to_quantize=list(op_types) if op_types else None,
                        extra_options={"ActivationSymmetric": False, "WeightSymmetric": True})
        return onnx.load(str(dst))


def fp16(model: onnx.ModelProto, keep_io_types: bool) -> onnx.ModelProto:
    """Half-precision weights and arithmetic; float32 inputs/outputs unless keep_io_types is False."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    return convert_float_to_float16(onnx.ModelProto.FromString(model.SerializeToString()),
                                    keep_io_types=keep_io_types, disable_shape_infer=False)
