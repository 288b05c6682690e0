"""ONNX Runtime session options, one place for the targets and for the passes that time what they built."""

from __future__ import annotations

import onnxruntime as ort


def session_options(threads: int | None = None, qdq_fusion: bool = True) -> ort.SessionOptions:
    """How a cpu/cuda artifact's session is set up (the quantize pass times its candidates with the same)."""
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3  # ORT's warnings about unused initializers etc. are noise for users
    if threads:
        opts.intra_op_num_threads = threads
    if not qdq_fusion:  # set by the ORT lowering when the fused int8 kernels disagree with the QDQ graph
        opts.add_session_config_entry("session.disable_quant_qdq", "1")
    return opts


def target_session_options(options: dict) -> ort.SessionOptions:
    """Session options for an artifact from its target options (threads, qdq_fusion)."""
    return session_options(options.get("threads"), bool(options.get("qdq_fusion", True)))
