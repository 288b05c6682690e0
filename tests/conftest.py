"""Shared fixtures: an isolated accelc cache per test session, and tiny seeded models."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


@pytest.fixture(scope="session", autouse=True)
def accelc_cache(tmp_path_factory) -> Path:
    """Every test session gets its own cache, so a cache hit is always one this session produced."""
    path = tmp_path_factory.getbasetemp() / "accelc-cache"
    os.environ["ACCELC_CACHE_DIR"] = str(path)
    return path
