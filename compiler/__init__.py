"""accelc: a model compiler for accelerators (ONNX Runtime cpu/cuda, hls4ml FPGA projects), verified."""

from __future__ import annotations

__version__ = "0.1.0"

from accelc.artifact import Artifact, load  # noqa: E402
from accelc.driver import compile  # noqa: E402
from accelc.errors import (  # noqa: E402
    AccelcError,
    ArtifactError,
    ModelLoadError,
    PassError,
    TargetUnavailableError,
    UnsupportedOpError,
    VerificationError,
)
from accelc.passes import REGISTRY, AccelcPass, PassContext, PassResult, Pipeline  # noqa: E402
from accelc.verify import FidelityReport, verify  # noqa: E402

__all__ = [
    "REGISTRY",
    "AccelcError",
    "AccelcPass",
    "Artifact",
    "ArtifactError",
    "FidelityReport",
    "ModelLoadError",
    "PassContext",
    "PassError",
    "PassResult",
    "Pipeline",
    "TargetUnavailableError",
    "UnsupportedOpError",
    "VerificationError",
    "__version__",
    "compile",
    "load",
    "verify",
]
