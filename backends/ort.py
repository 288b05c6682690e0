"""cpu and cuda targets: the graph as is, run by ONNX Runtime's CPU or CUDA execution provider."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnx_ir as ir
import onnxruntime as ort

from accelc.backends.base import Unsupported
from accelc.errors import TargetUnavailableError
from accelc.frontend.qonnx_functions import FUNCTION_DOMAIN
from accelc.reference import Reference, run_batched
from accelc.sessions import session_options, target_session_options  # noqa: F401 - re-exported
from accelc.transforms.rewrite import const_array

log = logging.getLogger("accelc")

# Domains ONNX Runtime implements kernels for.
_ORT_DOMAINS = {"", "ai.onnx", "com.microsoft", "ai.onnx.ml"}
CUDA_INSTALL_HINT = (
    "install the GPU build of ONNX Runtime (pip install onnxruntime-gpu, i.e. accelc[cuda]) with CUDA 12 and "
    "cuDNN 9 on a machine with an NVIDIA GPU, or pass --allow-fallback (API: allow_fallback=True) to run on CPU"
)


@dataclass
class OrtRunner:
    """An ONNX Runtime session over an artifact's model.onnx."""

    session: ort.InferenceSession
    description: str

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        feeds = {i.name: np.ascontiguousarray(x, dtype=np.float32) for i, x in zip(self.session.get_inputs(), inputs)}
        return [np.asarray(y) for y in run_batched(self.session, feeds)]


def ort_supports(model: ir.Model, target: str) -> list[Unsupported]:
    """Nodes outside the domains/ops ONNX Runtime implements."""
    opset = model.opset_imports.get("", 13)
    found = []
    functions = {(f.domain, f.name) for f in model.functions.values()}
    for node in model.graph:
        if (node.domain, node.op_type) in functions and node.domain == FUNCTION_DOMAIN:
            continue  # accelc's QONNX quantizers, model-local functions of standard ops that ONNX Runtime inlines
        if node.domain not in _ORT_DOMAINS:
            found.append(Unsupported(node.op_type, node.name or "?", target, f"custom domain '{node.domain}'",
                                     "ONNX Runtime has no kernel for it; export with standard ONNX ops"))
            continue
        if node.domain in ("", "ai.onnx"):
            try:
                onnx.defs.get_schema(node.op_type, opset, "")
            except onnx.defs.SchemaError:
                found.append(Unsupported(node.op_type, node.name or "?", target,
                                         f"not an ONNX operator at opset {opset}", "check the exporter's opset"))
    return found


class CpuTarget:
    name = "cpu"
    provider = "CPUExecutionProvider"

    def legalize(self, model: ir.Model, context=None) -> tuple[ir.Model, list]:
        return model, []  # ONNX Runtime runs every standard op as written

    def supports(self, model: ir.Model, options: dict | None = None) -> list[Unsupported]:
        return ort_supports(model, self.name)

    def lower(self, model: ir.Model, options: dict, out_dir: Path, calibration=None) -> dict:
        # The artifact's model.onnx is what runs; creating a session here proves ORT accepts it.
        section = qdq_fusion_section(self, model, options, out_dir, calibration)
        runner = self._session(out_dir / "model.onnx", section.get("options", options))
        return {"providers": runner.session.get_providers(), "onnxruntime": ort.__version__, **section}

    def runner(self, artifact_dir: Path, manifest: dict, engine: str = "auto") -> OrtRunner:  # noqa: ARG002 - fpga's
        return self._session(artifact_dir / "model.onnx", manifest["target"].get("options", {}))

    def _session(self, path: Path, options: dict) -> OrtRunner:
        sess = ort.InferenceSession(str(path), target_session_options(options), providers=[self.provider])
        return OrtRunner(sess, f"ONNX Runtime {ort.__version__} ({self.provider})")


class CudaTarget(CpuTarget):
    name = "cuda"
    provider = "CUDAExecutionProvider"

    def lower(self, model: ir.Model, options: dict, out_dir: Path, calibration=None) -> dict:
        section = qdq_fusion_section(self, model, options, out_dir, calibration)
        runner = self._session(out_dir / "model.onnx", section.get("options", options))
        providers = runner.session.get_providers()
        return {"providers": providers, "onnxruntime": ort.__version__, "fallback": providers[0] != self.provider,
                **section}

    def _session(self, path: Path, options: dict) -> OrtRunner:
        allow_fallback = bool(options.get("allow_fallback"))
        available = ort.get_available_providers()
        if self.provider not in available:
            if not allow_fallback:
                raise TargetUnavailableError(
                    f"target 'cuda' needs ONNX Runtime's {self.provider}, but onnxruntime {ort.__version__} here "
                    f"offers only {', '.join(available)}; {CUDA_INSTALL_HINT}"
                )
            _warn_once(f"cuda: {self.provider} is not available; running on CPUExecutionProvider (--allow-fallback)")
            return _cpu_fallback(path, options)
        sess = ort.InferenceSession(
            str(path), target_session_options(options), providers=[self.provider, "CPUExecutionProvider"]
        )
        # ORT silently drops to CPU when the CUDA libraries fail to load: check what the session really got.
        if sess.get_providers()[0] != self.provider:
            if not allow_fallback:
                raise TargetUnavailableError(
                    f"target 'cuda': {self.provider} is installed but failed to initialise (CUDA/cuDNN libraries "
                    f"missing or no GPU); session providers: {sess.get_providers()}; {CUDA_INSTALL_HINT}"
                )
            _warn_once(f"cuda: {self.provider} failed to initialise; running on CPU (--allow-fallback)")
        return OrtRunner(sess, f"ONNX Runtime {ort.__version__} ({sess.get_providers()[0]})")


# The QDQ-fusion check. ONNX Runtime fuses DequantizeLinear -> Gemm/Conv -> QuantizeLinear into int8 kernels
# (QGemm, QLinearConv) that are not exact everywhere: they round a float bias to the int32 grid of s_x * s_w (up to
# half a step of the product: a value just above a rounding boundary lands one output step lower, ~1 % of rows on
# a Brevitas MLP), and without VNNI u8s8 products saturate in int16. The bias case is read off the graph; the rest
# is measured: the fused session against the graph as written, on every calibration row (up to 256) or 64 seeded
# rows — 8 rows once missed a 1-in-100 flip.
QDQ_CHECK_SAMPLES = 256
QDQ_RANDOM_SAMPLES = 64
QDQ_CHECK_SEED = 1234
QDQ_CHECK_RTOL = 1e-4
BIAS_GRID_TOL = 1e-3  # of one int32 step: a bias the quantizer put on the grid is on it to float rounding
QDQ_UNFUSED_WARNING = (
    "ONNX Runtime's fused int8 kernels would not be exact here ({why}); the artifact runs QDQ unfused: exact, but "
    "without the int8 speed-up. Quantize biases to int32 (onnxruntime's quantizer does) or re-quantize with "
    "reduce_range=True (7-bit weights) to keep the fused kernels.")


def qdq_fusion_section(target: CpuTarget, model: ir.Model, options: dict, out_dir: Path,
                       calibration: list[np.ndarray] | None) -> dict:
    """For a QDQ graph, whether the fused kernels compute what the graph as written computes (accelc's reference
    runs that): where not, the artifact runs unfused; returns the target options to keep and the warning."""
    if options.get("qdq_fusion") is False or not any(n.op_type == "QuantizeLinear" for n in model.graph):
        return {}
    off_grid = _float_bias_off_grid(model)
    if off_grid:
        why = (f"the float bias of {', '.join(off_grid[:3])}{' ...' if len(off_grid) > 3 else ''} is off the "
               "int32 grid of input scale x weight scale, which the fused kernels round it to")
    else:
        path = out_dir / "model.onnx"
        x = _check_inputs(model, calibration)
        fused = target._session(path, options).run(x)
        exact = Reference(onnx.load(str(path))).run(x)
        err = max((float(np.max(np.abs(f.astype(np.float64) - e))) if e.size else 0.0 for f, e in zip(fused, exact)),
                  default=0.0)
        scale = max([1.0, *(float(np.max(np.abs(e))) for e in exact if e.size)])
        if err <= QDQ_CHECK_RTOL * scale:
            return {}
        why = f"they were {err:.3g} off the QDQ graph on {len(x[0])} inputs on this machine"
    warning = QDQ_UNFUSED_WARNING.format(why=why)  # the driver passes it on (manifest, Python warning)
    return {"options": {**options, "qdq_fusion": False}, "warnings": [warning]}


def _dq_scale(value: ir.Value | None) -> np.ndarray | None:
    node = value.producer() if value is not None else None
    if node is None or node.op_type != "DequantizeLinear":
        return None
    return const_array(node.inputs[1])


def _float_bias_off_grid(model: ir.Model) -> list[str]:
    """Gemm/Conv nodes reading dequantized input and weight with a float constant bias that is not a multiple of
    s_x * s_w (per output channel for per-channel weights)."""
    found = []
    for node in model.graph:
        if node.op_type not in ("Gemm", "Conv") or len(node.inputs) < 3:
            continue
        sx, sw, bias = _dq_scale(node.inputs[0]), _dq_scale(node.inputs[1]), const_array(node.inputs[2])
        if sx is None or sw is None or bias is None or not np.issubdtype(bias.dtype, np.floating):
            continue
        step = np.float64(sx.reshape(-1)[0]) * sw.astype(np.float64).reshape(-1)
        units = bias.astype(np.float64).reshape(-1) / (step if step.size in (1, bias.size) else step[0])
        if np.any(np.abs(units - np.round(units)) > BIAS_GRID_TOL):
            found.append(f"{node.op_type} '{node.name}'")
    return found


def _check_inputs(model: ir.Model, calibration: list[np.ndarray] | None) -> list[np.ndarray]:
    if calibration is not None:
        return [np.asarray(c, dtype=np.float32)[:QDQ_CHECK_SAMPLES] for c in calibration]
    rng = np.random.default_rng(QDQ_CHECK_SEED)
    shapes = [[d if isinstance(d, int) else 1 for d in v.shape.dims[1:]] for v in model.graph.inputs]
    return [rng.standard_normal((QDQ_RANDOM_SAMPLES, *s)).astype(np.float32) for s in shapes]


_warned: set[str] = set()


def _warn_once(message: str) -> None:
    # Every session creation would repeat it (lowering, self-check, verify): once per process is enough.
    if message not in _warned:
        _warned.add(message)
        log.warning(message)


def _cpu_fallback(path: Path, options: dict) -> OrtRunner:
    sess = ort.InferenceSession(str(path), target_session_options(options), providers=["CPUExecutionProvider"])
    return OrtRunner(sess, f"ONNX Runtime {ort.__version__} (CPUExecutionProvider, fallback from CUDA)")
