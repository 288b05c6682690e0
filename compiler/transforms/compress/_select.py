"""Naming layers in pass options: users write 'conv1' for the node 'conv1_Conv' or '/conv1/Conv'."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import onnx_ir as ir

from accelc.errors import PassError


def names_option(value: Any) -> list[str]:
    """'a;b|c' (CLI spec, where commas separate options) or a list (API) -> ['a', 'b', 'c']."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [p.strip() for p in value.replace("|", ";").split(";") if p.strip()]
    return [str(v) for v in value]


def ratios_option(value: Any, option: str) -> dict[str, float]:
    """'fc1:0.9;conv2:0.5' (CLI) or {'fc1': 0.9} (API) -> {'fc1': 0.9, 'conv2': 0.5}, each in [0, 1)."""
    if value is None or value == "":
        return {}
    items: Iterable[tuple[str, Any]]
    if isinstance(value, Mapping):
        items = value.items()
    else:
        items = []
        for part in names_option(value):
            key, sep, num = part.rpartition(":")
            if not sep:
                raise PassError(f"{option}: expected LAYER:VALUE items separated by ';', got {part!r}")
            items.append((key, num))
    out = {}
    for key, num in items:
        try:
            out[str(key)] = check_fraction(float(num), f"{option} {key}")
        except ValueError as e:
            raise PassError(f"{option}: {key}={num!r} is not a number") from e
    return out


def check_fraction(x: float, what: str) -> float:
    if not 0.0 <= x < 1.0:
        raise PassError(f"{what} must be in [0, 1), got {x}")
    return x


def node_matches(node: ir.Node, key: str) -> bool:
    """Exact node name, its module prefix ('conv1' ~ 'conv1_Conv'), a path part, or its weight's name."""
    name = node.name or ""
    if key in (name, *name.strip("/").split("/")) or name.startswith(key + "_"):
        return True
    w = node.inputs[1] if len(node.inputs) > 1 else None
    return w is not None and w.name in (key, f"{key}.weight")


def resolve(nodes: Iterable[ir.Node], keys: Iterable[str], option: str) -> dict[str, str]:
    """key -> the one node name it picks out; an unknown or ambiguous key is an error, not a silent no-op."""
    nodes = list(nodes)
    resolved = {}
    for key in keys:
        hits = [n.name for n in nodes if n.name == key] or [n.name for n in nodes if node_matches(n, key)]
        if not hits:
            known = ", ".join(n.name for n in nodes)
            raise PassError(f"{option}: no prunable layer named {key!r}; layers: {known}")
        if len(hits) > 1:
            raise PassError(f"{option}: {key!r} matches several layers ({', '.join(hits)}); use the full node name")
        resolved[key] = hits[0]
    return resolved
