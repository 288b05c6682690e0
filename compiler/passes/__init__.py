"""The pass framework: accelc passes are onnx-ir passes that also report stats and warnings.

A pass is constructed with its options (and a PassContext when it needs data or the target), then
called on an `ir.Model`. The Pipeline runs passes one at a time and keeps every result's stats,
which onnx-ir's `Sequential` would drop. base: what a pass is; registry: passes by name; pipeline: running them.
"""

from accelc.passes.base import AccelcPass, NewModelPass, PassContext, PassResult
from accelc.passes.pipeline import PassRecord, Pipeline, apply_passes, run_passes
from accelc.passes.registry import REGISTRY, create_pass, load_passes, parse_pass_spec, register

__all__ = ["REGISTRY", "AccelcPass", "NewModelPass", "PassContext", "PassRecord", "PassResult", "Pipeline",
           "apply_passes", "create_pass", "load_passes", "parse_pass_spec", "register", "run_passes"]
