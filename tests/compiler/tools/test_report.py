"""`accelc report`: the HTML page for a cpu and an fpga artifact, its PNG plots, and a real browser rendering it."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import onnx
import pytest
import torch
from PIL import Image
from torch import nn
from typer.testing import CliRunner

import accelc
from accelc.errors import AccelcError
from accelc.hls.cost import estimate
from accelc.tools.cli import app
from accelc.tools.report import write_report

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _tiny_cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 3 * 3, 10)).eval()


def _layer_rows(page: str) -> int:
    table = re.search(r'<table id="layer-table".*?</table>', page, re.S)
    assert table, "no per-layer table"
    return len(re.findall(r'<tr class="layer[ "]', table.group(0)))


def _images(page: str, folder: Path) -> list[Path]:
    paths = [folder / unquote(src) for src in re.findall(r'<img class="plot" src="([^"]+)"', page)]
    for path in paths:
        data = path.read_bytes()
        assert data.startswith(PNG_MAGIC), f"{path} is not a PNG"
        with Image.open(path) as im:
            im.verify()
    return paths


def _browser() -> str | None:
    return next((found for name in BROWSERS if (found := shutil.which(name))), None)


def _screenshot(page: Path, tmp_path: Path) -> Image.Image:
    """Render the page in headless Chromium; skip (only) when no Chromium binary is installed."""
    browser = _browser()
    if browser is None:
        pytest.skip("no chromium binary found on PATH (install Debian's `chromium` package; .ci/run tries to)")
    shot = tmp_path / "shot.png"
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
           f"--user-data-dir={tmp_path / 'chromium-profile'}", f"--screenshot={shot}", "--window-size=1280,2000",
           page.resolve().as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert shot.exists(), f"chromium wrote no screenshot (exit {proc.returncode}): {proc.stderr[-2000:]}"
    im = Image.open(shot).convert("RGB")
    assert im.size == (1280, 2000)
    colours = im.getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 50, "the screenshot is (nearly) blank"
    pixels = np.asarray(im)
    assert np.mean(np.any(pixels < 200, axis=-1)) > 0.01, "hardly any text or graphics were drawn"
    return im


def test_cpu_report_renders_in_a_browser(tmp_path: Path):
    art = accelc.compile(_tiny_cnn(), target="cpu", input_shape=(1, 1, 8, 8), passes=["prune:sparsity=0.5"],
                         out=tmp_path / 'cnn <cpu> & "q"')
    bench = tmp_path / "bench.json"
    bench.write_text(json.dumps({"baseline": "torch eager", "rows": [
        {"variant": "ort fp32", "batch": 1, "ms": 0.12, "note": "<b>not bold</b>"},
        {"variant": "ort int8", "batch": 1, "ms": 0.08, "speedup": 1.5}]}))
    path = write_report(art.path, None, bench)
    assert path == art.path / "report.html"
    page = path.read_text()
    nodes = len(onnx.load(str(art.path / "model.onnx")).graph.node)
    assert _layer_rows(page) == nodes == 5
    # every inserted text is escaped: the artifact's own name, the bench rows
    assert 'cnn <cpu> & "q"' not in page and "cnn &lt;cpu&gt; &amp; &quot;q&quot;" in page
    assert "<b>not bold</b>" not in page and "&lt;b&gt;not bold&lt;/b&gt;" in page
    assert "ort int8" in page and "speedup" in page and "torch eager" in page
    # passes with their summary and warnings, the self-check, per-node errors (reference.onnx exists)
    prune = art.manifest["passes"][0]
    assert prune["stats"]["summary"].replace("->", "-&gt;") in page
    assert "Self-check" in page and "passed" in page
    rel = re.findall(r"<td class=num>([0-9.e+-]+)</td></tr>", page.split('id="layer-table"')[1].split("</table>")[0])
    assert len(rel) == nodes  # the error columns are filled for every node both graphs have
    images = _images(page, path.parent)
    assert sorted(p.name for p in images) == ["report-errors.png", "report-weights.png"]

    # the CLI, with -o elsewhere: the plots go next to the page
    out = tmp_path / "elsewhere" / "page.html"
    result = CliRunner().invoke(app, ["report", str(art.path), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert (out.parent / "page-errors.png").exists() and (out.parent / "page-weights.png").exists()
    _screenshot(path, tmp_path)  # last: it skips the test where no Chromium is installed


def test_report_refusals(tmp_path: Path):
    with pytest.raises(AccelcError, match="not an accelc artifact"):
        write_report(tmp_path)
    with pytest.raises(AccelcError, match="not a directory"):
        write_report(tmp_path / "missing")
    (tmp_path / "bad.json").write_text('{"no_rows": 1}')
    art = accelc.compile(_tiny_cnn(), target="cpu", input_shape=(1, 1, 8, 8), out=tmp_path / "art")
    with pytest.raises(AccelcError, match="'rows'"):
        write_report(art.path, tmp_path / "r.html", tmp_path / "bad.json")
    with pytest.raises(AccelcError, match="no such bench file"):
        write_report(art.path, tmp_path / "r.html", tmp_path / "nope.json")
    result = CliRunner().invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 2 and "not an accelc artifact" in result.output
    # no passes: no reference.onnx, so no per-node error column and no error plot, but the page is complete
    page = write_report(art.path).read_text()
    assert "no reference.onnx" in page and "report-errors.png" not in page and "report-weights.png" in page


@pytest.mark.slow
def test_fpga_report_renders_in_a_browser(tmp_path: Path):
    """One fpga compile: per traced layer rows, error and weight plots, cost estimate, and a screenshot."""
    art = accelc.compile(_tiny_cnn(), target="fpga", input_shape=(1, 1, 8, 8), out=tmp_path / "cnn-fpga")
    path = write_report(art.path, tmp_path / "out" / "report.html")
    page = path.read_text()
    trace = art.runner.trace_layers
    assert _layer_rows(page) == len(trace)
    for layer in trace:
        assert f"<td>{layer['name']}</td>" in page
    assert "fixed&lt;18," in page and "fixed<18," not in page  # per-layer precision, escaped
    images = _images(page, path.parent)
    assert sorted(p.name for p in images) == ["report-errors.png", "report-weights.png"]
    with Image.open(path.parent / "report-weights.png") as im:
        assert im.size[0] >= 800  # two weighted layers side by side
    # the cost section carries hls/cost.py's totals and the manifest's multipliers
    est = estimate(art.path, art.manifest)
    assert "FPGA cost estimate" in page and f"<td class=num>{est['totals']['dsps']:,}</td>" in page
    assert html.escape(est["note"]) in page
    assert "multipliers in the generated HLS" in page
    assert "Fidelity vs the float reference" in page and "could not be run" not in page
    _screenshot(path, tmp_path)  # last: it skips the test where no Chromium is installed
