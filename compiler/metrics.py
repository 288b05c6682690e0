"""Output-comparison metrics: how far one model's output is from a reference output.

A bottom-layer module (numpy only), so passes, transforms, check and tools can all use it.
"""

from __future__ import annotations

import numpy as np


def max_abs_err(ref: np.ndarray, out: np.ndarray) -> float:
    """The largest |out - ref|, in the arrays' own precision; 0.0 for empty arrays."""
    diff = np.asarray(out) - np.asarray(ref)
    return float(np.max(np.abs(diff))) if diff.size else 0.0


def compare(ref: np.ndarray, out: np.ndarray) -> tuple[float, float, float]:
    """max abs error, RMSE, cosine similarity of two same-size arrays (computed in float64)."""
    r = np.asarray(ref, dtype=np.float64).reshape(-1)
    o = np.asarray(out, dtype=np.float64).reshape(-1)
    diff = o - r
    denom = np.linalg.norm(r) * np.linalg.norm(o)
    cosine = float(np.dot(r, o) / denom) if denom > 0 else float(np.allclose(r, o))
    return max_abs_err(r, o), float(np.sqrt(np.mean(diff**2))), cosine


def is_classifier(y: np.ndarray) -> bool:
    """Whether `y` looks like a classifier's output: (N, classes) with more than one class."""
    return y.ndim == 2 and y.shape[1] > 1


def top1_agreement(ref: np.ndarray, out: np.ndarray) -> float:
    """The fraction of samples whose arg-max class is the same in `out` as in `ref` (both (N, classes))."""
    return float(np.mean(np.asarray(ref).argmax(1) == np.asarray(out).argmax(1)))


def accuracy(y: np.ndarray, labels: np.ndarray) -> float:
    """The fraction of samples whose arg-max class in `y` (N, classes) is their label."""
    return float(np.mean(np.asarray(y).argmax(1) == np.asarray(labels).reshape(-1)))
