"""The self-contained HTML page: inline CSS, escaped cells and tables, one section per concern, and
`write_report`, which collects the figures (data.py), draws the plots (plots.py) and writes the page."""

from __future__ import annotations

import datetime as _dt
import json
import math
from collections import Counter
from pathlib import Path
from urllib.parse import quote

import numpy as np

from accelc.artifact import REFERENCE, Artifact, load
from accelc.check.fidelity import percent, saturation_lines
from accelc.errors import AccelcError

from .data import SAMPLES, _fidelity, _fpga_weights, _graph, _layer_rows_fpga, _layer_rows_ort, _read_bench
from .markup import _e, _Raw
from .plots import _plot_errors, _plot_weights

CSS = """
body{font:14px/1.45 -apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;margin:0}
body{color:#1f2328;background:#f6f8fa}
main{max-width:1200px;margin:0 auto;padding:24px 28px 48px;background:#fff;box-shadow:0 0 8px rgba(0,0,0,.06)}
h1{font-size:26px;margin:0 0 4px}
h2{font-size:19px;margin:32px 0 10px;padding-bottom:4px;border-bottom:2px solid #d0d7de}
h3{font-size:15px;margin:18px 0 6px}.sub{color:#57606a;margin:0 0 12px}nav{margin:10px 0 4px}
nav a{margin-right:14px;color:#0969da;text-decoration:none}nav a:hover{text-decoration:underline}
table{border-collapse:collapse;margin:6px 0 10px;font-size:13px}
th,td{border:1px solid #d0d7de;padding:4px 8px;vertical-align:top;text-align:left}
th{background:#eaeef2;font-weight:600}tbody tr:nth-child(even){background:#f6f8fa}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tfoot td{font-weight:600;background:#eaeef2}.wrap{overflow-x:auto}
code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px}.kv th{width:180px}
.grid{display:grid;grid-template-columns:1fr 1fr;gap:0 28px}
.tag{display:inline-block;padding:1px 7px;border-radius:10px;font-size:12px;font-weight:600}
.ok{background:#dafbe1;color:#116329}.bad{background:#ffebe9;color:#a40e26}
.warn{background:#fff8c5;color:#7d4e00}tr.saturating td{background:#fff8c5}tr.jump td{background:#ffebe9}
.note{color:#57606a;font-size:13px}
ul.warnings li{color:#7d4e00}img.plot{max-width:100%;border:1px solid #d0d7de;margin:6px 0}
details{margin:6px 0}summary{cursor:pointer;color:#0969da}
pre{background:#f6f8fa;padding:8px;overflow-x:auto;font-size:12px}
"""


def _int(n) -> str:
    return "" if n is None else f"{int(n):,}"


def _g(x, digits: int = 3) -> str:
    if x is None:
        return ""
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    return f"{x:.{digits}g}"


def _pct(x) -> str:
    return "" if x is None else f"{100 * x:.1f}%"


def _cell(value) -> str:
    if isinstance(value, _Raw):
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return _e(str(value).lower())
    if isinstance(value, int):
        return _e(_int(value))
    if isinstance(value, float):
        return _e(_g(value, 4))
    if isinstance(value, (dict, list)):
        return f"<code>{_e(json.dumps(value, default=str))}</code>"
    return _e(value)


def _table(headers: list[str], rows: list[list], numeric: set[int] = frozenset(), row_classes: list[str] | None = None,
           foot: list | None = None, table_id: str | None = None, cls: str = "") -> str:
    def cells(row, tag):
        return "".join(f'<{tag}{" class=num" if i in numeric else ""}>{_cell(v)}</{tag}>' for i, v in enumerate(row))

    attrs = (f' id="{_e(table_id)}"' if table_id else "") + (f' class="{_e(cls)}"' if cls else "")
    head = "".join(f'<th{" class=num" if i in numeric else ""}>{_e(h)}</th>' for i, h in enumerate(headers))
    def tr(i: int) -> str:
        return f'<tr class="{_e(row_classes[i])}">' if row_classes and row_classes[i] else "<tr>"

    body = "".join(f"{tr(i)}{cells(r, 'td')}</tr>" for i, r in enumerate(rows))
    tfoot = f"<tfoot><tr>{cells(foot, 'td')}</tr></tfoot>" if foot else ""
    return f'<div class="wrap"><table{attrs}><thead><tr>{head}</tr></thead><tbody>{body}</tbody>{tfoot}</table></div>'


def _kv(pairs: list[tuple[str, object]]) -> str:
    rows = "".join(f"<tr><th>{_e(k)}</th><td>{_cell(v)}</td></tr>" for k, v in pairs if v not in (None, ""))
    return f'<div class="wrap"><table class="kv">{rows}</table></div>'


def _shape(shape) -> str:
    return "" if shape is None else "x".join(str(d) for d in shape)


def _tag(ok: bool, yes: str = "passed", no: str = "failed") -> _Raw:
    return _Raw(f'<span class="tag {"ok" if ok else "bad"}">{_e(yes if ok else no)}</span>')


def _section_bench(data: dict) -> str:
    rows = data["rows"]
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    numeric = {i for i, k in enumerate(keys) if all(isinstance(r.get(k), (int, float)) and not isinstance(
        r.get(k), bool) for r in rows if r.get(k) is not None) and any(r.get(k) is not None for r in rows)}
    meta = [(k, v) for k, v in data.items() if k != "rows" and not isinstance(v, (dict, list))]
    parts = ['<section id="bench"><h2>Benchmark</h2>']
    if meta:
        parts.append(_kv(meta))
    parts.append(_table(keys, [[r.get(k) for k in keys] for r in rows], numeric=numeric) if rows
                 else '<p class="note">the bench file holds no rows</p>')
    parts.append("</section>")
    return "".join(parts)


def _section_passes(m: dict) -> str:
    parts = ['<section id="passes"><h2>Passes</h2>']
    passes = m.get("passes", [])
    if passes:
        rows = []
        for p in passes:
            stats = p.get("stats", {})
            summary = stats.get("summary") or json.dumps({k: v for k, v in stats.items() if k != "layers"},
                                                         default=str)[:400]
            warnings = p.get("warnings", [])
            rows.append([_Raw(f"<b>{_e(p.get('name'))}</b>"), p.get("options", {}), summary,
                         _Raw("<ul class=warnings>" + "".join(f"<li>{_e(w)}</li>" for w in warnings) + "</ul>")
                         if warnings else ""])
        parts.append(_table(["pass", "options", "summary", "warnings"], rows))
        for p in passes:
            parts.append(f"<details><summary>{_e(p.get('name'))}: full stats</summary><pre>"
                         f"{_e(json.dumps(p.get('stats', {}), indent=2, default=str))}</pre></details>")
    else:
        parts.append('<p class="note">no user passes: the artifact runs the canonicalized source graph</p>')
    canon = m.get("canonicalize", [])
    if canon:
        rows = [[c.get("name"), c.get("modified"), c.get("stats", {}), "; ".join(c.get("warnings", []))] for c in canon]
        parts.append(f"<details><summary>canonicalization ({len(canon)} steps)</summary>"
                     f"{_table(['step', 'modified', 'stats', 'warnings'], rows)}</details>")
    parts.append("</section>")
    return "".join(parts)


def _section_selfcheck(m: dict) -> str:
    c = m.get("self_check")
    if not c:
        return '<section id="self-check"><h2>Self-check</h2><p class="note">no self-check recorded</p></section>'
    pairs = [("result", _tag(bool(c.get("passed")))), ("against", c.get("against")), ("samples", c.get("samples")),
             ("max abs error", _g(c.get("max_abs_err"), 4)), ("RMSE", _g(c.get("rmse"), 4)),
             ("cosine similarity", _g(c.get("cosine"), 8)), ("top-1 agreement", _g(c.get("top1_agreement"), 4)),
             ("thresholds", c.get("thresholds")), ("first error jump", c.get("first_jump")),
             ("violations", "; ".join(c.get("violations", [])))]
    return f'<section id="self-check"><h2>Self-check (at compile time)</h2>{_kv(pairs)}</section>'


def _section_cost(cost: dict | None, cost_error: str | None, mults: dict | None) -> str:
    parts = ['<section id="cost"><h2>FPGA cost estimate</h2>']
    if cost is None:
        parts.append(f'<p class="note">no estimate: {_e(cost_error)}</p>')
    else:
        t = cost["totals"]
        clock = cost.get("clock_period_ns")
        parts.append(f'<p><span class="tag warn">estimate</span> {_e(cost["note"])}</p>')
        parts.append(_kv([
            ("MACs per inference", _int(t["macs"])), ("multiplications after pruning", _int(t["mults"])),
            ("multipliers instantiated", _int(t["multipliers"])), ("DSP slices (est.)", _int(t["dsps"])),
            ("LUT multipliers (est.)", _int(t["lut_multipliers"])),
            ("weight bits (weights x width)", _int(t["weight_storage_bits"])), ("activation bits (layer outputs)",
                                                              _int(t["activation_bits"])),
            ("latency (est.)", f"{_int(t['latency_cycles'])} cycles" + (
                f" = {t['latency_ns']:,.0f} ns at {clock:g} ns" if clock else "") + f" — {t['latency_kind']}"),
            ("interval between inputs (est.)", f"{_int(t['interval_cycles'])} cycles" + (
                f" = {t['interval_ns']:,.0f} ns" if clock else "")),
            ("io type", cost.get("io_type"))]))
        if cost.get("warnings"):
            parts.append("<ul class=warnings>" + "".join(f"<li>{_e(w)}</li>" for w in cost["warnings"]) + "</ul>")
        rows = [[r["name"], r["function"], r["strategy"] or "", r["reuse_factor"],
                 f"{r['in_bits']}x{r['weight_bits']}" if r["multipliers"] and r["in_bits"] and r["weight_bits"]
                 else "", r["macs"], r["mults"], r["multipliers"], r["multiplier_kind"] or "", r["dsps"],
                 r["cycles"], r["cycle_model"]] for r in cost["layers"]]
        foot = ["total", "", "", "", "", t["macs"], t["mults"], t["multipliers"], "", t["dsps"],
                t["latency_cycles"], ""]
        parts.append("<h3>per layer</h3>")
        parts.append(_table(["layer", "hls4ml function", "strategy", "RF", "bits a x w", "MACs", "mults (nonzero)",
                             "multipliers", "kind", "DSPs", "cycles", "cycle model"], rows,
                            numeric={3, 5, 6, 7, 9, 10}, foot=foot, table_id="cost"))
        parts.append("<details><summary>the cost model</summary><ul>" +
                     "".join(f"<li>{_e(line)}</li>" for line in cost["model"]) + "</ul></details>")
    if mults:
        rows = [[name, r.get("strategy"), r.get("reuse_factor"), r.get("weights"), r.get("zeros"),
                 r.get("multipliers")] for name, r in mults.get("layers", {}).items()]
        parts.append("<h3>multipliers in the generated HLS (manifest; Latency drops constant zeros)</h3>")
        parts.append(_table(["layer", "strategy", "reuse", "weights", "zeros", "multipliers"], rows,
                            numeric={2, 3, 4, 5}, foot=["total", "", "", mults.get("weights"), mults.get("zeros"),
                                                        mults.get("total")]))
    parts.append("</section>")
    return "".join(parts)


def _section_summary(art: Artifact, infos, extra) -> str:
    m = art.manifest
    tgt = m["target"]
    src = m.get("source", {})
    ops = Counter(i.op for i in infos)
    weights = [x["weight"] for x in extra.values() if x["weight"] is not None]
    nz = sum(int(np.count_nonzero(w)) for w in weights)
    total_w = sum(int(w.size) for w in weights)
    model = [("source", src.get("path")), ("source kind", src.get("kind")),
             ("source sha256", _Raw(f"<code>{_e(str(src.get('sha256', ''))[:16])}…</code>")),
             ("accelc", m.get("accelc")), ("nodes in model.onnx", len(infos)),
             ("parameters", _int(sum(i.params for i in infos))), ("MACs per sample", _int(sum(i.macs for i in infos))),
             ("nonzero weights", f"{nz:,} of {total_w:,} ({_pct(nz / total_w)})" if total_w else None),
             ("reference.onnx", "yes (passes changed the graph)" if (art.path / REFERENCE).exists() else "no")]
    target = [("target", tgt["name"]), ("target options", tgt.get("options") or None)]
    if tgt["name"] == "fpga":
        target += [("hls4ml backend", f"{tgt.get('hls4ml_backend')} (part {tgt.get('part') or 'default'})"),
                   ("clock period", f"{tgt.get('clock_period')} ns"), ("io type", tgt.get("io_type")),
                   ("strategy", tgt.get("strategy")), ("per-layer strategy", tgt.get("layer_strategy") or None),
                   ("reuse factor (asked)", tgt.get("reuse_factor")),
                   ("default precision", tgt.get("default_precision")),
                   ("precision from", tgt.get("precision_source"))]
    else:
        target += [("providers", ", ".join(tgt.get("providers", []))), ("onnxruntime", tgt.get("onnxruntime"))]
    io_rows = [["input", s.name, _shape(s.shape), s.dtype, s.layout] for s in art.inputs] + \
              [["output", s.name, _shape(s.shape), s.dtype, s.layout] for s in art.outputs]
    op_rows = [[op, n] for op, n in sorted(ops.items(), key=lambda kv: (-kv[1], kv[0]))]
    return ('<section id="summary"><h2>Model</h2><div class="grid"><div><h3>graph</h3>' + _kv(model) +
            "</div><div><h3>target</h3>" + _kv(target) + '</div></div><div class="grid"><div><h3>inputs and outputs'
            "</h3>" + _table(["", "name", "shape", "dtype", "layout"], io_rows) + "</div><div><h3>operators</h3>" +
            _table(["op", "count"], op_rows, numeric={1}) + "</div></div></section>")


def _saturation_cell(r: dict) -> _Raw | str:
    if r["saturated"] is None:
        return ""
    text = _e(percent(r["saturated"]))
    return _Raw(text + ' <span class="tag warn">saturates here</span>' if r["saturating"] else text)


def _section_fidelity(fidelity, error: str | None, has_reference: bool, label: str,
                      saturation: list[str] = ()) -> str:
    reference = ("reference.onnx: the float model before passes, so pass losses count as error" if has_reference
                 else "model.onnx in float on ONNX Runtime CPU (no pass changed the graph)")
    parts = ['<section id="fidelity"><h2>Fidelity vs the float reference</h2>']
    if fidelity is None:
        parts.append(f'<p class="note">the artifact could not be run here, so there are no error figures: '
                     f"{_e(error)}</p>")
    else:
        f = fidelity
        parts.append(_kv([("inputs", label), ("reference", reference),
                          ("max abs error", _g(f.max_abs_err, 4)), ("RMSE", _g(f.rmse, 4)),
                          ("cosine similarity", _g(f.cosine, 8)), ("top-1 agreement", _g(f.top1_agreement, 4)),
                          ("first error jump", f.first_jump), ("first saturating layer", f.first_saturating),
                          ("inputs beyond their type's range", ", ".join(
                              f"{name}: {percent(v)}" for name, v in f.inputs_saturated.items() if v > 0))]))
        if saturation:
            items = "".join(f"<li>{_e(line)}</li>" for line in saturation)
            parts.append(f'<ul class="warnings" id="saturation">{items}</ul>')
    parts.append("</section>")
    return "".join(parts)


def _section_layers(rows: list[dict], note: str, error_png: str | None, fpga: bool) -> str:
    headers = ["layer", "op", "onnx node", "shape", "params", "MACs", "precision", "sparsity", "max |err|", "rel err",
               "at limits"]
    table = [[r["layer"], r["op"], r["onnx_node"] or "", _shape(r["shape"]), r["params"], r["macs"], r["precision"],
              _pct(r["sparsity"]), _g(r["max_abs_err"]), _g(r["rel_err"]), _saturation_cell(r)] for r in rows]
    foot = ["total", f"{len(rows)} layers", "", "", sum(r["params"] or 0 for r in rows),
            sum(r["macs"] or 0 for r in rows), "", "", "", "", ""]
    numeric = {4, 5, 7, 8, 9, 10}
    if not fpga:  # ONNX Runtime runs model.onnx's nodes themselves (no ONNX node column), in float (no limits)
        headers, table, foot = headers[:2] + headers[3:-1], [r[:2] + r[3:-1] for r in table], foot[:2] + foot[3:-1]
        numeric = {i - 1 for i in numeric if i != 10}
    classes = [" ".join(["layer"] + ["jump"] * r["jump"] + ["saturating"] * r["saturating"]) for r in rows]
    parts = ['<section id="layers"><h2>Layers</h2>', f'<p class="note">{_e(note)}</p>',
             _table(headers, table, numeric=numeric, row_classes=classes, table_id="layer-table", foot=foot)]
    if error_png:
        parts.append(f'<img class="plot" src="{_e(quote(error_png))}" alt="per-layer error plot">')
    parts.append("</section>")
    return "".join(parts)


def _section_weights(stats: list[dict], png: str | None, total: int, fpga: bool) -> str:
    parts = ['<section id="weights"><h2>Weights</h2>']
    if not png:
        parts.append('<p class="note">no weighted layers to draw</p></section>')
        return "".join(parts)
    what = ("weights as hls4ml wrote them for the firmware (firmware/weights/*.txt); dashed red lines: the range of "
            "the layer's weight type fixed&lt;W,I&gt;, [-2^(I-1), 2^(I-1) - 2^-(W-I)]" if fpga
            else "float weights of model.onnx")
    parts.append(f'<p class="note">{what}' + (f"; the first {len(stats)} of {total} weighted layers" if total > len(
        stats) else "") + "</p>")
    parts.append(f'<img class="plot" src="{_e(quote(png))}" alt="weight histograms">')
    rows = [[s["layer"], s["count"], s["zeros"], _g(s["min"], 4), _g(s["max"], 4), s["type"] or "",
             f"[{_g(s['range'][0], 6)}, {_g(s['range'][1], 6)}]" if s["range"] else "", s["clipped"]] for s in stats]
    headers = ["layer", "weights", "zeros", "min", "max", "type", "range", "outside range"]
    if not fpga:  # float weights: no fixed-point type to hold them against
        headers, rows = headers[:5], [r[:5] for r in rows]
    parts.append(_table(headers, rows, numeric={1, 2, 3, 4, 7}))
    parts.append("</section>")
    return "".join(parts)


def write_report(artifact: Path, output: Path | None = None, bench: Path | None = None,
                 inputs: np.ndarray | None = None, inputs_label: str | None = None,
                 engine: str | None = None) -> Path:
    """Write ARTIFACT's HTML report (default ARTIFACT/report.html) and its PNG plots beside it; returns its path.

    The error figures use `inputs` (e.g. the dataset the artifact was calibrated for), else the calibration sample
    the artifact keeps, else 16 rows of its input distribution (declared range, or N(0,1))."""
    artifact = Path(artifact)
    if not artifact.is_dir():
        raise AccelcError(f"{artifact} is not a directory; pass an artifact directory written by `accelc compile`")
    art = load(artifact, engine=engine)  # ArtifactError (an AccelcError) for a directory that is not an artifact
    bench_data = _read_bench(bench) if bench is not None else None
    output = Path(output) if output is not None else art.path / "report.html"
    if output.is_dir():
        output = output / "report.html"
    output.parent.mkdir(parents=True, exist_ok=True)
    fpga = art.target == "fpga"

    infos, extra = _graph(art)
    if inputs is None:  # the calibration sample the artifact keeps, else its input distribution (another seed)
        from accelc.check.inputs import default_inputs, describe_default

        kept = (art.manifest.get("calibration") or {}).get("sample")
        inputs = default_inputs(art, None if kept else SAMPLES)[0]
        inputs_label = f"{len(inputs)} inputs: {describe_default(art, None if kept else SAMPLES)}"
    x = np.asarray(inputs, dtype=np.float32)
    label = inputs_label or f"{len(x)} given inputs"
    fidelity, fid_error = _fidelity(art, x)
    cost = cost_error = None
    if fpga:
        from accelc.hls.cost import estimate

        try:
            cost = estimate(art.path, art.manifest)
        except AccelcError as e:
            cost_error = str(e)
        rows, note = _layer_rows_fpga(art, infos, cost, fidelity, label)
        weights = _fpga_weights(art, cost)
    else:
        rows, note = _layer_rows_ort(art, infos, extra, x, label)
        weights = [(i.name, extra[i.name]["weight"].reshape(-1).astype(np.float64), None)
                   for i in infos if extra.get(i.name, {}).get("weight") is not None]

    stem = output.stem
    error_png = f"{stem}-errors.png"
    weights_png = f"{stem}-weights.png"
    has_errors = _plot_errors(rows, output.parent / error_png)
    weight_stats = _plot_weights(weights, output.parent / weights_png)

    title = f"accelc report — {art.path.name} ({art.target})"
    links = [("summary", "model"), ("fidelity", "fidelity"), ("layers", "layers"), ("weights", "weights"),
             ("passes", "passes"), ("self-check", "self-check")] + ([("cost", "cost")] if fpga else []) + \
        ([("bench", "bench")] if bench_data else [])
    now = _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    body = [f"<h1>{_e(title)}</h1>",
            f'<p class="sub">{_e(art.path.resolve())} · accelc {_e(art.manifest.get("accelc"))} · '
            f"written {_e(now)}</p>",
            "<nav>" + "".join(f'<a href="#{a}">{_e(t)}</a>' for a, t in links) + "</nav>",
            _section_summary(art, infos, extra),
            _section_fidelity(fidelity, fid_error, (art.path / REFERENCE).exists(), label,
                              saturation_lines(fidelity, art.manifest) if fidelity else []),
            _section_layers(rows, note, error_png if has_errors else None, fpga),
            _section_weights(weight_stats, weights_png if weight_stats else None, len(weights), fpga),
            _section_passes(art.manifest), _section_selfcheck(art.manifest)]
    if fpga:
        body.append(_section_cost(cost, cost_error, art.manifest["target"].get("multipliers")))
    if bench_data:
        body.append(_section_bench(bench_data))
    page = (f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{CSS}</style></head>'
            f"<body><main>{''.join(body)}</main></body></html>\n")
    output.write_text(page, encoding="utf-8")
    return output
