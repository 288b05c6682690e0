"""`accelc report`: one self-contained HTML page for an artifact.

The page holds the graph summary, a per-layer table (op, shape, params, MACs, precision, sparsity,
error vs the float reference, fraction of values at the type's limits), PNG plots (per-layer error
with the first saturating layer marked; weight histograms with the fixed-point range of each layer's
weight type), the passes with their stats, the self-check, for fpga the cost estimate of
accelc.hls.cost and the multipliers, and optionally `accelc bench --json` results.
Plots are PNG files written next to the HTML (matplotlib, Agg) and referenced by relative path, so
the page opens from disk; all text is HTML-escaped, the CSS is inline.
"""

from __future__ import annotations

from .html import write_report

__all__ = ["write_report"]
