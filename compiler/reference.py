"""The float reference: the canonical model run by ONNX Runtime on CPU, optionally exposing every node's output."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort

from accelc.errors import AccelcError
from accelc.spec import BatchNote


def run_batched(session: ort.InferenceSession, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    """session.run, also for a model whose batch stayed fixed at export (canonicalization frees it unless an op
    mixes samples): a multiple of that batch runs chunk by chunk, any other number is refused saying why."""
    fixed = session.get_inputs()[0].shape[0]
    n = next(iter(feeds.values())).shape[0]
    if not isinstance(fixed, int) or fixed <= 0 or n == fixed:
        return session.run(None, feeds)
    if n % fixed:
        note = BatchNote.from_metadata(session.get_modelmeta().custom_metadata_map) or BatchNote(fixed, False)
        raise AccelcError(note.refusal(n) or f"the model was exported with a fixed batch of {fixed}; got {n} samples")
    parts = [session.run(None, {k: v[i : i + fixed] for k, v in feeds.items()}) for i in range(0, n, fixed)]
    return [np.concatenate([p[j] for p in parts]) for j in range(len(parts[0]))]


class Reference:
    """Runs a float ONNX model on CPU; `run_all` also returns every node's first output, by node name."""

    def __init__(self, model: onnx.ModelProto) -> None:
        self.model = model
        self._session = ort.InferenceSession(model.SerializeToString(), _options(), providers=["CPUExecutionProvider"])
        self._all: ort.InferenceSession | None = None
        self._node_outputs: dict[str, str] = {}

    @property
    def input_names(self) -> list[str]:
        return [i.name for i in self._session.get_inputs()]

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        feeds = {n: np.asarray(x, dtype=np.float32) for n, x in zip(self.input_names, inputs)}
        return run_batched(self._session, feeds)

    def run_all(self, inputs: list[np.ndarray]) -> dict[str, np.ndarray]:
        """node name -> that node's first output, for per-layer comparisons and range calibration."""
        if self._all is None:
            m = onnx.ModelProto.FromString(self.model.SerializeToString())
            existing = {o.name for o in m.graph.output}
            for node in m.graph.node:
                if node.output and node.output[0]:
                    self._node_outputs[node.name] = node.output[0]
                    if node.output[0] not in existing:
                        m.graph.output.append(onnx.ValueInfoProto(name=node.output[0]))
                        existing.add(node.output[0])
            # Without graph optimizations the intermediate values are exactly the unfused nodes' outputs.
            opts = _options()
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
            self._all = ort.InferenceSession(m.SerializeToString(), opts, providers=["CPUExecutionProvider"])
        feeds = {n: np.asarray(x, dtype=np.float32) for n, x in zip(self.input_names, inputs)}
        names = [o.name for o in self._all.get_outputs()]
        values = dict(zip(names, run_batched(self._all, feeds)))
        return {node: values[t] for node, t in self._node_outputs.items() if t in values}


def _options() -> ort.SessionOptions:
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    # The reference runs a QDQ graph as written (dequantize, float op, quantize): ORT's fused int8 kernels
    # are not exact on CPUs without VNNI (u8s8 products saturate in int16), and a reference must be.
    opts.add_session_config_entry("session.disable_quant_qdq", "1")
    return opts
