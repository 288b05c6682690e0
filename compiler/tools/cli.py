"""The `accelc` command line: compile, verify, run, inspect. An error is `accelc: error: SUMMARY` (plus indented
lines for a refusal of several nodes: one per op and reason, capped; --debug lists every node and the traceback);
exit 2 input, 1 verify (and inspect: a node would be refused)."""

from __future__ import annotations

import json
import logging
import sys
import time
import warnings
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from accelc.errors import AccelcError, AccelcWarning, UnsupportedOpError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="accelc: compile PyTorch/ONNX models for cpu, cuda (ONNX Runtime) and fpga (hls4ml), verified.")
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
_state = {"debug": False}


@app.callback()
def _main(debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks and library logs.")] = False) -> None:
    _state["debug"] = debug
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING, format="accelc: warning: %(message)s")
    # accelc's Python warnings repeat what the CLI prints (manifest warnings) or logs (input ranges).
    warnings.simplefilter("ignore", AccelcWarning)


def _fail(e: Exception) -> None:
    if _state["debug"]:
        if isinstance(e, UnsupportedOpError):  # every node, uncapped, above the traceback (which repeats the cap)
            err.print(f"[bold red]accelc: error:[/] {escape(e.describe(max_groups=None, max_names=None))}",
                      highlight=False)
        raise e
    code = getattr(e, "exit_code", 2)
    err.print(f"[bold red]accelc: error:[/] {escape(str(e))}", highlight=False)
    raise typer.Exit(code)


def _shape(text: str | None):
    if text is None:
        return None
    from accelc.spec import parse_shape

    parts = [p for p in text.split(";") if p.strip()]
    if not parts:
        raise AccelcError(f"invalid input shape '{text}': expected positive integers like 1,1,28,28")
    return [parse_shape(p) for p in parts] if len(parts) > 1 else parse_shape(parts[0])


def _fpga_options(backend, part, clock_period, io_type, strategy, reuse_factor, precision) -> dict:
    opts = {"backend": backend, "part": part, "clock_period": clock_period, "io_type": io_type,
            "strategy": strategy, "reuse_factor": reuse_factor, "precision": precision}
    return {k: v for k, v in opts.items() if v is not None}


@app.command()
def compile(  # noqa: A001
    model: Annotated[Path, typer.Argument(help=".onnx, .pt (TorchScript) or .pt2 (torch.export) file")],
    target: Annotated[str, typer.Option("--target", "-t", help="cpu | cuda | fpga")] = "cpu",
    input_shape: Annotated[str | None, typer.Option(help="e.g. 1,1,28,28 (';' between several inputs)")] = None,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="artifact directory")] = None,
    pass_: Annotated[list[str] | None, typer.Option("--pass", help="NAME[:k=v,...], repeatable")] = None,
    prune: Annotated[float | None, typer.Option(help="shortcut for --pass prune:sparsity=X "
                                                          "(channels: --pass prune:mode=channel,ratio=R)")] = None,
    quantize: Annotated[str | None, typer.Option(help="shortcut for --pass quantize:MODE")] = None,
    depthwise: Annotated[bool, typer.Option(help="shortcut for --pass depthwise (factorize KxK convs "
                                                     "into depthwise + pointwise within tol)")] = False,
    calibration: Annotated[Path | None, typer.Option(help=".npy calibration inputs")] = None,
    dataset: Annotated[str | None, typer.Option(help="calibrate on a dataset's training split: digits")] = None,
    input_range: Annotated[str | None, typer.Option(help="without data: the range inputs take, LO,HI (e.g. 0,255; "
                                                         "';' between inputs): the fixed-point types hold it")] = None,
    min_agreement: Annotated[float | None, typer.Option(help="budget of the lossy passes (prune, depthwise, "
                                                             "quantize): least top-1 agreement kept (default 0.9)")] \
        = None,
    strict: Annotated[bool, typer.Option("--strict", help="fail (exit 1) instead of warning when a lossy pass "
                                         "falls below its budget")] = False,
    fpga_backend: Annotated[str | None, typer.Option(help="vitis | vivado | quartus | oneapi | catapult")] = None,
    part: Annotated[str | None, typer.Option(help="FPGA part number")] = None,
    clock_period: Annotated[float | None, typer.Option(help="clock period in ns")] = None,
    io_type: Annotated[str | None, typer.Option(help="parallel | stream (default: by model)")] = None,
    strategy: Annotated[str | None, typer.Option(help="latency | resource (default: by layer size)")] = None,
    reuse_factor: Annotated[int | None, typer.Option(help="hls4ml reuse factor")] = None,
    precision: Annotated[str | None, typer.Option(help="blanket hls4ml type, e.g. 'fixed<16,6>' "
                                                            "(default: per-layer types from ranges)")] = None,
    synth: Annotated[bool, typer.Option(help="fpga: also run vendor HLS synthesis (needs vitis-run/vivado_hls)")] \
        = False,
    allow_fallback: Annotated[bool, typer.Option(help="cuda: run on CPU when the CUDA provider is absent")] = False,
    trust_pickle: Annotated[bool, typer.Option(help="allow loading a pickled nn.Module (runs its code!)")] = False,
    self_check: Annotated[str, typer.Option(help="error | warn | off: compare with the float reference")] = "error",
    force: Annotated[bool, typer.Option(help="ignore the cache and rebuild")] = False,
    engine: Annotated[str | None, typer.Option(help="fpga: auto (build the C simulation and check the numpy "
                                               "engine against it bit for bit) | numpy (the engine alone, no g++) "
                                               "| csim (the C simulation alone)")] = None,
) -> None:
    """Compile MODEL for a target into an artifact directory, then self-check it against the float model."""
    import accelc
    from accelc.data import load_npy

    try:
        passes = list(pass_ or [])
        if prune is not None:
            passes.append(f"prune:sparsity={prune}")
        if quantize:
            passes.append(f"quantize:{quantize}")
        if depthwise:
            passes.append("depthwise")
        options = _fpga_options(fpga_backend, part, clock_period, io_type, strategy, reuse_factor, precision) \
            if target == "fpga" else {}
        if allow_fallback:
            options["allow_fallback"] = True
        if synth:
            if target != "fpga":
                raise AccelcError("--synth is for --target fpga (vendor HLS synthesis of the generated project)")
            options["synth"] = True
        if calibration and dataset:
            raise AccelcError("give one of --calibration and --dataset")
        calib = load_npy(calibration) if calibration else dataset
        start = time.perf_counter()
        with err.status(f"compiling {escape(str(model))} for {target} ..."):
            art = accelc.compile(model, target=target, input_shape=_shape(input_shape), passes=passes, out=output,
                                 calibration=calib, options=options, trust_pickle=trust_pickle,
                                 self_check=self_check, force=force, input_range=input_range,
                                 min_agreement=min_agreement, strict=strict, engine=engine)
        seconds = time.perf_counter() - start
    except AccelcError as e:
        _fail(e)
    tgt = art.manifest["target"]
    for warning in art.manifest.get("warnings", []):
        err.print(f"[yellow]accelc: warning:[/] {escape(warning)}")
    if tgt.get("fallback"):
        err.print("[yellow]accelc: warning:[/] cuda provider unavailable: this artifact runs on CPU (--allow-fallback)")
    check = art.manifest.get("self_check")
    for record in art.manifest.get("passes", []):
        if record["stats"].get("summary"):
            out.print(f"  pass {escape(record['name'])}: {escape(record['stats']['summary'])}")
        for warning in record.get("warnings", []):
            err.print(f"[yellow]accelc: warning:[/] {escape(record['name'])}: {escape(warning)}")
    out.print(f"[green]compiled[/] {escape(str(model))} -> {escape(str(art.path))} (target {art.target}, "
              f"{seconds:.1f} s)")
    if check:
        agree = check.get("top1_agreement")
        outputs = check.get("outputs") or []
        worst = max((o["rel_rmse"] for o in outputs), default=0.0)
        out.print(f"  self-check on {escape(check.get('inputs') or str(check['samples']) + ' inputs')}: "
                  f"{len(outputs)} output(s), max abs err {check['max_abs_err']:.3g}, RMSE/spread {worst:.3g}"
                  + (f", top-1 agreement {agree:.3f}" if agree is not None else "")
                  + ("" if check["passed"] else " [red](FAILED)[/]"))
        if check.get("source"):
            src = max(o["rel_rmse"] for o in check["source"])
            out.print(f"  source model vs canonical graph: RMSE/spread {src:.3g}")
        elif check.get("source_note"):
            out.print(f"  source model not compared: {escape(check['source_note'])}")


def _verify_inputs(art, data: Path | None, random: int | None, dataset: str | None, seed: int):
    """Inputs and labels, and what they are: by default the calibration sample the artifact keeps, else rows of
    its input distribution (declared range or N(0,1)) of a seed distinct from the one that set its ranges."""
    from accelc.check.inputs import default_inputs, describe_default
    from accelc.data import load_dataset, load_npy

    given = [x is not None for x in (data, random, dataset)]
    if sum(given) > 1:
        raise AccelcError("give one of --data, --random, --dataset")
    if dataset:
        return *load_dataset(dataset, art.inputs), f"dataset '{dataset}' (test split)"
    if data:
        return load_npy(data), None, str(data)
    xs = default_inputs(art, random, seed)
    return (xs if len(xs) > 1 else xs[0]), None, describe_default(art, random)


@app.command()
def verify(
    artifact: Annotated[Path, typer.Argument(help="artifact directory")],
    data: Annotated[Path | None, typer.Option(help=".npy inputs (N, ...) in the source layout")] = None,
    random: Annotated[int | None, typer.Option(help="N seeded random inputs: uniform in the declared input range, "
                                                    "else N(0,1), never those that set the ranges")] = None,
    dataset: Annotated[str | None, typer.Option(help="'digits' (scikit-learn load_digits test split)")] = None,
    atol: Annotated[float | None, typer.Option(help="fail (exit 1) when max abs error exceeds this")] = None,
    min_agreement: Annotated[float | None, typer.Option(help="fail (exit 1) below this top-1 agreement")] = None,
    seed: Annotated[int, typer.Option(help="seed for --random")] = 0,
    per_layer: Annotated[bool, typer.Option(help="per-layer error table (fpga)")] = True,
    json_out: Annotated[Path | None, typer.Option("--json", help="write the report as JSON")] = None,
    engine: Annotated[str | None, typer.Option(help="fpga: what runs the artifact: auto (the numpy engine, "
                                               "bit-exact with the C simulation, where it runs every layer) | "
                                               "numpy | csim (hls4ml's C simulation)")] = None,
) -> None:
    """Compare ARTIFACT with the float reference: max abs error, RMSE, cosine, top-1 agreement, per layer."""
    import accelc

    try:
        art = accelc.load(artifact, engine=engine)
        x, labels, described = _verify_inputs(art, data, random, dataset, seed)
        report = accelc.verify(art, x, labels=labels, atol=atol, min_agreement=min_agreement, per_layer=per_layer)
    except AccelcError as e:
        _fail(e)
    table = Table(title=f"{art.path} ({art.target}) vs float reference, {report.samples} inputs: {escape(described)}")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_row("max abs error", f"{report.max_abs_err:.4g}")
    table.add_row("RMSE", f"{report.rmse:.4g}")
    table.add_row("cosine similarity", f"{report.cosine:.6f}")
    if report.top1_agreement is not None:
        table.add_row("top-1 agreement", f"{report.top1_agreement:.4f}")
    if report.accuracy_reference is not None:
        table.add_row("accuracy (float reference)", f"{report.accuracy_reference:.4f}")
        table.add_row(f"accuracy ({art.target})", f"{report.accuracy_artifact:.4f}")
    if report.source is not None:  # a QONNX source: qonnx's executor on the file as given
        table.add_row("max abs error vs qonnx executor", f"{report.source['max_abs_err']:.4g}")
        table.add_row("outputs equal to the executor's", f"{100 * report.source['exact_fraction']:.1f} %")
    if art.target == "fpga":
        table.add_row("run by", art.runner.description)
    out.print(table)
    if report.per_layer:
        from accelc.check.fidelity import percent, saturation_lines

        lt = Table(title="per layer (hls4ml trace vs ONNX node outputs)")
        lt.add_column("layer", min_width=min(40, max(len(r.layer) for r in report.per_layer)))
        for col in ("onnx node", "shape", "max abs err", "rel err", "at limits", ""):
            lt.add_column(col, justify="right" if col == "at limits" else "left")
        for row in report.per_layer:
            saturates = row.layer == report.first_saturating
            flag = {(True, True): "<- saturates here, error jumps here", (True, False): "<- error jumps here",
                    (False, True): "<- saturates here"}.get((row.jump, saturates), "")
            lt.add_row(row.layer, row.onnx_node or "", "x".join(map(str, row.shape)), f"{row.max_abs_err:.3g}",
                       f"{row.rel_err:.3g}", "-" if row.saturated is None else percent(row.saturated),
                       f"[red]{flag}[/]" if flag else "")
        out.print(lt)
        for line in saturation_lines(report, art.manifest):
            out.print(f"[yellow]{escape(line)}[/]")
    if json_out:
        json_out.write_text(json.dumps(report.to_dict(), indent=2))
    if not report.passed:
        err.print(f"[bold red]accelc: verification failed:[/] {escape('; '.join(report.violations))}")
        raise typer.Exit(1)
    if atol is not None or min_agreement is not None:
        out.print("[green]verification passed[/]")


@app.command()
def run(
    artifact: Annotated[Path, typer.Argument(help="artifact directory")],
    input: Annotated[Path, typer.Argument(help=".npy input (N, ...) or one sample")],  # noqa: A002
    output: Annotated[Path | None, typer.Option("-o", "--output", help=".npy file for the output")] = None,
    strict: Annotated[bool, typer.Option("--strict", help="fail (exit 2) instead of warning when inputs leave the "
                                         "range the artifact's fixed-point input types hold")] = False,
    engine: Annotated[str | None, typer.Option(help="fpga: what runs the artifact: auto (the numpy engine, "
                                               "bit-exact with the C simulation, where it runs every layer) | "
                                               "numpy | csim (hls4ml's C simulation)")] = None,
) -> None:
    """Run ARTIFACT on INPUT (.npy) and save or print the output."""
    import numpy as np

    import accelc
    from accelc.data import load_npy

    try:
        art = accelc.load(artifact, engine=engine)
        y = art.predict(load_npy(input), strict=strict)
    except AccelcError as e:
        _fail(e)
    ys = y if isinstance(y, list) else [y]
    if output:
        np.save(output, ys[0])
        for k, extra in enumerate(ys[1:], 1):
            np.save(output.with_name(f"{output.stem}_{k}{output.suffix}"), extra)
        out.print(f"wrote {output} {tuple(ys[0].shape)}")
    else:
        np.set_printoptions(precision=5, suppress=True, linewidth=120)
        for v in ys:
            out.print(v)


@app.command()
def inspect(
    model: Annotated[Path, typer.Argument(help="model file or artifact directory")],
    input_shape: Annotated[str | None, typer.Option(help="e.g. 1,1,28,28 (for .pt files)")] = None,
    target: Annotated[str | None, typer.Option("--target", "-t", help="only this target's support")] = None,
    trust_pickle: Annotated[bool, typer.Option(help="allow loading a pickled nn.Module")] = False,
) -> None:
    """Ops, shapes, params, MACs and per-target support of a model (every refused node listed); or what an
    artifact holds. Exits 1 when a checked target (every target, or just --target) would refuse a node."""
    from accelc.tools.inspect import inspect_artifact, inspect_model

    supported = True
    try:
        if model.is_dir():
            inspect_artifact(model, out)
        else:
            supported = inspect_model(model, _shape(input_shape), target, trust_pickle, out)
    except AccelcError as e:
        _fail(e)
    if not supported:
        raise typer.Exit(1)


@app.command()
def bench(
    model: Annotated[Path, typer.Argument(help=".onnx, .pt (TorchScript) or .pt2 file")],
    input_shape: Annotated[str | None, typer.Option(help="e.g. 1,1,28,28")] = None,
    dataset: Annotated[str | None, typer.Option(help="digits: accuracy on its test split, calibration on train")] \
        = None,
    calibration: Annotated[Path | None, typer.Option(help=".npy calibration inputs (for the int8 variants)")] = None,
    batch: Annotated[str, typer.Option(help="batch sizes, e.g. 1,32")] = "1,32",
    targets: Annotated[str, typer.Option(help="which targets' variants: cpu,fpga,cuda")] = "cpu,fpga,cuda",
    output: Annotated[Path | None, typer.Option("-o", "--output", help="directory for the variants' artifacts")] \
        = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="write the results as JSON")] = None,
    markdown: Annotated[Path | None, typer.Option(help="write the table as markdown")] = None,
) -> None:
    """Time every variant (torch eager, ORT fp32/int8/pruned, the fpga artifact by the numpy engine and by the C
    simulation with its hardware estimate, cuda) side by side in one run."""
    import json

    from accelc.data import load_npy
    from accelc.tools.bench import bench as run_bench
    from accelc.tools.bench import print_terminal, to_markdown

    try:
        batches = tuple(int(b) for b in batch.split(",") if b.strip())
        if not batches or min(batches) < 1:
            raise ValueError
    except ValueError:
        _fail(AccelcError(f"--batch takes positive integers like 1,32, not {batch!r}"))
    chosen = {t.strip() for t in targets.split(",") if t.strip()}
    if chosen - {"cpu", "fpga", "cuda"} or "cpu" not in chosen:
        _fail(AccelcError(f"--targets takes cpu plus any of fpga, cuda (cpu is the reference), not {targets!r}"))
    try:
        calib = load_npy(calibration) if calibration else None
        from rich.progress import Progress

        progress = Progress(console=err, transient=True)  # progress on stderr: stdout is the table
        result = run_bench(model, _shape(input_shape), dataset, calib, batches, tuple(sorted(chosen)), output,
                           progress)
    except AccelcError as e:
        _fail(e)
    print_terminal(out, result)  # short columns, notes as footnotes; --json / --markdown hold every figure
    if json_out:
        json_out.write_text(json.dumps(result, indent=2))
    if markdown:
        markdown.write_text(to_markdown(result))


@app.command()
def report(
    artifact: Annotated[Path, typer.Argument(help="artifact directory")],
    output: Annotated[Path | None, typer.Option("-o", "--output", help="HTML file (default: in the artifact)")] = None,
    bench: Annotated[Path | None, typer.Option(help="`accelc bench --json` results to include")] = None,
    data: Annotated[Path | None, typer.Option(help=".npy inputs for the error figures")] = None,
    dataset: Annotated[str | None, typer.Option(help="digits: its test split for the error figures")] = None,
    engine: Annotated[str | None, typer.Option(help="fpga: what runs the artifact: auto (the numpy engine, "
                                               "bit-exact with the C simulation, where it runs every layer) | "
                                               "numpy | csim (hls4ml's C simulation)")] = None,
) -> None:
    """One self-contained HTML page for an artifact: layers, errors, weights vs fixed-point ranges, passes."""
    from accelc.artifact import load
    from accelc.tools.report import write_report

    try:
        x, label = None, None
        if data or dataset:
            x, _, described = _verify_inputs(load(artifact, engine=engine), data, None, dataset, 0)
            x, label = x[:64], f"{min(len(x), 64)} inputs from {described}"
        path = write_report(artifact, output, bench, x, label, engine=engine)
    except AccelcError as e:
        _fail(e)
    out.print(f"[green]report[/] {escape(str(path))}")


@app.command()
def finetune(
    student: Annotated[Path, typer.Argument(help="compressed artifact directory (or .onnx graph with --teacher)")],
    output: Annotated[Path, typer.Option("-o", "--output", help="directory for the re-lowered artifact")],
    teacher: Annotated[Path | None, typer.Option(help="model before compression (default: the artifact's "
                                                      "reference.onnx)")] = None,
    dataset: Annotated[str | None, typer.Option(help="train on a dataset's training split: digits")] = None,
    data: Annotated[Path | None, typer.Option(help=".npy training inputs (N, ...)")] = None,
    labels: Annotated[Path | None, typer.Option(help=".npy labels for --data (adds cross-entropy)")] = None,
    epochs: Annotated[int, typer.Option(help="at most this many epochs")] = 20,
    batch_size: Annotated[int, typer.Option(help="samples per micro-batch (per process)")] = 32,
    accumulate: Annotated[int, typer.Option(help="micro-batches per optimizer step (effective batch N x batch)")] = 1,
    lr: Annotated[float, typer.Option(help="Adam learning rate")] = 1e-3,
    alpha: Annotated[float, typer.Option(help="weight of the distillation term (1 - alpha: cross-entropy)")] = 0.5,
    temperature: Annotated[float, typer.Option(help="distillation temperature T (KL x T^2)")] = 4.0,
    val_split: Annotated[float, typer.Option(help="fraction held out for early stopping (0: none)")] = 0.1,
    patience: Annotated[int, typer.Option(help="epochs without a better validation loss before stopping")] = 3,
    seed: Annotated[int, typer.Option(help="seed for the split, shuffling and initial state")] = 0,
    nproc: Annotated[int, typer.Option(help="data-parallel processes (torchrun; gloo on CPU, nccl on GPUs)")] = 1,
    nnodes: Annotated[int, typer.Option(help="machines taking part (each runs this same command)")] = 1,
    rdzv_endpoint: Annotated[str | None, typer.Option(help="HOST:PORT of the rendezvous, for --nnodes > 1")] = None,
    target: Annotated[str | None, typer.Option("--target", "-t", help="default: the artifact's target")] = None,
) -> None:
    """Recover accuracy after compression: distil the teacher into STUDENT, keep its compression, re-lower."""
    import accelc

    try:
        if data is None and dataset is None:
            raise AccelcError("give training data: --dataset digits or --data X.npy [--labels Y.npy]")
        result = accelc.finetune(student, teacher, dataset=dataset, data=data, labels=labels, epochs=epochs,
                                 batch_size=batch_size, accumulate=accumulate, lr=lr, alpha=alpha,
                                 temperature=temperature, val_split=val_split, patience=patience, seed=seed,
                                 nproc=nproc, nnodes=nnodes, rdzv_endpoint=rdzv_endpoint, out=output,
                                 target=target, progress=True)
    except AccelcError as e:
        _fail(e)
    stats = result.stats()
    out.print(f"  recover: {escape(stats['summary'])}")
    for row in result.history:
        extra = "".join(f", {k} {row[k]:.4f}" for k in ("val_loss", "val_accuracy", "val_agreement") if k in row)
        out.print(f"    epoch {row['epoch']}: train loss {row['train_loss']:.4f}{extra}")
    check = result.artifact.manifest.get("self_check", {})
    out.print(f"[green]fine-tuned[/] {escape(str(student))} -> {escape(str(result.artifact.path))} "
              f"(target {result.artifact.target}; self-check max abs err {check.get('max_abs_err', float('nan')):.3g})")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        err.print("accelc: interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
