"""accelc's operator conformance suite: single-node ONNX models (and a few multi-op patterns seen in real
models) compiled for fpga and cpu, and also fed to hls4ml's own ONNX frontend, each compared with ONNX Runtime.

`python -m accelc.tools.conformance [--full|--fast] [--jobs 2] [--json out.json] [--ops Conv,Clip]` prints the table.
Each case ends in one outcome class (run.CLASSES): matched, refused, self-check, wrong, crashed.
"""

from __future__ import annotations

from accelc.tools.conformance.case import Case
from accelc.tools.conformance.cases import catalogue
from accelc.tools.conformance.run import CLASSES, Outcome, run_cases

__all__ = ["CLASSES", "Case", "Outcome", "catalogue", "run_cases"]
