"""hls4ml's own ONNX frontend, used the way its documentation tells a new user to (frontend/qonnx.html):
QONNX cleanup, channels-last, GemmToMatMul, one blanket precision, Vitis. The conformance suite measures it
beside accelc's lowering; accelc itself never lowers through this path.
"""

from __future__ import annotations

from pathlib import Path

import onnx

from accelc.hls.emulate import Emulator, build_emulator, emulator_meta


def hls4ml_prepare(model):
    """What hls4ml's documentation tells a new ONNX user to do (frontend/qonnx.html), with batch 1."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.channels_last import ConvertToChannelsLastAndClean
    from qonnx.transformation.gemm_to_matmul import GemmToMatMul
    from qonnx.util.cleanup import cleanup_model

    for vi in model.graph.input:
        dims = vi.type.tensor_type.shape.dim
        if dims and dims[0].dim_param:
            dims[0].Clear()
            dims[0].dim_value = 1
    wrapped = cleanup_model(ModelWrapper(model))
    wrapped = wrapped.transform(ConvertToChannelsLastAndClean())
    wrapped = wrapped.transform(GemmToMatMul())
    return cleanup_model(wrapped)


def convert_direct(model: onnx.ModelProto, project: Path, precision: str) -> dict:
    """Convert and write the hls4ml project as documented (io_stream for convolutions); returns the emulator's
    metadata. hls4ml raises bare Exceptions where it refuses a model."""
    import hls4ml

    model = hls4ml_prepare(model).model
    has_conv = any(n.op_type in ("Conv", "ConvTranspose") for n in model.graph.node)
    config = hls4ml.utils.config.config_from_onnx_model(model, granularity="name", backend="Vitis",
                                                        default_precision=precision)
    hls_model = hls4ml.converters.convert_from_onnx_model(
        model, output_dir=str(project), project_name="myproject", backend="Vitis", hls_config=config,
        io_type="io_stream" if has_conv else "io_parallel")
    hls_model.write()
    return emulator_meta(hls_model, {})


def build_direct(project: Path, meta: dict) -> Emulator:
    """The C simulation of a project convert_direct wrote, built like accelc's own (flags, cache)."""
    return Emulator(build_emulator(project).lib, meta)
