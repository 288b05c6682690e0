"""hls4ml extension layers that accelc needs and hls4ml lacks (today: ONNX ``LogSoftmax``).

Call ``register()`` before hls4ml parses a model (``config_from_onnx_model`` already parses it).
It is idempotent and thread-safe; hls4ml itself is imported only then, so importing this package is
cheap. ``SUPPORTED_BACKENDS`` names the hls4ml backends that get the layer (hls4ml's spelling, as
accepted by ``hls4ml.backends.get_backend``); other backends reject the op in hls4ml's flow, so
accelc's support checker should refuse LogSoftmax for them before lowering.
"""

from __future__ import annotations

import threading

# Vivado and Vitis share the C++ (Vitis runs Vivado's template flow too). Quartus/oneAPI/Catapult
# use other type libraries (ac_fixed) and stream types and would each need their own header.
SUPPORTED_BACKENDS: tuple[str, ...] = ("Vivado", "Vitis")
# ONNX ops that only these extensions lower (HardSigmoid's handler maps onto hls4ml's HardActivation, which
# only the Vivado/Vitis templates were checked with): the support check refuses them on other backends.
EXTENSION_OPS: frozenset[str] = frozenset({"LogSoftmax", "Clip", "HardSigmoid", "Resize", "Upsample"})

_lock = threading.Lock()


def register() -> None:
    """Register every extension layer with hls4ml for ``SUPPORTED_BACKENDS``; safe to call again."""
    from . import logsoftmax
    from .clip import register_clip
    from .hardsigmoid import register_hardsigmoid
    from .maxpool1d import register_maxpool1d
    from .resize import register_resize
    from .softmax import register_softmax

    with _lock:
        logsoftmax.register_logsoftmax(SUPPORTED_BACKENDS)
        register_clip(SUPPORTED_BACKENDS)
        register_hardsigmoid()
        register_resize()
        register_maxpool1d()
        register_softmax()


def registered_backends() -> tuple[str, ...]:
    """The backends of ``SUPPORTED_BACKENDS`` that have the extension layers registered right now."""
    from . import logsoftmax

    return logsoftmax.registered_backends(SUPPORTED_BACKENDS)


__all__ = ["EXTENSION_OPS", "SUPPORTED_BACKENDS", "register", "registered_backends"]
