"""`accelc inspect`: what a model holds and what each target can do with it, without compiling."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from accelc.analysis import analyze
from accelc.errors import Unsupported, UnsupportedOpError


def _fmt(n: int) -> str:
    return f"{n:,}"


def inspect_model(path: Path, input_shape, target: str | None, trust_pickle: bool, out: Console) -> bool:
    """Print the op table, the support table and every node a checked target refuses (all targets, or just
    `target`); returns False when one is refused."""
    from accelc.backends import TARGETS, get_target
    from accelc.frontend import load
    from accelc.transforms.canonical import Canonicalize

    loaded = load(path, input_shape=input_shape, trust_pickle=trust_pickle)
    model = loaded.model
    Canonicalize()(model)
    rows = analyze(model)
    table = Table(title=f"{path} ({loaded.kind}, opset {model.opset_imports.get('', '?')}, canonicalized)")
    for col, justify in (("node", "left"), ("op", "left"), ("output shape", "left"), ("params", "right"),
                         ("MACs", "right")):
        table.add_column(col, justify=justify)
    for r in rows:
        table.add_row(r.name, r.op, "x".join(map(str, r.shape or [])), _fmt(r.params), _fmt(r.macs))
    table.add_row("[bold]total[/]", f"{len(rows)} nodes", "", _fmt(sum(r.params for r in rows)),
                  _fmt(sum(r.macs for r in rows)))
    out.print(table)
    for spec in loaded.inputs:
        out.print(f"input  {spec.name}: {list(spec.shape)} {spec.dtype} {spec.layout}")
    for spec in loaded.outputs:
        out.print(f"output {spec.name}: {list(spec.shape)} {spec.dtype}")
    ops = sorted({r.op for r in rows})
    names = [target] if target else list(TARGETS)
    support = Table(title="support per target (checked before lowering)")
    support.add_column("target")
    support.add_column("status")
    support.add_column("refused ops (every node listed below)")
    refusals = []
    for name in names:
        tgt = get_target(name)
        found = tgt.supports(tgt.legalize(model)[0])
        if found:
            refusals.append(UnsupportedOpError(name, found))
        per_op = Counter(u.op if isinstance(u, Unsupported) else str(u) for u in found).most_common()
        support.add_row(name, "[green]ok[/]" if not found else f"[red]{len(found)} node(s) refused[/]",
                        escape(", ".join(f"{op} ×{k}" for op, k in per_op)))
    out.print(f"ops: {', '.join(ops)}")
    out.print(support)
    for refusal in refusals:  # no cap here: this is where a capped compile error points to
        out.print(escape(refusal.describe(max_groups=None, max_names=None)), highlight=False)
    return not refusals


def inspect_artifact(path: Path, out: Console) -> None:
    """Print what an artifact holds: source, target options, passes, precisions, self-check."""
    from accelc.artifact import load

    art = load(path)
    m = art.manifest
    tgt = m["target"]
    out.print(f"[bold]{path}[/]: target {tgt['name']}, accelc {m['accelc']}, source {m['source']['path']} "
              f"({m['source']['kind']}, sha256 {m['source']['sha256'][:12]}…)")
    for spec in art.inputs:
        out.print(f"input  {spec.name}: {list(spec.shape)} {spec.layout}")
    for spec in art.outputs:
        out.print(f"output {spec.name}: {list(spec.shape)}")
    for rec in m.get("passes", []):
        summary = rec["stats"].get("summary") or json.dumps(rec["stats"])
        out.print(f"pass {rec['name']} {json.dumps(rec['options'])}: {escape(summary)}")
        for warning in rec.get("warnings", []):
            out.print(f"  [yellow]note:[/] {escape(warning)}")
    if tgt["name"] == "fpga":
        out.print(f"hls4ml backend {tgt['hls4ml_backend']}, io {tgt['io_type']}, strategy {tgt['strategy']}, "
                  f"reuse {tgt['reuse_factor']}, clock {tgt['clock_period']} ns, part {tgt.get('part') or 'default'}")
        table = Table(title=f"precision per layer (from {tgt.get('precision_source')} ranges)")
        for col in ("layer", "result", "accum", "weight", "bias"):
            table.add_column(col)
        for layer, prec in tgt.get("precision", {}).items():
            table.add_row(layer, *(str(prec.get(k, "")) for k in ("result", "accum", "weight", "bias")))
        out.print(table)
        mults = tgt.get("multipliers")
        if mults:
            table = Table(title="multipliers in the generated HLS (parameters.h; Latency drops constant zeros)")
            for col in ("layer", "strategy", "reuse", "weights", "zeros", "multipliers"):
                table.add_column(col, justify="left" if col in ("layer", "strategy") else "right")
            for layer, row in mults["layers"].items():
                table.add_row(layer, row["strategy"], str(row["reuse_factor"]), _fmt(row["weights"]),
                              _fmt(row["zeros"]), _fmt(row["multipliers"]))
            table.add_row("[bold]total[/]", "", "", _fmt(mults["weights"]), _fmt(mults["zeros"]),
                          _fmt(mults["total"]))
            out.print(table)
    else:
        out.print(f"providers: {', '.join(tgt.get('providers', []))}")
    check = m.get("self_check")
    if check:
        out.print(f"self-check: max abs err {check['max_abs_err']:.3g}, cosine {check['cosine']:.6f}, "
                  f"passed {check['passed']}")
