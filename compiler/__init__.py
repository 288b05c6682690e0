"""accelc: a model compiler for accelerators (ONNX Runtime cpu/cuda, hls4ml FPGA projects), verified.

Names are imported lazily (PEP 562) so that `accelc --help` and a cached compile start fast.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "compile": "accelc.driver",
    "finetune": "accelc.recovery.api",
    "load": "accelc.artifact",
    "Artifact": "accelc.artifact",
    "verify": "accelc.check.fidelity",
    "FidelityReport": "accelc.check.fidelity",
    "AccelcError": "accelc.errors",
    "AccelcWarning": "accelc.errors",
    "InputRangeWarning": "accelc.errors",
    "ArtifactError": "accelc.errors",
    "ModelLoadError": "accelc.errors",
    "PassError": "accelc.errors",
    "TargetUnavailableError": "accelc.errors",
    "UnsupportedOpError": "accelc.errors",
    "VerificationError": "accelc.errors",
    "REGISTRY": "accelc.passes",
    "AccelcPass": "accelc.passes",
    "PassContext": "accelc.passes",
    "PassResult": "accelc.passes",
    "Pipeline": "accelc.passes",
}

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'accelc' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
