"""The layout's cheap guards (tinygrad keeps one too): modules stay short, one registered pass per file, and
every pass lives in the layer of what it knows. The import contracts themselves run in `make lint`."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from accelc.passes import REGISTRY, load_passes

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 500


def test_no_module_is_over_500_lines() -> None:
    sizes = {p.relative_to(ROOT): len(p.read_text().splitlines())
             for d in ("compiler", "backends", "hls") for p in (ROOT / d).rglob("*.py")}
    assert sizes and not {p: n for p, n in sizes.items() if n > MAX_LINES}


def test_one_registered_pass_per_module() -> None:
    load_passes()
    modules = Counter(cls.__module__ for cls in REGISTRY.values())
    assert len(REGISTRY) >= 20
    assert {m: n for m, n in modules.items() if n > 1} == {}


def test_passes_live_in_the_layer_of_what_they_know() -> None:
    load_passes()
    homes = {name: cls.__module__.rsplit(".", 1)[0] for name, cls in REGISTRY.items()}
    allowed = {"accelc.transforms.canonical", "accelc.transforms.compress", "accelc.hls.legalize", "accelc.recovery"}
    assert set(homes.values()) <= allowed, homes
    assert homes["legalize-fpga"] == homes["explicit-pads"] == "accelc.hls.legalize"
    assert homes["canonicalize"] == "accelc.transforms.canonical"
    assert homes["quantize"] == homes["prune"] == "accelc.transforms.compress"
