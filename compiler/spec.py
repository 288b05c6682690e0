"""Descriptions of a model's inputs and outputs, shared by the frontend, the artifact and the CLI."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from accelc.errors import ModelLoadError


@dataclass(frozen=True)
class TensorSpec:
    """One graph input or output: name, static shape (batch first), dtype and layout."""

    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"
    layout: str = "NCHW"  # the source model's layout; the API never exposes hls4ml's channels-last

    def to_dict(self) -> dict:
        d = asdict(self)
        d["shape"] = list(self.shape)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TensorSpec:
        return cls(d["name"], tuple(int(x) for x in d["shape"]), d.get("dtype", "float32"), d.get("layout", "NCHW"))


def layout_for_rank(rank: int) -> str:
    """The conventional layout name of a torch/ONNX tensor of this rank."""
    return {1: "C", 2: "NC", 3: "NCW", 4: "NCHW", 5: "NCDHW"}.get(rank, f"rank{rank}")


def parse_shape(text: str) -> tuple[int, ...]:
    """Parse a CLI shape such as "1,1,28,28" (or "1x1x28x28") into a tuple of positive ints."""
    try:
        shape = tuple(int(p) for p in str(text).strip("()[] ").replace("x", ",").split(","))
    except ValueError:
        shape = ()
    if not shape or min(shape) <= 0:
        raise ModelLoadError(f"invalid input shape '{text}': expected positive integers like 1,1,28,28")
    return shape
