"""Passes by name: the list the CLI (`--pass prune:sparsity=0.5`), the API and the tests share."""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

from accelc.errors import PassError
from accelc.passes.base import AccelcPass, PassContext

ENTRY_POINT_GROUP = "accelc.passes"
_LOADED = False

REGISTRY: dict[str, type[AccelcPass]] = {}


def register(cls: type[AccelcPass]) -> type[AccelcPass]:
    """Class decorator: make a pass reachable by name from the CLI, the API and the tests."""
    if not cls.name:
        raise TypeError(f"{cls.__name__} has no name")
    REGISTRY[cls.name] = cls
    return cls


def _parse_value(text: str) -> Any:
    low = text.lower()
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def parse_pass_spec(spec: str) -> tuple[str, dict]:
    """'prune:sparsity=0.5,scope=global' -> ('prune', {'sparsity': 0.5, 'scope': 'global'})."""
    name, _, rest = spec.partition(":")
    options: dict[str, Any] = {}
    for item in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = item.partition("=")
        if not eq:
            # A bare value is the pass's main option, e.g. 'quantize:int8' -> mode=int8.
            options["mode"] = _parse_value(key)
        else:
            options[key.strip()] = _parse_value(value.strip())
    return name.strip(), options


def create_pass(spec: str | AccelcPass, context: PassContext | None = None) -> AccelcPass:
    """Build a pass from its registry spec; a ready Pass object is returned as is."""
    if isinstance(spec, AccelcPass):
        return spec
    load_passes()
    name, options = parse_pass_spec(spec)
    if name not in REGISTRY:
        known = ", ".join(sorted(REGISTRY))
        raise PassError(f"unknown pass '{name}'; known passes: {known}")
    try:
        return REGISTRY[name](context, **options)
    except TypeError as e:
        raise PassError(f"bad options for pass '{name}': {e}") from e


def load_passes() -> None:
    """Import the modules that define passes, as named by the `accelc.passes` entry points (pyproject.toml).

    Passes live in the layer of what they know (canonical and compression passes in accelc.transforms, the fpga
    rewrites in accelc.hls.legalize, recover with the training code in accelc.finetune); the registry sits below
    all of them, so it finds them the way plugins are found, never by importing upwards. A third-party package
    adds passes the same way."""
    global _LOADED
    if _LOADED:
        return
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        entry.load()
    _LOADED = True
