"""`compile --synth`: run the vendor HLS synthesis on the generated project, when the tool is installed.

hls4ml's own `build()` shells out through os.system/Popen(shell=True); accelc runs the same project
script with subprocess.run(check=True), logs captured next to the project, and reads the synthesis
report back with hls4ml's parser.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from accelc.errors import AccelcError, TargetUnavailableError

# backend -> (the tool that must be on PATH, the command hls4ml's generated build_prj.tcl expects)
_OPTS = "reset=0 csim=0 synth=1 cosim=0 validation=0 export=0 vsynth=0 fifo_opt=0"
COMMANDS = {
    "vitis": ("vitis-run", ["vitis-run", "--tcl", "build_prj.tcl", "--mode", "hls"]),
    "vivado": ("vivado_hls", ["vivado_hls", "-f", "build_prj.tcl", _OPTS]),
}


def synthesis_command(backend: str) -> list[str]:
    """The command to synthesize a project of this backend, or a clear error when it cannot run here."""
    if backend not in COMMANDS:
        raise AccelcError(f"--synth supports the vitis and vivado backends, not {backend}")
    tool, command = COMMANDS[backend]
    if shutil.which(tool) is None:
        raise TargetUnavailableError(
            f"--synth needs {tool} on PATH (AMD/Xilinx {'Vitis' if backend == 'vitis' else 'Vivado'} HLS), and it "
            "is not installed here; without it accelc reports its own cost estimates (accelc report), and the "
            "artifact's hls/ project can be synthesized on a machine that has the tools")
    return command


def synthesize(hls_dir: Path, backend: str) -> dict:
    """Run C synthesis in the project directory; returns hls4ml's parsed report (latency, resources)."""
    command = synthesis_command(backend)
    (hls_dir / "build_opt.tcl").write_text("array set opt {\n" + "".join(
        f"    {k} {v}\n" for k, v in (item.split("=") for item in _OPTS.split())) + "}\n")
    with open(hls_dir / "synth_stdout.log", "w") as out, open(hls_dir / "synth_stderr.log", "w") as err:
        try:
            subprocess.run(command, cwd=hls_dir, stdout=out, stderr=err, check=True)
        except subprocess.CalledProcessError as e:
            raise AccelcError(f"HLS synthesis failed (exit {e.returncode}); see {hls_dir / 'synth_stderr.log'}") from e
    from hls4ml.report import parse_vivado_report

    return parse_vivado_report(str(hls_dir)) or {}
