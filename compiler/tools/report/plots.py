"""The report's PNG plots (matplotlib, Agg, no pyplot): per-layer error (the first saturating layer marked) and
per-layer weight histograms."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from accelc.check.fidelity import percent

from .data import MAX_HISTOGRAMS


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _plot_errors(rows: list[dict], path: Path) -> bool:
    data = [r for r in rows if r["max_abs_err"] is not None]
    if not data:
        return False
    names = [r["layer"] for r in data]
    tiny = 1e-12
    fig = _figure(min(14.0, max(8.0, 3.0 + 0.55 * len(names))), 5.8)
    ax1, ax2 = fig.subplots(2, 1, sharex=True)
    x = np.arange(len(names))
    jumps = [i for i, r in enumerate(data) if r["jump"]]
    saturating = next((i for i, r in enumerate(data) if r.get("saturating")), None)
    for ax, key, label in ((ax1, "max_abs_err", "max |error|"), (ax2, "rel_err", "relative error")):
        y = np.array([max(r[key], tiny) for r in data])
        ax.plot(x, y, "-o", color="#0969da", markersize=5, linewidth=1.5)
        if jumps:
            ax.plot(x[jumps], y[jumps], "o", color="#cf222e", markersize=8, label="error jumps here")
        if saturating is not None:
            fraction = data[saturating]["saturated"] or 0.0
            ax.axvline(saturating, color="#bf8700", linestyle="--", linewidth=1.3,
                       label=f"first saturating layer ({percent(fraction)} of its values at its type's limits)")
        ax.set_yscale("log")
        lo, hi = float(y.min()), float(y.max())
        if hi / lo < 100:  # show at least two decades, so that small changes do not look dramatic
            mid = math.sqrt(lo * hi)
            lo, hi = min(lo, mid / 10), max(hi, mid * 10)
        ax.set_ylim(lo / 1.5, hi * 1.5)
        ax.set_ylabel(label)
        ax.grid(alpha=0.3, which="major")
    if jumps or saturating is not None:
        ax1.legend(fontsize=8, loc="upper left")
    ax2.set_xticks(x)
    ax2.set_xticklabels(names, rotation=35, ha="right", fontsize=8)
    ax1.set_title("per-layer error vs the float reference ("
                  "relative = max |error| / max |reference|)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, format="png")
    return True


def _plot_weights(layers: list[tuple[str, np.ndarray, str | None]], path: Path) -> list[dict]:
    """A histogram per weighted layer; fixed<W,I> bounds [-2^(I-1), 2^(I-1) - 2^-(W-I)] drawn where known."""
    from accelc.hls.cost import fixed_range

    layers = [entry for entry in layers if entry[1].size][:MAX_HISTOGRAMS]
    if not layers:
        return []
    cols = min(3, len(layers))
    nrows = math.ceil(len(layers) / cols)
    fig = _figure(4.2 * cols, 3.0 * nrows + 0.3)
    axes = np.atleast_1d(fig.subplots(nrows, cols)).reshape(-1)
    stats = []
    for ax, (name, w, wtype) in zip(axes, layers):
        bounds = fixed_range(wtype) if wtype else None
        lo, hi = float(w.min()), float(w.max())
        span = max(hi - lo, 1e-9)
        zeros = int(np.sum(w == 0))
        drawn = w[w != 0] if 0 < zeros < w.size else w  # pruned zeros would dwarf the rest: count them instead
        counts, _, _ = ax.hist(drawn, bins=60, color="#0969da", alpha=0.85)
        ax.set_ylim(0, max(float(counts.max()), 1.0) * 1.22)  # headroom for the notes at the top
        if drawn.size < w.size:
            ax.annotate(f"{zeros:,} zeros ({zeros / w.size:.0%}) not drawn", xy=(0.5, 0.92), xycoords="axes fraction",
                        ha="center", fontsize=8, color="#57606a")
        clipped = None
        if bounds:
            clipped = int(np.sum((w < bounds[0]) | (w > bounds[1])))
            view_lo, view_hi = min(lo, bounds[0]), max(hi, bounds[1])
            if view_hi - view_lo > 6 * span:  # a range much wider than the weights: keep the histogram readable
                view_lo, view_hi = lo - 0.5 * span, hi + 0.5 * span
            for b, side in zip(bounds, ("left", "right")):
                if view_lo <= b <= view_hi:
                    ax.axvline(b, color="#cf222e", linestyle="--", linewidth=1.2)
                else:  # the type's range reaches far beyond the weights: say where it ends
                    ax.annotate(f"← {b:.4g}" if side == "left" else f"{b:.4g} →", xy=(
                        0.02 if side == "left" else 0.98, 0.92), xycoords="axes fraction", ha=side, color="#cf222e",
                        fontsize=8)
            pad = 0.04 * (view_hi - view_lo)
            ax.set_xlim(view_lo - pad, view_hi + pad)
            ax.set_title(f"{name}\n{wtype}: [{bounds[0]:.6g}, {bounds[1]:.6g}]" + (
                f", {clipped} clipped" if clipped else ""), fontsize=8.5)
        else:
            ax.set_title(name, fontsize=8.5)
        ax.tick_params(labelsize=7)
        stats.append({"layer": name, "count": int(w.size), "min": lo, "max": hi, "type": wtype,
                      "range": bounds, "clipped": clipped, "zeros": zeros})
    for ax in axes[len(layers):]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, format="png")
    return stats
