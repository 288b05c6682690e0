"""Where accelc keeps its caches (built emulators, finished artifacts): $ACCELC_CACHE_DIR or ~/.cache/accelc."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    return Path(os.environ.get("ACCELC_CACHE_DIR", Path.home() / ".cache" / "accelc"))
