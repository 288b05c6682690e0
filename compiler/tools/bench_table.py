"""`accelc bench`'s tables: the 80-column terminal table with numbered footnotes, and the markdown with every
column and the fpga hardware estimate in full (the measurements come from accelc.tools.bench)."""

from __future__ import annotations

FPGA_ENGINE, FPGA_CSIM, FPGA_ESTIMATE = "fpga engine (numpy)", "fpga C sim", "fpga hardware (estimate)"
EMULATION_NOTE = ("emulation: the fpga design run on this CPU, not the hardware; its speed is no speed-up "
                  "of the fpga (see the hardware estimate). The engine runs numpy's BLAS on one thread, as the "
                  "C simulation runs on one core")


COLUMNS = (("variant", "variant"), ("batch", "batch"), ("p50_ms", "p50 ms"), ("p90_ms", "p90 ms"),
           ("throughput_per_s", "samples/s"), ("speedup", "speed-up"), ("engine_vs_csim", "engine vs C sim"),
           ("size_bytes", "size B"), ("macs", "MACs"), ("bit_ops", "bit-ops"), ("top1_agreement", "top-1 agr."),
           ("accuracy", "accuracy"), ("compile", "compile s"), ("compile_warm", "warm s"),
           ("latency_cycles", "est. latency cycles"), ("latency_us", "est. latency µs"),
           ("interval_cycles", "est. interval cycles"), ("clock_period_ns", "clock ns"), ("note", "note"))


# The terminal table: what fits 80 columns (notes become numbered footnotes); JSON and markdown carry every column.
TERMINAL_COLUMNS = ("variant", "batch", "p50_ms", "throughput_per_s", "speedup", "top1_agreement", "accuracy")
TERMINAL_TITLES = {"top1_agreement": "top-1", "accuracy": "acc."}


def cell(row: dict, key: str) -> str:
    value = row.get(key)
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}" if key not in ("top1_agreement", "accuracy") else f"{value:.4f}"
    if isinstance(value, int) and key in ("size_bytes", "macs", "bit_ops", "latency_cycles", "interval_cycles"):
        return f"{value:,}"
    return str(value)


def _note(row: dict) -> str:
    note = row.get("note", "")
    if row["status"] == "unavailable":
        note = f"unavailable: {note}"
    elif row["status"] == "estimate":
        note = f"estimate, not measured: {note}"
    return f"emulation, no speed-up; {note}" if row.get("emulation") else note


def _ratios_text(result: dict) -> str | None:
    fpga = result.get("fpga")
    if not fpga:
        return None
    ratios = fpga["engine_vs_csim"]
    if not ratios:
        return "engine vs C sim: not measured (one of the two fpga emulations did not run)"
    at = ", ".join(f"{r['ratio']:.3g}x at batch {r['batch']}" for r in ratios)
    return f"engine vs C sim: {at} (p50 per sample, this run; both emulate the fpga on this CPU)"


def _estimate_text(row: dict) -> str:
    if row["status"] != "estimate":
        return f"{row['variant']}: unavailable: {row.get('note', '')}"
    clock = row.get("clock_period_ns")
    latency = f"latency {row['latency_cycles']:,} cycles"
    if row.get("latency_us") is not None:
        latency += f" = {row['latency_us']:.4g} µs at {clock:g} ns clock"
    interval = f"initiation interval {row['interval_cycles']:,} cycle{'s' if row['interval_cycles'] != 1 else ''}"
    return f"{row['variant']}: {latency}, {interval}; latency: {row.get('latency_kind')}"


def to_markdown(result: dict) -> str:
    lines = [f"accelc bench {result['model']} (baseline: {result['baseline']}; speed-up = baseline p50 / p50; "
             "fpga engine and C sim rows are emulations on this CPU: no speed-up)", "",
             "| " + " | ".join(title for _, title in COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in result["rows"]:
        lines.append("| " + " | ".join(cell({**row, "note": _note(row)}, key) for key, _ in COLUMNS) + " |")
    fpga = result.get("fpga")
    if fpga:
        lines += ["", f"fpga engine and C sim rows: {fpga['emulation']}.", "", _ratios_text(result) + "."]
        lines += [""] + [f"- batch {r['batch']}: engine {r['engine_ms_per_sample']:.4g} ms per sample, C sim "
                         f"{r['csim_ms_per_sample']:.4g} ms per sample: {r['ratio']:.4g}x"
                         for r in fpga["engine_vs_csim"]]
        lines += _markdown_estimate(result, fpga.get("hardware_estimate"))
    return "\n".join(lines) + "\n"


def _markdown_estimate(result: dict, cost: dict | None) -> list[str]:
    row = next((r for r in result["rows"] if r["variant"] == FPGA_ESTIMATE), None)
    lines = ["", f"## {FPGA_ESTIMATE}", ""]
    if cost is None or row is None or row["status"] != "estimate":
        return lines + [f"unavailable: {row.get('note', '') if row else 'no estimate'}"]
    lines += [_estimate_text(row) + ".", "", cost.get("note", ""), "", "| figure | value |", "|---|---|"]
    lines += [f"| clock period | {cost.get('clock_period_ns')} ns |", f"| io type | {cost.get('io_type')} |"]
    lines += [f"| {key} | {value:,} |" if isinstance(value, int) else f"| {key} | {value} |"
              for key, value in cost["totals"].items()]
    lines += [f"| latency µs | {row['latency_us']} |", f"| interval µs | {row['interval_us']} |"]
    lines += ["", "| layer | kind | cycles | cycle model | reuse factor | multipliers | DSPs | LUT multipliers |",
              "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['name']} | {r['kind']} | {r['cycles']} | {r.get('cycle_model') or ''} | {r['reuse_factor']} | "
              f"{r['multipliers'] or 0:,} | {r['dsps'] or 0:,} | {r['lut_multipliers'] or 0:,} |"
              for r in cost["layers"]]
    lines += [""] + [f"- model: {m}" for m in cost.get("model", [])] + [f"- warning: {w}" for w in cost["warnings"]]
    return lines


def _terminal_cell(row: dict, key: str) -> str:
    value = row.get(key)
    if row["status"] != "ok" and key != "batch":
        return "—" if key == "p50_ms" else ""
    if value is None:
        return ""
    if key == "throughput_per_s":
        for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
            if value >= scale:
                return f"{value / scale:.3g}{suffix}"
        return f"{value:.3g}"
    if key in ("top1_agreement", "accuracy"):
        return f"{value:.3f}"
    if key == "speedup":
        return f"{value:.3g}"
    return cell(row, key)


def print_terminal(console, result: dict) -> None:
    """The table for a terminal: short columns (fits 80), every note as a numbered footnote under it."""
    import textwrap

    from rich import box
    from rich.table import Table
    from rich.text import Text

    notes: dict[str, int] = {}

    def ref(text: str) -> int:
        return notes.setdefault(text, len(notes) + 1)

    rows = [r for r in result["rows"] if r["status"] != "estimate" and r.get("batch") is not None]
    keys = [k for k in TERMINAL_COLUMNS if k != "accuracy" or any(r.get("accuracy") is not None for r in rows)]
    titles = {k: TERMINAL_TITLES.get(k, title) for k, title in COLUMNS}
    table = Table(title=Text(f"accelc bench {result['model']}"), box=box.SIMPLE_HEAD, padding=(0, 1, 0, 0),
                  show_edge=False)
    for key in keys:
        table.add_column(titles[key], justify="left" if key == "variant" else "right", no_wrap=key == "variant")
    batch = None
    for row in rows:
        if batch is not None and row["batch"] != batch:
            table.add_section()
        batch = row["batch"]
        refs = [ref(EMULATION_NOTE)] if row.get("emulation") else []
        note = row.get("note", "")
        if row["status"] != "ok":
            refs.append(ref(f"unavailable: {note}"))
        elif note:
            refs.append(ref(note))
        name = row["variant"] + (f" [{','.join(map(str, refs))}]" if refs else "")
        table.add_row(Text(name), *(Text(_terminal_cell(row, k)) for k in keys[1:]))
    console.print(table, soft_wrap=False)  # a soft-wrapping console (the CLI's) would not fold a long title
    lines = [f"speed-up = {result['baseline']} p50 / p50 at the same batch, measured on this machine"]
    if (ratios := _ratios_text(result)) is not None:
        lines.append(ratios)
    for row in result["rows"]:
        if row["variant"] == FPGA_ESTIMATE:
            mark = ref(f"estimate, not measured: {row['note']}") if row["status"] == "estimate" and row.get(
                "note") else None
            lines.append(_estimate_text(row) + (f" [{mark}]" if mark else ""))
    width = max(console.width, 40)
    for line in lines:
        console.print(Text(textwrap.fill(line, width, subsequent_indent="  ")), soft_wrap=False)
    for text, n in notes.items():
        head = f"[{n}] "
        console.print(Text(textwrap.fill(head + text, width, subsequent_indent=" " * len(head))), soft_wrap=False)
