"""What the fpga lowering cannot take at the graph's edges, whatever its nodes are (accelc.hls.support asks).

- An input with no per-sample dims (rank 0 or 1: one scalar per sample): hls4ml's Input layer indexes the
  per-sample shape, which is then empty, and its conversion fails with an IndexError.
- A batch the model needs (free-batch kept the exported batch because an op depends on a sample's position in
  it: a per-position bias, a reduction over the batch axis, BatchNormalization in training mode, ...):
  accelc.hls.prepare sets the batch to 1 and the emulator computes one sample at a time, which cannot be that
  function. A kept batch of 1 is the same function at batch 1, so it is not refused here.
"""

from __future__ import annotations

import onnx_ir as ir

from accelc.errors import Unsupported
from accelc.spec import BatchNote


def edge_problems(model: ir.Model, target: str) -> list[Unsupported]:
    found = []
    for v in model.graph.inputs:
        if v.shape is not None and len(v.shape) < 2:
            found.append(Unsupported("Input", v.name, target, f"a rank-{len(v.shape)} input (no per-sample dims: "
                                     "hls4ml's Input layer needs at least one)", "give the input a feature axis, "
                                     "e.g. shape (N, 1)"))
    note = BatchNote.from_metadata(model.metadata_props)
    if note is not None and not note.free and note.exported > 1 and model.graph.inputs:
        found.append(Unsupported("Input", model.graph.inputs[0].name, target, f"the model needs its exported batch "
                                 f"of {note.exported} ({note.reason}); the {target} target computes one sample at a "
                                 "time", "export with a dynamic batch axis, or keep samples apart"))
    return found
