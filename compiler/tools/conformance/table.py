"""The conformance table: per op, how many cases each runner matched / refused / self-check / wrong / crashed."""

from __future__ import annotations

import re
from collections import Counter, defaultdict

from accelc.tools.conformance.run import CLASSES, RUNNERS, Outcome

SHORT = {"matched": "ok", "refused": "ref", "self-check": "chk", "wrong": "WRONG", "crashed": "CRASH"}


def counts(outcomes: list[Outcome]) -> dict[tuple[str, str], Counter]:
    """(op, runner) -> Counter of outcome classes, plus ('TOTAL', runner)."""
    table: dict[tuple[str, str], Counter] = defaultdict(Counter)
    for o in outcomes:
        table[(o.op, o.runner)][o.cls] += 1
        table[("TOTAL", o.runner)][o.cls] += 1
    return table


def _cell(c: Counter) -> str:
    return "/".join(str(c.get(k, 0)) for k in CLASSES)


def markdown(outcomes: list[Outcome]) -> str:
    """One row per op; one column per runner, each cell matched/refused/self-check/wrong/crashed."""
    runners = [r for r in RUNNERS if any(o.runner == r for o in outcomes)]
    ops = list(dict.fromkeys(o.op for o in outcomes))
    table = counts(outcomes)
    n_cases = {op: len({o.case for o in outcomes if o.op == op}) for op in ops}
    label = "/".join(SHORT[k] for k in CLASSES)
    head = "| op | cases | " + " | ".join(f"{r} ({label})" for r in runners) + " |"
    lines = [head, "|" + "---|" * (2 + len(runners))]
    for op in [*ops, "TOTAL"]:
        n = n_cases.get(op, len({o.case for o in outcomes}))
        cells = " | ".join(_cell(table[(op, r)]) for r in runners)
        lines.append(f"| {'**TOTAL**' if op == 'TOTAL' else op} | {n} | {cells} |")
    fpga = [o for o in outcomes if o.runner == "fpga" and o.cls == "matched"]
    if fpga:
        exact = sum(o.engine == "bit-exact" for o in fpga)
        lines += ["", f"- fpga matched cases run by the numpy engine, bit-exact with the C simulation (self-check "
                      f"inputs and test set): {exact} of {len(fpga)}; C simulation only: {len(fpga) - exact}"]
        missing = Counter(f for o in fpga if o.engine != "bit-exact"
                          for f in re.findall(r"nnet::(\w+)", o.engine) or [o.engine.removeprefix("csim only: ")[:60]])
        if missing:
            lines.append("  (not in the engine: " + ", ".join(f"{f} x{n}" for f, n in missing.most_common()) + ")")
    if "hls4ml" in runners:
        lines.append("")
        for r in (r for r in runners if r != "hls4ml"):
            ours, theirs = table[("TOTAL", r)]["matched"], table[("TOTAL", "hls4ml")]["matched"]
            ratio = f"{ours / theirs:.2f}x" if theirs else "n/a"
            lines.append(f"- matched cases, {r} vs hls4ml-direct: {ours} vs {theirs} ({ratio})")
    return "\n".join(lines)


def failures(outcomes: list[Outcome], runners: tuple[str, ...] = ("fpga", "cpu")) -> list[Outcome]:
    """accelc's wrong and crashed cases: each one is a bug."""
    return [o for o in outcomes if o.runner in runners and o.cls in ("wrong", "crashed")]


def failure_lines(outcomes: list[Outcome], runners: tuple[str, ...] = ("fpga", "cpu")) -> list[str]:
    lines = []
    for o in outcomes:
        if o.runner in runners and o.cls in ("wrong", "crashed"):
            err = f" max abs err {o.max_err:.4g} > tol {o.tol:.4g}" if o.max_err is not None else ""
            lines.append(f"- {o.runner} {o.cls} {o.case}:{err} {o.detail}".rstrip())
    return lines
