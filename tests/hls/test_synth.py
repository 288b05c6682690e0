"""--synth: vendor HLS synthesis when the tools are there, a clear refusal (before any work) when not."""

from __future__ import annotations

import shutil

import pytest
from torch import nn

import accelc
from accelc.errors import AccelcError, TargetUnavailableError
from accelc.hls.synth import synthesis_command

pytestmark = pytest.mark.skipif(shutil.which("vitis-run") is not None, reason="Vitis is installed: nothing to refuse")


def test_missing_tool_is_named_with_what_to_do() -> None:
    with pytest.raises(TargetUnavailableError, match="vitis-run on PATH.*accelc report"):
        synthesis_command("vitis")
    with pytest.raises(AccelcError, match="supports the vitis and vivado backends"):
        synthesis_command("quartus")


def test_compile_with_synth_fails_before_lowering_and_writes_nothing(tmp_path, monkeypatch) -> None:
    import accelc.hls.lower as lower

    monkeypatch.setattr(lower, "prepare", lambda *a, **k: pytest.fail("lowering started without a synthesis tool"))
    net = nn.Sequential(nn.Linear(4, 3)).eval()
    with pytest.raises(TargetUnavailableError, match="vitis-run"):
        accelc.compile(net, target="fpga", input_shape=(1, 4), options={"synth": True}, out=tmp_path / "a")
    assert not (tmp_path / "a").exists()
