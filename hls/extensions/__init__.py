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

_lock = threading.Lock()


def register() -> None:
    """Register every extension layer with hls4ml for ``SUPPORTED_BACKENDS``; safe to call again."""
    from . import logsoftmax

    with _lock:
        logsoftmax.register_logsoftmax(SUPPORTED_BACKENDS)


def registered_backends() -> tuple[str, ...]:
    """The backends of ``SUPPORTED_BACKENDS`` that have the extension layers registered right now."""
    from . import logsoftmax

    return logsoftmax.registered_backends(SUPPORTED_BACKENDS)


__all__ = ["SUPPORTED_BACKENDS", "register", "registered_backends"]
