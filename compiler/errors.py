"""Typed errors. Each carries enough context (what, where, what to do) for a CLI message whose first line
stands alone; a refusal of several nodes adds one indented line per (op, reason, hint) group, capped to a
screenful (`UnsupportedOpError.describe()` without caps lists every node)."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass

MAX_GROUPS = 15  # group lines in an UnsupportedOpError's message; the rest are counted on one line
MAX_NAMES = 3  # node names per group line, then "(+N)"
MAX_SUMMARY_OPS = 6  # ops counted on the summary (first) line


@dataclass(frozen=True)
class Unsupported:
    """One node a target cannot lower correctly, and what the user can do about it."""

    op: str
    node: str
    target: str
    reason: str
    hint: str = ""

    def __str__(self) -> str:
        text = f"{self.op} node '{self.node}' on {self.target}: {self.reason}"
        return f"{text} (hint: {self.hint})" if self.hint else text

    def to_dict(self) -> dict:
        return asdict(self)


class AccelcWarning(UserWarning):
    """A warning accelc gives through Python's warnings (API users see it; `warnings.filterwarnings` controls it)."""


class InputRangeWarning(AccelcWarning):
    """Inputs outside the range an fpga artifact's fixed-point input type holds: those values saturate."""


class AccelcError(Exception):
    """Base of every error accelc raises on purpose; the CLI prints it as `accelc: error: MESSAGE`, exit code 2.
    The first line of MESSAGE says what went wrong on its own; any further lines are indented details."""

    exit_code = 2


class ModelLoadError(AccelcError):
    """The model file is missing, corrupt, of the wrong kind, or lacks what compilation needs."""


class UnsupportedOpError(AccelcError):
    """One or more nodes cannot be lowered to the chosen target; `.unsupported` holds every one of them.

    The message is one line for a single node (that node's sentence). For more it is a summary line
    (`23 node(s) cannot be lowered to target 'fpga' (Cast ×12, Transpose ×8, ReduceMean ×3):`) followed by
    one line per (op, reason, hint), largest group first, each naming its first MAX_NAMES nodes then "(+N)";
    after MAX_GROUPS groups one line counts the rest. `describe(None, None)` lists every node.
    """

    def __init__(self, target: str, unsupported: list) -> None:
        self.target = target
        self.unsupported = list(unsupported)
        super().__init__(self.describe())

    def __reduce__(self):
        return type(self), (self.target, self.unsupported)

    def describe(self, max_groups: int | None = MAX_GROUPS, max_names: int | None = MAX_NAMES) -> str:
        """The message; None for a cap = no cap (max_groups=None: every group and every op on the summary line;
        max_names=None: every node name)."""
        return format_unsupported(self.target, self.unsupported, max_groups, max_names)


def _parts(item) -> tuple[str, str, str, str]:
    """(op, node, reason, hint) of an Unsupported; a plain string is an op-like label with nothing else."""
    if isinstance(item, Unsupported):
        return item.op, item.node, item.reason, item.hint
    return str(item), "", "", ""


def group_unsupported(unsupported: list) -> list[tuple[str, str, str, list[str]]]:
    """[(op, reason, hint, node names)] per distinct (op, reason, hint): largest first, then in graph order."""
    groups: dict[tuple[str, str, str], list[str]] = {}
    for item in unsupported:
        op, node, reason, hint = _parts(item)
        groups.setdefault((op, reason, hint), []).append(node)
    ordered = sorted(groups.items(), key=lambda kv: -len(kv[1]))  # stable: ties keep their first appearance
    return [(op, reason, hint, nodes) for (op, reason, hint), nodes in ordered]


def _names(nodes: list[str], cap: int | None) -> str:
    named = [n for n in nodes if n]
    shown = named if cap is None else named[:cap]
    text = ", ".join(shown)
    if len(named) > len(shown):
        text += f" … (+{len(named) - len(shown)})"
    return text


def format_unsupported(target: str, unsupported: list, max_groups: int | None = MAX_GROUPS,
                       max_names: int | None = MAX_NAMES) -> str:
    """A refusal as text: see UnsupportedOpError. Caps of None list everything."""
    n = len(unsupported)
    head = f"{n} node(s) cannot be lowered to target '{target}'"
    if n == 1:
        return f"{head}: {unsupported[0]}"
    per_op = Counter(_parts(u)[0] for u in unsupported).most_common()
    ops_cap = len(per_op) if max_groups is None else MAX_SUMMARY_OPS
    ops = ", ".join(f"{op} ×{k}" for op, k in per_op[:ops_cap])
    if len(per_op) > ops_cap:
        ops += f", … (+{len(per_op) - ops_cap} ops)"
    lines = [f"{head} ({ops}):"]
    groups = group_unsupported(unsupported)
    shown = groups if max_groups is None else groups[:max_groups]
    for op, reason, hint, nodes in shown:
        line = f"  {op} ×{len(nodes)}"
        names = _names(nodes, max_names)
        if names:
            line += f": {names}"
        if reason:
            line += f" — {reason}"
        if hint:
            line += f" (hint: {hint})"
        lines.append(line)
    rest = groups[len(shown):]
    if rest:
        where = f"`accelc inspect MODEL --target {target}`" if target in ("cpu", "cuda", "fpga") else "`accelc --debug`"
        lines.append(f"  … and {len(rest)} more group(s) of {sum(len(g[3]) for g in rest)} node(s); "
                     f"{where} lists every node")
    return "\n".join(lines)


class PassError(AccelcError):
    """A pass failed or broke its contract; names the pass (and node where known)."""


class FidelityBudgetError(PassError):
    """A lossy pass (prune, depthwise, quantize) left the model below its fidelity budget (--min-agreement) on
    the user's calibration data, and the compile is strict. Exit code 1, like VerificationError: the pass did what
    was asked and the result is not good enough — a quality gate, not a usage or structure error (exit 2). A
    PassError, so the pass pipeline lets it through as it is."""

    exit_code = 1


class TargetUnavailableError(AccelcError):
    """The target's runtime (e.g. ONNX Runtime's CUDA provider) is not installed on this machine."""


class VerificationError(AccelcError):
    """The artifact disagrees with the float reference beyond what its precision explains."""

    exit_code = 1


class EngineMismatchError(VerificationError):
    """accelc's numpy engine and hls4ml's C simulation computed different numbers for one artifact: an accelc
    bug, never the model's fault."""


class ArtifactError(AccelcError):
    """An artifact directory is missing, incomplete or was written by an incompatible version."""
