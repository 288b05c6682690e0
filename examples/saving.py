"""Write example model files so that re-running a script leaves unchanged models untouched.

TorchScript archives are not byte-reproducible (each carries a random ``serialization_id`` and
orders some class attributes by hash), so a rerun would churn the committed files. Here a file is
rewritten only when what it holds differs: the weights, or the code of some submodule.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import torch
from torch import nn


def _same_script(a: torch.jit.ScriptModule, b: torch.jit.ScriptModule) -> bool:
    """True when both modules have identical tensors (state and buffers) and forward code."""
    sa, sb = a.state_dict(), b.state_dict()
    if sa.keys() != sb.keys() or any(not torch.equal(sa[k], sb[k]) for k in sa):
        return False
    ma, mb = dict(a.named_modules()), dict(b.named_modules())
    return ma.keys() == mb.keys() and all(ma[k].code == mb[k].code for k in ma)


def save_torchscript(model: nn.Module, path: Path, example: torch.Tensor) -> bool:
    """Save ``model`` (in eval mode) as TorchScript at ``path``; return False if it was up to date.

    The model is scripted, or traced with ``example`` where scripting fails.
    """
    model = model.eval()
    try:
        module = torch.jit.script(model)
    except Exception:  # any scripting failure: tracing still captures these static models
        module = torch.jit.trace(model, example)
    if path.exists():
        try:
            if _same_script(torch.jit.load(str(path)), module):
                return False
        except RuntimeError:  # unreadable or foreign file: overwrite it
            pass
    path.parent.mkdir(parents=True, exist_ok=True)
    module.save(str(path))
    return True


def export_onnx(model: nn.Module, path: Path, example: torch.Tensor, opset: int = 13) -> bool:
    """Export ``model`` to ONNX with a dynamic batch axis; return False if the file was up to date.

    Uses the legacy TorchScript-based exporter (``dynamo=False``): its output is a plain,
    byte-reproducible opset-``opset`` graph with named ``input``/``output``.
    """
    buf = io.BytesIO()
    with warnings.catch_warnings():
        # The legacy exporter is chosen on purpose; its deprecation notice is noise here.
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            model.eval(),
            (example,),
            buf,
            dynamo=False,
            opset_version=opset,
            input_names=["input"],
            output_names=["output"],
            dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
        )
    data = buf.getvalue()
    if path.exists() and path.read_bytes() == data:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return True


def report(path: Path, written: bool, root: Path) -> None:
    """Print one line saying whether ``path`` was written or left as it was, with its size."""
    verb = "wrote" if written else "unchanged"
    print(f"{verb:9} {path.relative_to(root)} ({path.stat().st_size:,} bytes)")
