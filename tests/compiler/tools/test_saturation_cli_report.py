"""Saturation on the command line and the report page: `accelc verify`'s "at limits" column, its flag and advice,
its JSON, and the report's per-layer column, for one fpga artifact compiled without calibration data."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

import accelc
from accelc.tools.cli import app
from accelc.tools.report import write_report

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")]

WIDE = {"COLUMNS": "200"}  # rich would otherwise wrap the table at 80 columns


@pytest.fixture(scope="module")
def saturating(tmp_path_factory) -> tuple[accelc.Artifact, Path, np.ndarray]:
    """The tiny CNN (ranges from N(0,1)) and inputs 10x larger, saved as .npy."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 3 * 3, 10)).eval()
    folder = tmp_path_factory.mktemp("sat-cli")
    art = accelc.compile(net, target="fpga", input_shape=(1, 1, 8, 8), out=folder / "cnn")
    x = 10 * np.random.default_rng(3).standard_normal((16, 1, 8, 8)).astype(np.float32)
    np.save(folder / "x10.npy", x)
    return art, folder, x


@pytest.fixture(autouse=True)
def _wide_console(monkeypatch) -> None:
    """The CLI's console took its width when accelc.tools.cli was first imported (80 in a pytest-xdist worker):
    COLUMNS in CliRunner's env comes too late, so widen the console itself."""
    from accelc.tools import cli

    monkeypatch.setattr(cli.out, "width", 200)


def _row(text: str, layer: str) -> str:
    return next(line for line in text.splitlines() if line.startswith(f"│ {layer} "))


def test_cli_verify_shows_the_column_the_flag_and_the_advice(saturating) -> None:
    art, folder, _ = saturating
    conv = next(t["name"] for t in art.runner.trace_layers if t["name"].startswith("Conv2D_"))
    res = CliRunner().invoke(app, ["verify", str(art.path), "--data", str(folder / "x10.npy"), "--json",
                                   str(folder / "r.json")], env=WIDE)
    assert res.exit_code == 0, res.output
    assert "at limits" in res.output
    row = _row(res.output, conv)
    assert "<- saturates here" in row and re.search(r"\d %", row), row
    assert res.output.count("saturates here") == 1
    assert re.search(rf"^layer {conv} saturates \([\d.]+ % of its values at its type's limits \[-8, 7\.99994\]\): "
                     r"its type was sized from seeded N\(0,1\) inputs .*--calibration/--dataset/--input-range\)$",
                     res.output, re.M), res.output
    assert re.search(r"^input 'input' saturates \([\d.]+ % of its values beyond \[-8, 7\.99994\]", res.output, re.M)
    d = json.loads((folder / "r.json").read_text())
    assert d["first_saturating"] == conv and d["inputs_saturated"]["input"] > 0.2
    assert d["per_layer"][0]["layer"] == conv and d["per_layer"][0]["saturated"] > 0

    quiet = CliRunner().invoke(app, ["verify", str(art.path), "--random", "16", "--seed", "5"], env=WIDE)
    assert quiet.exit_code == 0, quiet.output
    assert "at limits" in quiet.output and "saturates" not in quiet.output
    assert _row(quiet.output, conv).split("│")[6].strip() == "0 %"


def test_report_marks_the_first_saturating_layer(saturating) -> None:
    art, folder, x = saturating
    page = write_report(art.path, folder / "big" / "report.html", inputs=x, inputs_label="10 N(0,1)").read_text()
    table = re.search(r'<table id="layer-table".*?</table>', page, re.S).group(0)
    assert "<th class=num>at limits</th>" in table
    marked = re.findall(r'<tr class="layer[^"]*saturating"><td>([^<]+)</td>', table)
    conv = next(t["name"] for t in art.runner.trace_layers if t["name"].startswith("Conv2D_"))
    assert marked == [conv]
    assert re.search(r'<td class=num>[\d.]+ % <span class="tag warn">saturates here</span></td>', table)
    assert f"<th>first saturating layer</th><td>{conv}</td>" in page
    assert f"<li>layer {conv} saturates (" in page and "<li>input &#x27;input&#x27; saturates (" in page

    normal = write_report(art.path, folder / "normal" / "report.html").read_text()  # 16 N(0,1): nothing clips
    assert "<th class=num>at limits</th>" in normal and "<td class=num>0 %</td>" in normal
    assert "saturates here" not in normal and "first saturating layer" not in normal
