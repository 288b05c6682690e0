"""The fine-tuning loop: distillation to precomputed teacher logits, gradient accumulation, masks, early stop.

One loop for one process and for DistributedDataParallel (recovery.distributed): with a `World`, the module is the
DDP wrapper, a DistributedSampler shards the training set, gradients are all-reduced only on the last micro-batch
of each accumulation group (`no_sync` before it), and every rank evaluates the same validation set, so every rank
takes the same early-stop decision. The effective batch is batch_size x accumulate x world size.
"""

from __future__ import annotations

import contextlib
import copy
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from accelc.recovery.distill import distillation_loss
from accelc.recovery.masks import apply_masks, mask_gradients
from accelc.recovery.torch_graph import GraphModule


@dataclass
class TrainOptions:
    epochs: int = 20
    batch_size: int = 32
    accumulate: int = 1
    lr: float = 1e-3
    alpha: float = 0.5  # weight of the distillation term; 1 - alpha weighs cross-entropy (with labels)
    temperature: float = 4.0
    val_split: float = 0.1  # held out for early stopping; 0 trains on everything, no early stop
    patience: int = 3  # epochs without a better validation loss before stopping
    seed: int = 0
    progress: bool = False
    # Threads per process. Small graphs train fastest on one: the digits CNN took 10 ms per step on 1 thread and
    # 91 ms on 2 on this 2-core machine under load (thread hand-offs dominate tiny kernels). None: torch's default.
    threads: int | None = 1

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class World:
    """This process's place in a distributed run."""

    rank: int
    size: int
    device: torch.device


@dataclass
class History:
    epochs: list[dict] = field(default_factory=list)
    best_epoch: int = 0
    stopped_early: bool = False
    steps: int = 0
    seconds: float = 0.0


def split(n: int, val_split: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded train/validation indices (the same on every rank)."""
    order = np.random.default_rng(seed).permutation(n)
    n_val = int(round(n * val_split)) if val_split > 0 else 0
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def _tensors(x: np.ndarray, t: np.ndarray, y: np.ndarray | None, idx: np.ndarray) -> TensorDataset:
    parts = [torch.from_numpy(np.ascontiguousarray(x[idx])), torch.from_numpy(np.ascontiguousarray(t[idx]))]
    if y is not None:
        parts.append(torch.from_numpy(np.asarray(y[idx], dtype=np.int64)))
    return TensorDataset(*parts)


def _loader(data: TensorDataset, opts: TrainOptions, world: World | None) -> DataLoader:
    if world is None:
        gen = torch.Generator().manual_seed(opts.seed)
        return DataLoader(data, batch_size=opts.batch_size, shuffle=True, generator=gen)
    from torch.utils.data.distributed import DistributedSampler

    sampler = DistributedSampler(data, num_replicas=world.size, rank=world.rank, shuffle=True, seed=opts.seed)
    return DataLoader(data, batch_size=opts.batch_size, sampler=sampler)


@torch.no_grad()
def evaluate(module: GraphModule, data: TensorDataset, opts: TrainOptions, device: torch.device) -> dict:
    """Validation loss (the training loss), and accuracy and teacher agreement where they apply."""
    module.eval()
    x, t = data.tensors[0].to(device), data.tensors[1].to(device)
    y = data.tensors[2].to(device) if len(data.tensors) > 2 else None
    out = module(x)
    res = {"val_loss": float(distillation_loss(out, t, y, opts.alpha, opts.temperature)),
           "val_agreement": float((out.argmax(1) == t.argmax(1)).float().mean())}
    if y is not None:
        res["val_accuracy"] = float((out.argmax(1) == y).float().mean())
    return res


def accumulation_step(module: torch.nn.Module, core: GraphModule, batches: list, opts: TrainOptions,
                      optimizer: torch.optim.Optimizer, masks: dict, device: torch.device) -> float:
    """One optimizer step over a group of micro-batches: each loss is divided by the group's size so the summed
    gradients equal those of one batch made of all of them (equal-sized micro-batches: exactly, up to rounding)."""
    optimizer.zero_grad(set_to_none=True)
    total = 0.0
    for i, batch in enumerate(batches):
        x, t = batch[0].to(device), batch[1].to(device)
        y = batch[2].to(device) if len(batch) > 2 else None
        last = i == len(batches) - 1
        sync = contextlib.nullcontext() if last or not hasattr(module, "no_sync") else module.no_sync()
        with sync:  # DDP all-reduces once per group, on its last micro-batch
            loss = distillation_loss(module(x), t, y, opts.alpha, opts.temperature) / len(batches)
            loss.backward()
        total += float(loss.detach())
    mask_gradients(core, masks)
    optimizer.step()
    apply_masks(core, masks)
    return total


def _groups(loader: DataLoader, n: int):
    group = []
    for batch in loader:
        group.append(batch)
        if len(group) == n:
            yield group
            group = []
    if group:
        yield group


def train(core: GraphModule, x: np.ndarray, teacher: np.ndarray, labels: np.ndarray | None, opts: TrainOptions,
          masks: dict, world: World | None = None) -> History:
    """Fine-tune `core` in place; on return it holds the weights of the best validation epoch."""
    device = world.device if world is not None else torch.device("cpu")
    threads = torch.get_num_threads()
    if opts.threads:
        torch.set_num_threads(opts.threads)
    try:
        return _train(core, x, teacher, labels, opts, masks, world, device)
    finally:
        torch.set_num_threads(threads)


def _train(core: GraphModule, x: np.ndarray, teacher: np.ndarray, labels: np.ndarray | None, opts: TrainOptions,
           masks: dict, world: World | None, device: torch.device) -> History:
    torch.manual_seed(opts.seed)
    core.to(device)
    tr, va = split(len(x), opts.val_split, opts.seed)
    train_set, val_set = _tensors(x, teacher, labels, tr), _tensors(x, teacher, labels, va)
    module: torch.nn.Module = core
    if world is not None and world.size > 1:
        from torch.nn.parallel import DistributedDataParallel

        module = DistributedDataParallel(core, device_ids=[device.index] if device.type == "cuda" else None)
    loader = _loader(train_set, opts, world)
    optimizer = torch.optim.Adam(core.parameters(), lr=opts.lr)
    history = History()
    best, best_state, since_best = float("inf"), None, 0
    show = opts.progress and (world is None or world.rank == 0)
    steps_per_epoch = -(-len(loader) // max(1, opts.accumulate))
    start = time.perf_counter()
    with _progress(show, opts.epochs * steps_per_epoch) as bar:
        for epoch in range(opts.epochs):
            if hasattr(loader.sampler, "set_epoch"):
                loader.sampler.set_epoch(epoch)
            core.train()
            losses = []
            for group in _groups(loader, max(1, opts.accumulate)):
                losses.append(accumulation_step(module, core, group, opts, optimizer, masks, device))
                history.steps += 1
                bar(f"epoch {epoch + 1}/{opts.epochs} loss {losses[-1]:.4f}")
            row = {"epoch": epoch + 1, "train_loss": float(np.mean(losses)) if losses else float("nan")}
            if len(va):
                row.update(evaluate(core, val_set, opts, device))
            history.epochs.append(row)
            if not len(va):
                continue
            if row["val_loss"] < best:
                best, best_state, since_best, history.best_epoch = row["val_loss"], copy.deepcopy(
                    core.state_dict()), 0, epoch + 1
            else:
                since_best += 1
                if since_best >= opts.patience:
                    history.stopped_early = True
                    break
    if best_state is not None:
        core.load_state_dict(best_state)
    elif history.epochs:
        history.best_epoch = history.epochs[-1]["epoch"]
    history.seconds = time.perf_counter() - start
    core.to("cpu")
    return history


@contextlib.contextmanager
def _progress(show: bool, total: int):
    """A rich progress bar on stderr (rank 0 only); yields `advance(description)`."""
    if not show:
        yield lambda _desc: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task("fine-tuning", total=total)
        yield lambda desc: progress.update(task, advance=1, description=desc)
