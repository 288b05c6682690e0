"""Read back what hls4ml wrote: the layer calls of firmware/myproject.cpp in order, each with its config struct
(parameters.h), its types (defines.h and the config's typedefs) and its weights (firmware/weights/*.txt, the
files the C simulation loads). The engine runs exactly this, not hls4ml's in-memory model: the written project
is the artifact, and types or layouts that hls4ml's optimizers change on the way to the files are read as
written."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from accelc.hls.cost import CALL_LINE, _eval, split_args  # noqa: F401 - the reader cost.py uses too; split_args re-exported
from accelc.hls.engine.fixed import EngineUnsupported, FixedType, parse_type

_STRUCT = re.compile(r"^struct (?P<name>\w+)(?: : (?P<base>[\w:]+))? \{(?P<body>.*?)^\};", re.S | re.M)
_FIELD = re.compile(r"static (?:const|constexpr) ([\w:<>* ]+?)\s*(?:const\s+)?(\w+)\s*=\s*([^;]+);")
_DECL_ONLY = re.compile(r"static const unsigned\* const (\w+);")
_TYPEDEF = re.compile(r"typedef\s+([^;]+?)\s+(\w+);")
_USING = re.compile(r"using (\w+) = ([^;]+);")
_C_ARRAY = re.compile(r"^(?:const )?unsigned (\w+)\[\d*\] = \{([^}]*)\};", re.M)
_LOAD = re.compile(r'nnet::load_weights_from_txt<(?P<type>\w+),\s*(?P<size>\d+)>\((?P<name>\w+),\s*"(?P<file>[^"]+)"\)')
_ALIAS = re.compile(r"auto& (\w+) = (\w+);")
_SAVE = re.compile(r'nnet::save_layer_output<\w+>\((\w+), "([^"]+)"')
_NUMBER = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?[fFlL]?$")
_ARRAY_T = re.compile(r"^nnet::array<\s*(.+?)\s*,\s*([^<>]+)>$")


@dataclass
class Config:
    """One config struct: integer fields, other fields as written, its typedefs (resolved) and nested configs."""

    name: str
    base: str
    ints: dict[str, int] = field(default_factory=dict)
    raw: dict[str, str] = field(default_factory=dict)
    types: dict[str, str] = field(default_factory=dict)  # alias -> type text as declared
    usings: dict[str, str] = field(default_factory=dict)
    arrays: dict[str, list[int]] = field(default_factory=dict)

    def __getitem__(self, key: str) -> int:
        if key not in self.ints:
            raise EngineUnsupported(f"config {self.name} has no integer field {key!r}")
        return self.ints[key]

    def get(self, key: str, default: int | None = None) -> int | None:
        return self.ints.get(key, default)


@dataclass
class Call:
    """One layer as myproject.cpp runs it."""

    layer: str
    function: str
    template: list[str]  # template arguments (type names, the config last)
    inputs: list[str]
    outputs: list[str]
    weights: list[str]
    config: Config | None
    literals: list[str] = field(default_factory=list)  # numeric arguments (leaky_relu's alpha, ...), as written
    project: Project = field(repr=False, default=None)
    cache: dict = field(repr=False, default_factory=dict)  # weights in the layout a kernel computes with

    def type(self, name: str) -> FixedType:
        """A type by its defines.h name (stream element types unwrapped)."""
        return self.project.element_type(name)

    def config_type(self, alias: str, config: Config | None = None) -> FixedType:
        cfg = config or self.config
        if cfg is None or alias not in cfg.types:
            raise EngineUnsupported(f"{self.layer}: config has no type {alias!r}")
        return self.project.element_type(cfg.types[alias])

    def nested(self, alias: str) -> Config:
        cfg = self.config
        name = cfg.types.get(alias) if cfg else None
        if name is None or name not in self.project.configs:
            raise EngineUnsupported(f"{self.layer}: config has no nested config {alias!r}")
        return self.project.configs[name]

    def weight(self, i: int) -> tuple[np.ndarray, FixedType]:
        return self.project.weight(self.weights[i])


class Project:
    """An hls4ml project directory as the C simulation builds it."""

    def __init__(self, project_dir: Path) -> None:
        fw = Path(project_dir) / "firmware"
        self.dir = fw
        defines = (fw / "defines.h").read_text()
        params = self.parameters = (fw / "parameters.h").read_text()
        top = (fw / "myproject.cpp").read_text()
        self.typedefs = {name: decl.strip() for decl, name in _TYPEDEF.findall(defines)}
        self.configs = _read_configs(params)
        self.loads = {m["name"]: (m["type"], int(m["size"]), m["file"]) for m in _LOAD.finditer(top)}
        aliases = dict(_ALIAS.findall(top))
        self.saved = {var: layer for var, layer in _SAVE.findall(top)}
        self.calls = [self._call(m, aliases) for m in CALL_LINE.finditer(top)]
        self._weights: dict[str, tuple[np.ndarray, FixedType]] = {}
        self._types: dict[str, FixedType] = {}

    def _call(self, m: re.Match, aliases: dict[str, str]) -> Call:
        func = m["func"]
        template = split_args(m["targs"])
        args = [aliases.get(a, a) for a in split_args(m["args"])]
        weights = [a for a in args if a in self.loads]
        # leaky_relu/elu/thresholded_relu take their parameter as a literal argument: a number, not an array
        data = [a for a in args if a not in self.loads and not _NUMBER.match(a)]
        if func == "clone_stream":
            ins, outs = data[:1], data[1:]
        else:
            ins, outs = data[:-1], data[-1:]
        config = self.configs.get(template[-1]) if template else None
        literals = [a for a in args if _NUMBER.match(a)]
        return Call(m["layer"], func, template, ins, outs, weights, config, literals=literals, project=self)

    def declaration(self, name: str) -> str:
        """What a type name stands for, typedef chains followed (model_default_t -> ap_fixed<...>)."""
        decl, seen = self.typedefs.get(name, name), 0
        while decl in self.typedefs and seen < 8:
            decl, seen = self.typedefs[decl], seen + 1
        return " ".join(decl.split())

    def element_type(self, name: str) -> FixedType:
        if name not in self._types:
            decl = self.declaration(name)
            arr = _ARRAY_T.match(decl)
            self._types[name] = parse_type(arr.group(1) if arr else decl)
        return self._types[name]

    def is_stream(self, name: str) -> bool:
        """A stream variable's type is an nnet::array (a packed word); an io_parallel one is the element type."""
        return bool(_ARRAY_T.match(self.typedefs.get(name, name)))

    def weight(self, name: str) -> tuple[np.ndarray, FixedType]:
        """A weight array as the C simulation holds it: the txt values (double) cast to their declared type."""
        if name not in self._weights:
            from accelc.hls.engine.fixed import cast

            type_name, size, file = self.loads[name]
            text = (self.dir / "weights" / file).read_text().strip()
            values = np.array(text.split(",") if text else [], dtype=np.float64)  # as istream >> double
            if values.size != size:
                raise EngineUnsupported(f"weights {file}: {values.size} values, the project expects {size}")
            t = self.element_type(type_name)
            self._weights[name] = (cast(values, t), t)
        return self._weights[name]


def _read_configs(text: str) -> dict[str, Config]:
    arrays = {name: [int(v) for v in body.replace(" ", "").split(",") if v] for name, body in _C_ARRAY.findall(text)}
    configs = {}
    for m in _STRUCT.finditer(text):
        cfg = Config(m["name"], (m["base"] or "").removeprefix("nnet::"))
        body = m["body"]
        for _ctype, key, value in _FIELD.findall(body):
            value = " ".join(value.split())
            cfg.raw[key] = value
            v = _eval(value, cfg.ints)
            if v is not None:
                cfg.ints[key] = v
        for decl, alias in _TYPEDEF.findall(body):
            cfg.types[alias] = decl.strip()
        cfg.usings = dict(_USING.findall(body))
        for key in _DECL_ONLY.findall(body):
            if f"{cfg.name}_{key}" in arrays:
                cfg.arrays[key] = arrays[f"{cfg.name}_{key}"]
        configs[cfg.name] = cfg
    return configs

