"""Every kernel the engine has, registered (accelc.hls.engine.registry.KERNELS)."""

from accelc.hls.engine import activations, layers, softmax  # noqa: F401 - each registers its kernels
from accelc.hls.engine.registry import KERNELS

__all__ = ["KERNELS"]
