"""Data-parallel fine-tuning: `launch` starts torchrun (torch.distributed.run) and this module is each rank's entry.

    python -m torch.distributed.run --standalone --nproc-per-node K -m accelc.recovery.distributed JOBDIR

The job directory holds the student graph, the inputs with their teacher logits (and labels) and the options;
each rank trains with DistributedDataParallel (gloo on CPU, nccl when CUDA is there), a DistributedSampler gives
it its shard, and only rank 0 writes the result back into the job directory. Before writing, rank 0 gathers every
rank's final weights and records the largest difference: data parallelism means they are equal. Across machines,
every node runs the same command with --nnodes N and one c10d rendezvous endpoint (see README); the node that
holds rank 0 gets the result.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

import numpy as np
import onnx

from accelc.errors import AccelcError
from accelc.recovery.fit import FinetuneResult, fit
from accelc.recovery.training import TrainOptions, World

RESULT_GRAPH, RESULT_JSON = "result.onnx", "result.json"


def launch(student: onnx.ModelProto, x: np.ndarray, teacher: np.ndarray, labels: np.ndarray | None,
           opts: TrainOptions, quantized_zeros: bool, nproc: int, nnodes: int = 1,
           rdzv_endpoint: str | None = None) -> FinetuneResult | None:
    """Run `fit` on nproc processes per node via torchrun; the result on the node holding rank 0, else None."""
    if nnodes > 1 and not rdzv_endpoint:
        raise AccelcError("finetune: --nnodes > 1 needs --rdzv-endpoint HOST:PORT (the same on every node)")
    with tempfile.TemporaryDirectory(prefix="accelc-ddp-") as tmp:
        job = Path(tmp)
        onnx.save(student, job / "student.onnx")
        arrays = {"x": x, "teacher": teacher} | ({"labels": labels} if labels is not None else {})
        np.savez(job / "data.npz", **arrays)
        (job / "job.json").write_text(json.dumps({"options": opts.to_dict(), "quantized_zeros": quantized_zeros}))
        rdzv = (["--standalone"] if nnodes == 1 else
                ["--nnodes", str(nnodes), "--rdzv-backend", "c10d", "--rdzv-endpoint", rdzv_endpoint,
                 "--rdzv-id", "accelc-finetune"])
        cmd = [sys.executable, "-m", "torch.distributed.run", *rdzv, "--nproc-per-node", str(nproc),
               "-m", "accelc.recovery.distributed", str(job)]
        # The progress bar is rank 0's stderr: let it through when asked for, else keep the log for errors.
        done = subprocess.run(cmd, check=False, text=True, stdout=subprocess.PIPE,
                              stderr=None if opts.progress else subprocess.PIPE)
        if done.returncode != 0:
            tail = "\n".join((done.stderr or done.stdout or "").strip().splitlines()[-6:])
            raise AccelcError(f"finetune: torchrun with {nproc} process(es) failed (exit {done.returncode}): {tail}")
        if not (job / RESULT_JSON).exists():
            return None
        meta = json.loads((job / RESULT_JSON).read_text())
        return FinetuneResult(model=onnx.load(str(job / RESULT_GRAPH)), **meta)


def _flat_weights(model: onnx.ModelProto, names: list[str]):
    import torch

    arrays = {i.name: onnx.numpy_helper.to_array(i) for i in model.graph.initializer}
    return torch.cat([torch.from_numpy(arrays[n].astype(np.float64).ravel()) for n in names])


def main(argv: list[str]) -> None:
    """One rank: read the job, train under DDP, check the ranks agree, rank 0 writes the result."""
    import torch
    import torch.distributed as dist

    job = Path(argv[0])
    spec = json.loads((job / "job.json").read_text())
    data = np.load(job / "data.npz")
    cuda = torch.cuda.is_available()
    dist.init_process_group("nccl" if cuda else "gloo")
    rank, size = dist.get_rank(), dist.get_world_size()
    local = int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device("cuda", local) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    opts = TrainOptions(**spec["options"])
    opts.progress = opts.progress and rank == 0
    student = onnx.load(str(job / "student.onnx"))
    labels = data["labels"] if "labels" in data.files else None
    result = fit(student, data["x"], data["teacher"], labels, opts, spec["quantized_zeros"], World(rank, size, device))
    trained = [i.name for i in result.model.graph.initializer if i.name in result.compression["after"]["layers"]]
    mine = _flat_weights(result.model, trained).to(device)
    everyone = [torch.zeros_like(mine) for _ in range(size)]
    dist.all_gather(everyone, mine)
    result.nproc = size
    result.rank_weight_max_diff = max(float((w - everyone[0]).abs().max()) for w in everyone)
    if rank == 0:
        onnx.save(result.model, job / RESULT_GRAPH)
        meta = {k: v for k, v in asdict(result).items() if k not in ("model", "artifact")}
        (job / RESULT_JSON).write_text(json.dumps(meta))
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1:])
