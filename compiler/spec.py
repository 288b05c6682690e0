"""Descriptions of a model's inputs and outputs, shared by the frontend, the artifact and the CLI."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace

import numpy as np

from accelc.errors import ModelLoadError

# Model metadata key under which canonicalization records the input layouts it absorbed (absorb-input-layout):
# JSON {"inputs": {name: perm}}, perm as in TensorSpec.perm.
LAYOUT_KEY = "accelc.source_layout"


@dataclass(frozen=True)
class TensorSpec:
    """One graph input or output: name, static shape (batch first), dtype and layout.

    `shape` and `layout` are the source model's (NHWC for a Keras model): the API and the CLI take and return
    arrays in them. `perm` is set when the compiled graph holds the tensor in another axis order (an NHWC
    input whose layout Transpose canonicalization absorbed): graph array = source array.transpose(perm)."""

    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"
    layout: str = "NCHW"  # the source model's layout; the API never exposes hls4ml's channels-last
    perm: tuple[int, ...] | None = None

    @property
    def graph_shape(self) -> tuple[int, ...]:
        return self.shape if self.perm is None else tuple(self.shape[i] for i in self.perm)

    def to_graph(self, array: np.ndarray) -> np.ndarray:
        """A (batch of) source-layout array(s) in the graph's axis order."""
        return array if self.perm is None else np.ascontiguousarray(np.transpose(array, self.perm))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["shape"] = list(self.shape)
        if self.perm is None:
            del d["perm"]
        else:
            d["perm"] = list(self.perm)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TensorSpec:
        perm = tuple(int(x) for x in d["perm"]) if d.get("perm") is not None else None
        return cls(d["name"], tuple(int(x) for x in d["shape"]), d.get("dtype", "float32"), d.get("layout", "NCHW"),
                   perm)


def with_absorbed_layouts(specs: list[TensorSpec], metadata: dict[str, str]) -> list[TensorSpec]:
    """The input specs with the permutations canonicalization recorded under LAYOUT_KEY in the model's metadata."""
    perms = json.loads(metadata.get(LAYOUT_KEY, "{}")).get("inputs", {})
    return [replace(s, perm=tuple(perms[s.name])) if s.name in perms else s for s in specs]


# Model metadata key under which canonicalization (free-batch) notes what became of a batch size baked into the
# model at export: JSON BatchNote.to_dict().
BATCH_KEY = "accelc.batch"


@dataclass(frozen=True)
class BatchNote:
    """A batch size baked into the model at export: freed (any number of samples runs), or kept because an op
    needs it (`reason` names that node); a kept batch still runs a multiple of it, chunk by chunk."""

    exported: int
    free: bool
    reason: str = ""

    def to_dict(self) -> dict:
        d = {"exported": self.exported, "free": self.free}
        return {**d, "reason": self.reason} if self.reason else d

    @classmethod
    def from_dict(cls, d: dict | None) -> BatchNote | None:
        return cls(int(d["exported"]), bool(d["free"]), str(d.get("reason", ""))) if d else None

    @classmethod
    def from_metadata(cls, metadata: dict[str, str]) -> BatchNote | None:
        text = metadata.get(BATCH_KEY)
        return cls.from_dict(json.loads(text)) if text else None

    def refusal(self, samples: int) -> str | None:
        """Why `samples` samples cannot run, or None when they can."""
        if self.free or samples % self.exported == 0:
            return None
        why = f", which it needs: {self.reason}" if self.reason else ""
        return (f"the model was exported with a fixed batch of {self.exported}{why}; got {samples} samples "
                f"(pass a multiple of {self.exported})")

def layout_for_rank(rank: int) -> str:
    """The conventional layout name of a torch/ONNX tensor of this rank."""
    return {1: "C", 2: "NC", 3: "NCW", 4: "NCHW", 5: "NCDHW"}.get(rank, f"rank{rank}")


def channels_last_layout(rank: int) -> str:
    """The layout name of a channels-last (Keras, TensorFlow) tensor of this rank."""
    return {1: "C", 2: "NC", 3: "NWC", 4: "NHWC", 5: "NDHWC"}.get(rank, f"rank{rank}")


def parse_shape(text: str) -> tuple[int, ...]:
    """Parse a CLI shape such as "1,1,28,28" (or "1x1x28x28") into a tuple of positive ints."""
    try:
        shape = tuple(int(p) for p in str(text).strip("()[] ").replace("x", ",").split(","))
    except ValueError:
        shape = ()
    if not shape or min(shape) <= 0:
        raise ModelLoadError(f"invalid input shape '{text}': expected positive integers like 1,1,28,28")
    return shape
