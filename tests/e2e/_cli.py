"""How the e2e tests reach the `accelc` command line."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path


def accelc_command() -> list[str]:
    """The installed console script of this interpreter's environment, else `python -m accelc.tools.cli`."""
    script = Path(sys.executable).parent / "accelc"
    if script.is_file():
        return [str(script)]
    found = shutil.which("accelc")
    return [found] if found else [sys.executable, "-m", "accelc.tools.cli"]
