"""The engine: an hls4ml project's layer calls executed in numpy, bit for bit as its C simulation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from accelc.hls.emulate import EMULATOR_META, check_input_sizes
from accelc.hls.engine.fixed import EXACT_BITS, EngineUnsupported, cast
from accelc.hls.engine.kernels import KERNELS
from accelc.hls.engine.project import Project

BATCH_CHUNK = 256  # samples per pass: bounds the im2col buffers of large images


class Engine:
    """Runs a written hls4ml project in numpy: NCHW arrays in, arrays out, optional per-layer trace."""

    description = "numpy engine (bit-exact with the C simulation)"

    def __init__(self, project_dir: Path, meta: dict | None = None) -> None:
        project_dir = Path(project_dir)
        self.meta = meta if meta is not None else json.loads((project_dir / EMULATOR_META).read_text())
        self.project = Project(project_dir)
        missing: dict[str, list[str]] = {}
        for call in self.project.calls:
            if call.function not in KERNELS:
                missing.setdefault(call.function, []).append(call.layer)
        for call in self.project.calls:  # every value the engine stores is a float64: at most 53 bits wide
            for name in call.template[:-1]:
                if name in self.project.typedefs and self.project.element_type(name).width > EXACT_BITS:
                    raise EngineUnsupported(f"{call.layer}: {name} is {self.project.element_type(name)}, wider "
                                            f"than the {EXACT_BITS} bits a float64 holds exactly")
        if missing:
            names = "; ".join(f"nnet::{f} ({', '.join(layers[:3])}{', ...' if len(layers) > 3 else ''})"
                              for f, layers in sorted(missing.items()))
            raise EngineUnsupported(f"the numpy engine does not implement {names}")
        self._input_types = [self.project.element_type(self._top_type(i["name"])) for i in self.meta["inputs"]]
        self._check_static()

    def _top_type(self, var: str) -> str:
        """The declared type of a top-level port (input_t / result_t), from the call that consumes/produces it."""
        for call in self.project.calls:
            if var in call.inputs:
                return call.template[call.inputs.index(var)]
            if var in call.outputs:
                return call.template[-2] if call.function != "clone_stream" else call.template[1]
        raise EngineUnsupported(f"no layer reads the model input {var}")

    def _check_static(self) -> None:
        """One zero sample through every layer: everything a layer refuses from its types and weights alone
        (saturating accumulators, widths beyond float64, shapes) is refused here, at load, not mid-run."""
        zeros = [np.zeros((1, int(np.prod(i["shape"]))), dtype=np.float32) for i in self.meta["inputs"]]
        self._forward(zeros, trace=False)

    def _forward(self, flat: list[np.ndarray], trace: bool) -> tuple[list[np.ndarray], dict[str, np.ndarray]]:
        values: dict[str, np.ndarray] = {}
        for spec, x, t in zip(self.meta["inputs"], flat, self._input_types):
            values[spec["name"]] = cast(x, t, from_double=True)  # the C wrapper: input_t(float)
        traced = {}
        for call in self.project.calls:
            try:
                args = [values[v] for v in call.inputs]
            except KeyError as e:
                raise EngineUnsupported(f"{call.layer}: input {e.args[0]} is computed by no earlier layer") from e
            outs = KERNELS[call.function](call, args)
            for name, y in zip(call.outputs, outs):
                values[name] = y
            if trace:
                for name in call.outputs:
                    if name in self.project.saved:
                        traced[self.project.saved[name]] = values[name]
        outs = [values[o["name"]] for o in self.meta["outputs"]]
        return outs, traced

    def _run(self, inputs: list[np.ndarray], trace: bool):
        n = check_input_sizes(inputs, self.meta, "the engine")
        outs_all: list[list[np.ndarray]] = [[] for _ in self.meta["outputs"]]
        traced_all: dict[str, list[np.ndarray]] = {}
        for start in range(0, n, BATCH_CHUNK):
            flat = [np.asarray(x[start:start + BATCH_CHUNK], dtype=np.float32).reshape(-1, spec["size"])
                    for x, spec in zip(inputs, self.meta["inputs"])]
            outs, traced = self._forward(flat, trace)
            for k, y in enumerate(outs):
                outs_all[k].append(y)
            for name, y in traced.items():
                traced_all.setdefault(name, []).append(y)
        # to float as the C wrapper does (ap_fixed::to_float rounds half to even, as numpy's float64 -> float32)
        outs = [np.concatenate(parts).astype(np.float32).reshape((n, *o["shape"]))
                for parts, o in zip(outs_all, self.meta["outputs"])]
        shapes = {layer["name"]: layer["shape"] for layer in self.meta["trace"]}
        traced_out = {name: np.concatenate(parts).astype(np.float32).reshape((n, *shapes[name]))
                      for name, parts in traced_all.items() if name in shapes}
        return outs, traced_out

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        return self._run(inputs, trace=False)[0]

    def trace(self, inputs: list[np.ndarray]) -> tuple[list[np.ndarray], dict[str, np.ndarray]]:
        """Outputs plus every traced layer's output (hls4ml layer name -> array, channels-last), as the C
        simulation's trace gives them."""
        return self._run(inputs, trace=True)
