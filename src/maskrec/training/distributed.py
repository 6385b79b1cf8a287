"""Data-parallel training with PyTorch's own engine, Kedro running the pipeline once.

`torchrun [rendezvous options] -m kedro run ...` starts one `kedro run` per process. Rank 0
runs the pipeline as usual. Every other rank joins the process group when the run starts
(`hooks.DistributedTraining`) and, instead of running nodes, serves training jobs: each
time a node on rank 0 calls `fit`, rank 0 sends the call (starting weights, training
windows, validation set, settings) to the other ranks over a gloo control group, and all
ranks train the model together with `DistributedDataParallel`. So the data steps, the
baselines, evaluation and every catalog write, checkpoint and log line happen once, on
rank 0; the workers hold no data of their own and leave when rank 0's pipeline ends.

Inside `fit` (what makes N processes train as one):
- Every rank draws the same global batch (the same generator: same order, same masks)
  and keeps its contiguous share of the rows (`share`). Each part's loss is scaled by
  N x (labelled positions here) / (labelled positions in the global batch), so DDP's mean
  of the ranks' gradients is the gradient of the global batch's loss: `batch_size` is the
  global batch, and N processes compute what one process computes, up to float
  summation order.
- Validation is sharded by users and the ranks are gathered (`gather`), so every rank
  computes the same metrics and takes the same early-stopping decision.
- Rank 0 writes the checkpoints; on resume it reads its checkpoint and sends the state to
  the others (`broadcast`), so a resumed run continues identically.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from maskrec import progress
from maskrec.training.objectives import Part

logger = logging.getLogger(__name__)

# A worker waits on the control group for rank 0's next training job while rank 0 runs
# the data steps, the baselines or evaluation: that can take hours at 32M ratings.
CONTROL_TIMEOUT = timedelta(days=2)
STOP = "stop"


@dataclass(frozen=True)
class Group:
    """This process's place in the job: its rank, the number of processes, and the gloo
    group that carries jobs and Python objects (the default group carries gradients:
    NCCL between GPUs, gloo on the CPU)."""

    rank: int
    size: int
    control: Any


_JOINED: dict[str, Group] = {}  # "group": this process's, once it joined


def current() -> Group | None:
    """The process group `fit` trains in, or None for a single process."""
    return _JOINED.get("group")


def join_from_environment() -> Group | None:
    """Join the process group torchrun describes (RANK, WORLD_SIZE, MASTER_ADDR, ... in
    the environment); None when this is the only process."""
    if current() is not None:
        return current()
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    if not dist.is_initialized():
        dist.init_process_group(backend=_backend())
    control = dist.new_group(backend="gloo", timeout=CONTROL_TIMEOUT)
    group = _JOINED["group"] = Group(dist.get_rank(), dist.get_world_size(), control)
    if group.rank == 0:  # the workers stay quiet (`quiet_worker`)
        logger.info("training data-parallel in %d processes (rank 0 runs the pipeline)", group.size)  # fmt: skip
    return group


def _backend() -> str:
    """NCCL for GPU tensors when every local process has a GPU of its own, gloo for CPU
    tensors; with more local processes than GPUs (NCCL refuses two ranks on one GPU),
    the processes share the GPUs round-robin and gloo carries the gradients too."""
    if not torch.cuda.is_available():
        return "gloo"
    gpus = torch.cuda.device_count()
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    local_size = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    torch.cuda.set_device(local_rank % gpus)
    if local_size <= gpus:
        return "cpu:gloo,cuda:nccl"
    if local_rank == 0:
        logger.warning(
            "%d processes share %d GPU(s): NCCL needs a GPU per process, so gloo carries "
            "the gradients (slower); start at most %d processes per machine for NCCL",
            local_size, gpus, gpus,
        )  # fmt: skip
    return "gloo"


def leave() -> None:
    """Leave the process group (after the workers were stopped)."""
    if _JOINED.pop("group", None) is not None and dist.is_initialized():
        dist.destroy_process_group()


def broadcast(value: Any = None) -> Any:
    """Rank 0's `value`, on every rank (pickled over the control group: tensors should be
    on the CPU, since a CUDA tensor would come back on rank 0's device)."""
    group = _JOINED["group"]
    box = [value if group.rank == 0 else None]
    dist.broadcast_object_list(box, src=0, group=group.control)
    return box[0]


def gather(value: np.ndarray) -> np.ndarray:
    """Every rank's array, concatenated in rank order, on every rank."""
    group = _JOINED["group"]
    boxes: list[Any] = [None] * group.size
    dist.all_gather_object(boxes, value, group=group.control)
    return np.concatenate(boxes)


def send_job(job: dict) -> None:
    """Rank 0: ask every worker to run `job` (keyword arguments of `fit`)."""
    if current() is not None and current().rank == 0:
        broadcast(job)


def serve(run: Callable[[dict], Any]) -> int:
    """A worker's life: run each job rank 0 sends until it says stop; the number run."""
    jobs = 0
    while (job := broadcast()) != STOP:
        run(job)
        jobs += 1
    return jobs


def stop_workers() -> None:
    """Rank 0: tell the workers that no more jobs come, then leave the group."""
    if current() is not None and current().rank == 0:
        broadcast(STOP)
        leave()


def quiet_worker() -> None:
    """A worker writes no log file and no progress bar: rank 0 reports for everyone."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, logging.FileHandler):
            root.removeHandler(handler)
    for name in ("maskrec", "kedro"):
        logging.getLogger(name).setLevel(logging.WARNING)
    progress.hide_bars()


def bounds(rows: int, rank: int, size: int) -> tuple[int, int]:
    """The contiguous block of `rows` that `rank` of `size` takes (sizes differ by at most
    one; a rank can get none when there are fewer rows than ranks)."""
    return rank * rows // size, (rank + 1) * rows // size


def share(parts: list[Part], rank: int, size: int) -> list[Part]:
    """This rank's rows of a global batch's parts, each part's weight scaled so that the
    mean of the ranks' losses is the global batch's loss (see the module docstring).
    Empty when this rank gets no rows. The scale stays a tensor: no host sync per step."""
    lo, hi = bounds(len(parts[0].inputs), rank, size)
    if hi == lo:
        return []
    mine = []
    for part in parts:
        labelled = part.targets()
        scale = size * labelled[lo:hi].sum() / labelled.sum().clamp(min=1)
        mine.append(part.rows(lo, hi, part.weight * scale))
    return mine
