"""`accelc.finetune`: recover the accuracy a compression pass cost by distilling the original model into the
compressed graph, keeping the compression (zeros, shapes, bit widths), then re-lowering it.

    result = accelc.finetune("build/digits-ch50", dataset="digits", epochs=20, out="build/digits-ch50-rec")
    result.artifact.predict(x); result.stats()          # history, seconds, sparsity/bits before and after

The student is an artifact (its model.onnx; the teacher defaults to its reference.onnx, the graph before the
passes) or an ONNX graph with an explicit teacher (any model `accelc.compile` loads, or an artifact). Teacher logits
are computed once with ONNX Runtime; training runs in torch on an exact translation of the graph
(accelc.recovery.torch_graph), in this process or data-parallel over `nproc` processes (accelc.recovery.distributed).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx

from accelc.errors import AccelcError
from accelc.recovery.fit import FinetuneResult, fit  # noqa: F401 - fit is part of this module's API

if TYPE_CHECKING:  # torch is imported only once there is something to train
    pass

CALIBRATION_SAMPLES = 256  # training inputs that calibrate the re-lowering (fpga fixed-point ranges)


def _open_student(student: Any) -> tuple[onnx.ModelProto, Any]:
    """(graph, artifact or None) from an artifact, an artifact directory, an .onnx path or a ModelProto."""
    from accelc.artifact import MANIFEST, MODEL, Artifact, load

    if isinstance(student, onnx.ModelProto):
        return student, None
    if isinstance(student, Artifact):
        return onnx.load(str(student.path / MODEL)), student
    path = Path(student)
    if path.is_dir() and (path / MANIFEST).exists():
        art = load(path)
        return onnx.load(str(art.path / MODEL)), art
    if path.suffix.lower() == ".onnx" and path.is_file():
        return onnx.load(str(path)), None
    raise AccelcError(f"finetune: the student must be an accelc artifact directory or an .onnx graph, not '{path}' "
                      "(compile the model with its compression passes first)")


def _teacher_graph(teacher: Any, art: Any, input_shape: tuple[int, ...]) -> onnx.ModelProto:
    """The teacher as a canonical float ONNX graph (what `accelc verify` calls the reference)."""
    import onnx_ir as ir

    from accelc.artifact import MANIFEST, REFERENCE, load
    from accelc.frontend import load as load_model
    from accelc.transforms.canonical import Canonicalize

    if teacher is None:
        if art is None:
            raise AccelcError("finetune: give the teacher (the model before compression) for a bare .onnx student")
        if not (art.path / REFERENCE).exists():
            raise AccelcError(f"finetune: {art.path} has no {REFERENCE} (no pass changed its graph, so there is "
                              "nothing to recover); give --teacher explicitly to distil anyway")
        return onnx.load(str(art.path / REFERENCE))
    if isinstance(teacher, onnx.ModelProto):
        return teacher
    if isinstance(teacher, (str, os.PathLike)) and Path(teacher).is_dir() and (Path(teacher) / MANIFEST).exists():
        return onnx.load(str(load(teacher).reference_path))
    loaded = load_model(teacher, input_shape=input_shape)
    Canonicalize()(loaded.model)
    return ir.to_proto(loaded.model)


def teacher_logits(teacher: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    from accelc.reference import Reference

    return np.asarray(Reference(teacher).run([x])[0], dtype=np.float32)


def training_data(student: onnx.ModelProto, dataset: str | None, data: Any, labels: Any
                  ) -> tuple[np.ndarray, np.ndarray | None, str]:
    """(inputs, labels or None, description) from a dataset name, arrays / .npy paths, or a torch Dataset."""
    from accelc.data import load_dataset, load_npy
    from accelc.spec import TensorSpec

    if (dataset is None) == (data is None):
        raise AccelcError("finetune: give one of dataset='digits' (--dataset) and data (--data X.npy)")
    shape = tuple(d.dim_value or 1 for d in student.graph.input[0].type.tensor_type.shape.dim)
    if dataset is not None:
        x, y = load_dataset(dataset, [TensorSpec(student.graph.input[0].name, shape)], split="train")
        return x, y, f"{dataset} training split"
    if hasattr(data, "__getitem__") and hasattr(data, "__len__") and not isinstance(data, (np.ndarray, str,
                                                                                              os.PathLike)):
        items = [data[i] for i in range(len(data))]  # a torch Dataset: (x,) or (x, y) items
        pairs = [it if isinstance(it, (tuple, list)) else (it,) for it in items]
        x = np.stack([np.asarray(p[0], np.float32) for p in pairs])
        y = np.asarray([int(p[1]) for p in pairs]) if len(pairs[0]) > 1 and labels is None else labels
        return x, (None if y is None else np.asarray(y, np.int64)), "a torch Dataset"
    x = load_npy(data) if isinstance(data, (str, os.PathLike)) else np.asarray(data, np.float32)
    y = load_npy(labels).astype(np.int64) if isinstance(labels, (str, os.PathLike)) else labels
    if y is not None and len(y) != len(x):
        raise AccelcError(f"finetune: {len(x)} inputs but {len(y)} labels")
    return x, (None if y is None else np.asarray(y, np.int64)), f"{len(x)} given inputs"


def _quantized_zeros(art: Any) -> bool:
    """Pruned-then-quantized: the manifest says unstructured pruning ran, so integer zeros are pruned weights."""
    passes = art.manifest.get("passes", []) if art is not None else []
    return any(p["name"] == "prune" and p["options"].get("mode") == "unstructured" for p in passes)


# -- the API -------------------------------------------------------------------------------------------------------


def finetune(student: Any, teacher: Any = None, *, dataset: str | None = None, data: Any = None,
             labels: Any = None, epochs: int = 20, batch_size: int = 32, accumulate: int = 1, lr: float = 1e-3,
             alpha: float = 0.5, temperature: float = 4.0, val_split: float = 0.1, patience: int = 3, seed: int = 0,
             nproc: int = 1, nnodes: int = 1, rdzv_endpoint: str | None = None, out: str | Path | None = None,
             target: str | None = None, progress: bool = False, quantized_zeros: bool | None = None,
             threads: int | None = 1) -> FinetuneResult:
    """Fine-tune a compressed graph against its teacher; with `out`, re-lower it into an artifact there.

    `nproc > 1` trains with DistributedDataParallel over torchrun (gloo on CPU, nccl on GPUs); `nnodes` and
    `rdzv_endpoint` extend it over machines (see README). The result's `artifact` is the re-lowered artifact."""
    if accumulate < 1 or batch_size < 1 or epochs < 1 or nproc < 1:
        raise AccelcError("finetune: epochs, batch_size, accumulate and nproc must be >= 1")
    if not 0 <= val_split < 1:
        raise AccelcError(f"finetune: val_split must be in [0, 1), not {val_split}")
    from accelc.recovery.training import TrainOptions

    graph, art = _open_student(student)
    x, y, described = training_data(graph, dataset, data, labels)
    shape = tuple(d.dim_value or 1 for d in graph.graph.input[0].type.tensor_type.shape.dim)
    reference = _teacher_graph(teacher, art, shape)
    t = teacher_logits(reference, x)
    if t.ndim != 2:
        raise AccelcError(f"finetune distils classifier logits (N, classes); the teacher's output is {t.shape}")
    opts = TrainOptions(epochs, batch_size, accumulate, lr, alpha, temperature, val_split, patience, seed, progress,
                        threads)
    qz = _quantized_zeros(art) if quantized_zeros is None else quantized_zeros
    if nproc > 1 or nnodes > 1:
        from accelc.recovery.distributed import launch

        result = launch(graph, x, t, y, opts, qz, nproc, nnodes, rdzv_endpoint)
        if result is None:  # another node held rank 0 and writes the result there
            raise AccelcError("finetune: this node did not hold rank 0; the result is written on the node that did")
    else:
        result = fit(graph, x, t, y, opts, qz)
    result.notes.append(f"trained on {described}" + (" with labels" if y is not None else " (distillation only)"))
    if out is not None:
        result.artifact = relower(result, art, out, target, x[:CALIBRATION_SAMPLES], reference)
    return result


def relower(result: FinetuneResult, art: Any, out: str | Path, target: str | None, calibration: np.ndarray,
            reference: onnx.ModelProto | None = None):
    """Compile the fine-tuned graph for the artifact's target (and options), then write it atomically at `out`
    with the original's reference.onnx and pass records plus a `recover` record: `accelc verify` still compares
    with the model before compression, and a failed build leaves whatever was at `out` untouched."""
    import json
    import shutil

    from accelc.artifact import MANIFEST, REFERENCE, load, write_atomically, write_manifest
    from accelc.driver import compile as compile_model

    target = target or (art.target if art is not None else "cpu")
    options = dict(art.manifest["target"].get("options", {})) if art is not None else {}
    options.pop("qdq_fusion", None)  # decided again by the self-check of the new build
    with tempfile.TemporaryDirectory(prefix="accelc-finetune-") as tmp:
        src = Path(tmp) / "finetuned.onnx"
        onnx.save(result.model, src)
        built = compile_model(src, target=target, out=Path(tmp) / "artifact", calibration=calibration,
                               options=options, force=True)

        def build(dest: Path) -> None:
            shutil.copytree(built.path, dest, dirs_exist_ok=True)
            manifest = json.loads((dest / MANIFEST).read_text())
            if art is not None:
                if (art.path / REFERENCE).exists():
                    shutil.copy2(art.path / REFERENCE, dest / REFERENCE)
                manifest["source"] = art.manifest["source"]
                manifest["passes"] = list(art.manifest.get("passes", []))
            if not (dest / REFERENCE).exists() and reference is not None:
                onnx.save(reference, dest / REFERENCE)  # the teacher: what `accelc verify` compares with
            manifest["cache_key"] = None  # not the product of one compile: never served from the cache
            manifest["passes"] = [*manifest.get("passes", []),
                                  {"name": "recover", "options": result.options, "modified": True,
                                   "seconds": round(result.seconds, 4), "stats": result.stats(),
                                   "warnings": []}]
            write_manifest(dest, manifest)

        write_atomically(Path(out), build)
    return load(out)
