"""Typed errors. Each carries enough context (what, where, what to do) for a one-line CLI message."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Unsupported:
    """One node a target cannot lower correctly, and what the user can do about it."""

    op: str
    node: str
    target: str
    reason: str
    hint: str = ""

    def __str__(self) -> str:
        text = f"{self.op} node '{self.node}' on {self.target}: {self.reason}"
        return f"{text} (hint: {self.hint})" if self.hint else text

    def to_dict(self) -> dict:
        return asdict(self)


class AccelcError(Exception):
    """Base of every error accelc raises on purpose; the CLI prints it as one line, exit code 2."""

    exit_code = 2


class ModelLoadError(AccelcError):
    """The model file is missing, corrupt, of the wrong kind, or lacks what compilation needs."""


class UnsupportedOpError(AccelcError):
    """One or more nodes cannot be lowered to the chosen target (all of them are listed)."""

    def __init__(self, target: str, unsupported: list) -> None:
        self.target = target
        self.unsupported = list(unsupported)
        lines = "; ".join(str(u) for u in self.unsupported)
        super().__init__(f"{len(self.unsupported)} node(s) cannot be lowered to target '{target}': {lines}")


class PassError(AccelcError):
    """A pass failed or broke its contract; names the pass (and node where known)."""


class TargetUnavailableError(AccelcError):
    """The target's runtime (e.g. ONNX Runtime's CUDA provider) is not installed on this machine."""


class VerificationError(AccelcError):
    """The artifact disagrees with the float reference beyond what its precision explains."""

    exit_code = 1


class ArtifactError(AccelcError):
    """An artifact directory is missing, incomplete or was written by an incompatible version."""
