"""The figures of an artifact for its report: graph analysis and weights, fidelity and per-layer error, the
per-layer rows (precision, sparsity, error) for fpga and ONNX Runtime targets, the fpga firmware weights, and the
`accelc bench --json` file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from accelc.artifact import MODEL, REFERENCE, Artifact
from accelc.errors import AccelcError

from .markup import _e, _Raw

SAMPLES = 16  # seeded random inputs for the error columns
MAX_HISTOGRAMS = 16  # weighted layers drawn; the rest are named
WEIGHTED_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")


def _graph(art: Artifact) -> tuple[list, dict]:
    """analysis rows of model.onnx plus per node: weight array (largest constant input), dtype, sparsity."""
    import onnx_ir as ir

    from accelc.analysis import analyze

    model = ir.load(str(art.path / MODEL))
    infos = analyze(model)
    extra = {}
    for node in model.graph:
        consts = [v.const_value for v in node.inputs if v is not None and v.const_value is not None]
        weight = None
        if node.op_type in WEIGHTED_OPS and len(node.inputs) > 1 and node.inputs[1] is not None \
                and node.inputs[1].const_value is not None:
            weight = node.inputs[1].const_value.numpy()
        dtype = None
        if consts:
            big = max(consts, key=lambda c: int(np.prod(c.shape)) if c.shape is not None else 0)
            dtype = str(big.numpy().dtype)
        elif node.outputs and node.outputs[0].dtype is not None:
            try:
                dtype = str(node.outputs[0].dtype.numpy())
            except Exception:  # a dtype numpy lacks (e.g. some float8): show its ONNX name
                dtype = str(node.outputs[0].dtype).lower()
        sparsity = float(np.mean(weight == 0)) if weight is not None and weight.size else None
        extra[node.name] = {"weight": weight, "dtype": dtype, "sparsity": sparsity}
    return infos, extra


def _fidelity(art: Artifact, x: np.ndarray) -> tuple[object | None, str | None]:
    from accelc.check.fidelity import verify

    try:
        return verify(art, x, per_layer=True), None
    except Exception as e:  # noqa: BLE001 - e.g. a cuda artifact on a machine without a GPU: report the rest
        return None, f"{type(e).__name__}: {e}"


def _node_errors(art: Artifact, x: np.ndarray, label: str) -> tuple[dict[str, tuple[float, float]], str]:
    """cpu/cuda: per node, model.onnx (after passes) vs reference.onnx (before), both in float on ORT CPU."""
    if not (art.path / REFERENCE).exists():
        return {}, ("no reference.onnx: no pass changed the graph, so every node computes the reference's value; "
                    "the runtime's end-to-end error is in the fidelity table above")
    import onnx

    from accelc.reference import Reference

    try:
        ref = Reference(onnx.load(str(art.path / REFERENCE))).run_all([x])
        got = Reference(onnx.load(str(art.path / MODEL))).run_all([x])
    except Exception as e:  # noqa: BLE001
        return {}, f"per-node comparison failed: {type(e).__name__}: {e}"
    out = {}
    for name, r in ref.items():
        g = got.get(name)
        if g is None or g.shape != r.shape or not np.issubdtype(r.dtype, np.floating):
            continue
        err = float(np.max(np.abs(g.astype(np.float64) - r))) if r.size else 0.0
        out[name] = (err, err / max(float(np.max(np.abs(r))) if r.size else 0.0, 1e-12))
    return out, ("per node: model.onnx (the graph after passes) vs reference.onnx (before passes), both run in "
                 f"float on ONNX Runtime CPU, {label}; nodes only one of them has stay empty")


def _trace_layers(art: Artifact) -> list[dict]:
    try:
        return list(art.runner.trace_layers)
    except Exception:  # noqa: BLE001 - the emulator cannot be loaded here: its metadata still lists the layers
        meta = art.path / "hls" / "accelc_emulator.json"
        return json.loads(meta.read_text()).get("trace", []) if meta.exists() else []


def _precision_text(prec: dict | None) -> _Raw | str:
    if not prec:
        return ""
    parts = [f"{k} <code>{_e(prec[k])}</code>" for k in ("result", "weight", "accum") if prec.get(k)]
    return _Raw("<br>".join(parts))


def _layer_rows_fpga(art: Artifact, infos, cost, fidelity, label: str) -> tuple[list[dict], str]:
    by_node = {i.name: i for i in infos}
    by_cost = {r["name"]: r for r in (cost or {}).get("layers", [])}
    errors = {r.layer: r for r in (fidelity.per_layer if fidelity else [])}
    from accelc.hls.cost import manifest_precision

    precision = art.manifest["target"].get("precision", {})
    rows = []
    for layer in _trace_layers(art):
        name = layer["name"]
        node = by_node.get(layer.get("onnx_node") or "")
        c = by_cost.get(name, {})
        err = errors.get(name)
        weights = c.get("weights") or 0
        rows.append({
            "layer": name, "onnx_node": layer.get("onnx_node"),
            "op": f"{layer.get('class', '')}" + (f" ({node.op})" if node else ""),
            "shape": layer.get("shape"), "params": (weights + (c.get("biases") or 0)) if c else None,
            "macs": c.get("macs") if c else None,
            "precision": _precision_text(manifest_precision(name, precision) or {
                k: c[t] for k, t in (("result", "out_type"), ("weight", "weight_type")) if c.get(t)}),
            "sparsity": (c.get("zeros", 0) / weights) if weights and c.get("kind") in ("dense", "conv") else None,
            "max_abs_err": err.max_abs_err if err else None, "rel_err": err.rel_err if err else None,
            "jump": bool(err and err.jump), "saturated": err.saturated if err else None,
            "saturating": bool(err and fidelity and name == fidelity.first_saturating),
        })
    note = (f"one row per traced hls4ml layer; params and MACs as the generated HLS instantiates them (per sample); "
            f"sparsity = hls4ml's n_zeros / weights; errors: C simulation trace vs the float reference on {label} "
            "(max |error| and max |error| / max |reference|; layers without an ONNX node to align to stay empty); "
            "at limits: the fraction of the layer's values clipped at its saturating result type's limits where the "
            "float reference lies beyond them (empty where the type wraps or is not known)")
    return rows, note


def _layer_rows_ort(art: Artifact, infos, extra, x: np.ndarray, label: str) -> tuple[list[dict], str]:
    errors, note = _node_errors(art, x, label)
    rows = []
    for info in infos:
        x = extra.get(info.name, {})
        err = errors.get(info.name)
        rows.append({"layer": info.name, "onnx_node": None, "op": info.op, "shape": info.shape, "params": info.params,
                     "macs": info.macs, "precision": x.get("dtype") or "", "sparsity": x.get("sparsity"),
                     "max_abs_err": err[0] if err else None, "rel_err": err[1] if err else None, "jump": False,
                     "saturated": None, "saturating": False})
    return rows, "one row per node of model.onnx; params and MACs per sample; " + note


def _fpga_weights(art: Artifact, cost: dict | None) -> list[tuple[str, np.ndarray, str | None]]:
    out = []
    folder = art.path / "hls" / "firmware" / "weights"
    for r in (cost or {}).get("layers", []):
        if r["kind"] not in ("dense", "conv") or not r.get("weight_array"):
            continue
        f = folder / f"{r['weight_array']}.txt"
        if not f.exists():
            continue
        w = np.array(f.read_text().replace(",", " ").split(), dtype=np.float64)
        wtype = (r.get("precision") or {}).get("weight") or r.get("weight_type")
        out.append((r["name"], w, wtype))
    return out


def _read_bench(path: Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise AccelcError(f"no such bench file: {path}")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise AccelcError(f"{path} is not valid JSON ({e}); pass the file `accelc bench --json` wrote") from e
    if isinstance(data, list):
        data = {"rows": data}
    if not isinstance(data, dict) or not isinstance(data.get("rows"), list) or \
            not all(isinstance(r, dict) for r in data["rows"]):
        raise AccelcError(f"{path} holds no 'rows' list of objects; pass the file `accelc bench --json` wrote")
    return data
