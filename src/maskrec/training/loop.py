"""The one training loop behind pretraining, fine-tuning, the scratch model, the teacher
and SASRec.

Read `fit` top to bottom: (epoch 0) -> batch -> forward under autocast -> loss -> backward
-> (FGM) -> clip -> step -> schedule -> validate -> keep best -> checkpoint -> early stop.
Validation scores through `evaluation.rank`, the same path as test evaluation.

Determinism: each epoch reseeds torch (dropout) and the batch generator from (seed, epoch),
so an epoch does the same work whether the run started at epoch 1 or resumed before it.
On CPU an interrupted-and-resumed run ends with the same weights as an uninterrupted one.

Under torchrun, `fit` trains data-parallel (DistributedDataParallel) across the processes:
`training/distributed.py` says how, and how Kedro still runs the pipeline once.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import inspect
import json
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup

from maskrec.devices import autocast, resolve_device
from maskrec.metrics import mean_metrics
from maskrec.model_input import EvalSet, RatingSet
from maskrec.models.losses import ItemLoss, item_loss, proposal_from_windows
from maskrec.models.packing import IGNORE, SequenceBatch, pack
from maskrec.models.rating_tokens import RATING_CODES, split_tokens
from maskrec.models.sequence import SequenceRecModel
from maskrec.params import ScheduleParams, TrainingParams
from maskrec.progress import Progress, bar_disabled
from maskrec.scoring import rank, rate
from maskrec.training import distributed
from maskrec.training.objectives import Objective, Part

logger = logging.getLogger(__name__)
# Each process's dropout stream: seed + stride x rank (rank 0's is a single process's).
RANK_SEED_STRIDE = 7_919
_LOGGED = ("ndcg@10", "hr@10", "rmse", "mae")  # validation metrics in the log line
# The model's buffers (item genres, years, title words) never change: DDP need not send
# them every step (the keyword was renamed in torch 2.13).
_NO_BUFFER_SYNC = (
    {"forward_sync_buffers": False}
    if "forward_sync_buffers" in inspect.signature(DistributedDataParallel).parameters
    else {"broadcast_buffers": False}
)


@functools.cache
def keep_freed_memory() -> bool:
    """Ask glibc to keep freed memory for reuse instead of handing it back to the kernel
    (trim threshold 256 MiB, mmap threshold 32 MiB); False where malloc is not glibc's.

    Why: a CPU training step frees and re-allocates tens of MiB of activations. With
    glibc's adaptive defaults those blocks could be mapped and unmapped (or the heap top
    trimmed and re-grown) step after step, re-faulting pages each time (docs/benchmarks.md,
    "CPU training speed"). Kept, they are reused; the step's tensor sizes repeat
    (`repeating_size`), so the process does not grow either.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (AttributeError, OSError):
        return False
    trim_threshold, mmap_threshold = -1, -3  # M_TRIM_THRESHOLD, M_MMAP_THRESHOLD
    return bool(
        mallopt(trim_threshold, 256 << 20) and mallopt(mmap_threshold, 32 << 20)
    )


@dataclass
class LossSettings:
    """How the item softmax is computed (`models/losses.py`), and the loss-level
    regularizers shared by every objective."""

    item: ItemLoss = field(default_factory=ItemLoss)
    label_smoothing: float = 0.0
    genre_weight: float = 0.0
    fgm_epsilon: float = 0.0
    teacher: SequenceRecModel | None = None
    distill_weight: float = 0.0
    temperature: float = 2.0


def batch_loss(
    model: SequenceRecModel,
    parts: list[Part],
    settings: LossSettings,
    packing: bool = False,
) -> torch.Tensor:
    """Weighted sum of the parts' losses. With `packing` several short sequences share a
    row (exact; `models/packing.py`)."""
    total = 0.0
    for part in parts:
        if part.rating_labels is not None:
            total = total + part.weight * rating_loss(model, part, packing)
            continue
        batch = SequenceBatch(part.inputs, part.labels)
        if packing:
            batch = pack(batch, model.config.max_len)
        inputs, labels = batch.inputs, batch.labels
        weight = part.weight
        layout = {"causal": part.causal, "positions": batch.positions, "segments": batch.segments}  # fmt: skip
        hidden = model.encode(inputs, None, **layout)[labels != IGNORE]
        targets = labels[labels != IGNORE]
        loss, logits = item_loss(
            model, hidden, targets, settings.item, settings.label_smoothing
        )
        if settings.teacher is not None and settings.distill_weight > 0:
            with torch.no_grad():
                teacher_logits, _ = settings.teacher(inputs, labels, **layout)
            t = settings.temperature
            kl = F.kl_div(
                F.log_softmax(logits[: len(targets)].float() / t, dim=-1),
                F.log_softmax(teacher_logits[: len(targets)].float() / t, dim=-1),
                log_target=True,
                reduction="batchmean",
            )
            loss = (
                1 - settings.distill_weight
            ) * loss + settings.distill_weight * t * t * kl
        genre_logits = model.genre_logits(hidden) if settings.genre_weight > 0 else None
        if genre_logits is not None:
            genre_targets = (model.item_genres[targets] > 0).float()
            loss = loss + settings.genre_weight * F.binary_cross_entropy_with_logits(
                genre_logits.float(), genre_targets
            )
        total = total + weight * loss
    return total


def rating_loss(
    model: SequenceRecModel, part: Part, packing: bool = False
) -> torch.Tensor:
    """Squared error of the hidden ratings (buckets / 2 = stars), read with the other
    ratings shown. Packed (exact), items and shown ratings travel as rated tokens."""
    inputs, ratings, labels, layout = part.inputs, part.ratings, part.rating_labels, {}
    if packing:
        batch = pack(SequenceBatch(inputs * RATING_CODES + ratings, labels), model.config.max_len)  # fmt: skip
        (inputs, ratings), labels = split_tokens(batch.inputs), batch.labels
        layout = {"positions": batch.positions, "segments": batch.segments}
    hidden = model.encode(inputs, None, part.causal, ratings=ratings, **layout)
    asked = labels != IGNORE
    predicted = model.predict_ratings(hidden[asked], inputs[asked])
    return F.mse_loss(predicted.float(), labels[asked].float() / 2)


def selection_metric(metrics: dict[str, float]) -> float:
    """What early stopping and the best epoch maximise: validation NDCG@10 for ranking,
    minus RMSE for ratings."""
    return metrics["ndcg@10"] if "ndcg@10" in metrics else -metrics["rmse"]


def parameter_groups(
    model: torch.nn.Module,
    lr: float,
    weight_decay: float,
    encoder_lr_scale: float = 1.0,
) -> list[dict]:
    """AdamW groups: no decay on biases and LayerNorm (1-d tensors); the encoder may learn
    slower than the head when fine-tuning (`encoder_lr_scale`)."""
    groups: dict[tuple[bool, bool], list[torch.nn.Parameter]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        key = (param.ndim >= 2, name.startswith("bert."))
        groups.setdefault(key, []).append(param)
    return [
        {
            "params": params,
            "weight_decay": weight_decay if decay else 0.0,
            "lr": lr * (encoder_lr_scale if encoder else 1.0),
        }
        for (decay, encoder), params in sorted(groups.items())
    ]


def validate(
    model: SequenceRecModel,
    valid: EvalSet | RatingSet,
    training: TrainingParams,
    device: torch.device,
) -> dict[str, float]:
    """Validation HR/NDCG/MRR@10 of the model as it reads now (RMSE and MAE for rating
    questions). In a process group each rank scores its block of users and every rank gets
    all the ranks, so all compute the same metrics (and take the same early-stopping
    decision)."""
    group = distributed.current()
    if group is not None:
        valid = valid.rows(*distributed.bounds(len(valid), group.rank, group.size))
    if isinstance(valid, RatingSet):
        errors = (rate(model, valid, training.eval_batch_size, device) - valid.targets.numpy())  # fmt: skip
        errors = errors if group is None else distributed.gather(errors)
        return {"rmse": float(np.sqrt(np.mean(errors**2))), "mae": float(np.mean(np.abs(errors)))}  # fmt: skip
    ranks = rank(
        model, valid, training.eval_batch_size, device=device, bf16=training.bf16
    ).ranks
    return mean_metrics(ranks if group is None else distributed.gather(ranks))


def fingerprint(*parts: Any) -> str:
    """A hash of everything that defines a run, so a checkpoint is only resumed by the same run."""
    digest = hashlib.sha256()
    for part in parts:
        if isinstance(part, torch.Tensor):
            digest.update(part.detach().cpu().numpy().tobytes())
        else:
            digest.update(json.dumps(part, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:16]


def _save_atomically(obj: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def fit(
    model: SequenceRecModel,
    objective: Objective,
    windows: torch.Tensor,
    valid: EvalSet,
    schedule: ScheduleParams,
    training: TrainingParams,
    name: str,
    *,
    loss: LossSettings | None = None,
    encoder_lr_scale: float = 1.0,
    freeze_layers: int = 0,
    start_is_candidate: bool = False,
    on_epoch_end: Callable[[dict], None] | None = None,
) -> tuple[SequenceRecModel, list[dict]]:
    """Train `model` on `windows` with `objective`, early-stopping on validation NDCG@10
    (on validation RMSE when `valid` holds rating questions).

    Every stage gets the same mechanism:
    - Epoch 0: with `start_is_candidate`, the starting weights, read the way they read
      now, are scored on validation first and can be chosen as the best epoch, so
      fine-tuning never returns a model worse on validation than the one it started from.
    - Reading direction: training reads sequences as `objective.causal` says (a Cloze
      model fine-tuned causally becomes a left-to-right model). The model keeps the
      reading of the chosen epoch, so choosing epoch 0 restores its reading too.
    - Freezing: the embeddings and the `freeze_layers` lowest layers get no gradient.
    - Patience: training stops after `schedule.patience` epochs in a row without a better
      validation NDCG@10 than the best *trained* epoch so far. Epoch 0 can win but does
      not count for patience: a new objective (or reading) usually starts below the model
      it starts from, and gets `patience` epochs to improve on itself.

    Under torchrun every process trains (`training/distributed.py`): rank 0 sends the
    call to the others, which run it too; `schedule.batch_size` is the global batch.

    Returns the model on the CPU with the chosen epoch's weights, and one record per epoch.
    """
    loss = loss or LossSettings()
    group = distributed.current()
    if group is not None and group.rank == 0:  # the other processes run this call too
        distributed.send_job(
            dict(model=model.cpu(), objective=objective, windows=windows, valid=valid,
                 schedule=schedule, training=training, name=name, loss=loss,
                 encoder_lr_scale=encoder_lr_scale, freeze_layers=freeze_layers,
                 start_is_candidate=start_is_candidate)
        )  # fmt: skip
    device = resolve_device(training.device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())  # this process's GPU
    if device.type == "cpu":
        keep_freed_memory()
    run_id = fingerprint(
        name, schedule.model_dump(), training.model_dump(), model.config.to_dict(),
        *model.state_dict().values(), windows, *vars(valid).values(),
        repr(objective), freeze_layers, encoder_lr_scale, start_is_candidate,
    )  # fmt: skip
    model.to(device)
    if loss.teacher is not None:
        loss.teacher.to(device).eval()
    windows = windows.to(device)
    loss = replace(loss, item=_item_loss(schedule, windows, model))
    packing = (
        training.packing if isinstance(training.packing, bool) else device.type == "cpu"
    )
    frozen = model.lower_layers(freeze_layers) if freeze_layers else []
    for module in frozen:
        module.requires_grad_(False)

    optimizer = torch.optim.AdamW(
        parameter_groups(
            model, schedule.learning_rate, schedule.weight_decay, encoder_lr_scale
        ),
        fused=device.type == "cuda",  # one kernel for the whole update
    )
    steps_per_epoch = math.ceil(
        objective.samples_per_epoch(len(windows)) / schedule.batch_size
    )
    total_steps = steps_per_epoch * schedule.epochs
    scheduler = get_linear_schedule_with_warmup(
        optimizer, int(schedule.warmup_ratio * total_steps), total_steps
    )

    checkpoint = (  # written and read by rank 0 alone, which sends its state on
        Path(training.checkpoint_dir) / f"{name}.pt"
        if training.checkpoint_dir and (group is None or group.rank == 0)
        else None
    )
    history: list[dict] = []
    best = {
        "metric": -math.inf,
        "epoch": 0,
        "state": None,
        "causal": model.config.causal,
    }
    best_trained, bad_epochs, start_epoch = -math.inf, 0, 1

    saved = _saved_state(checkpoint, run_id, name)
    if group is not None:
        saved = distributed.broadcast(saved)
    if saved is not None:
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        history, best = saved["history"], saved["best"]
        best_trained, bad_epochs = saved["best_trained"], saved["bad_epochs"]
        start_epoch = saved["epoch"] + 1

    if start_epoch == 1 and start_is_candidate:
        metrics = validate(model, valid, training, device)
        history.append({"epoch": 0, "train_loss": float("nan"), **metrics, "lr": 0.0,
                        "seconds": 0.0, "sequences_per_second": 0.0})  # fmt: skip
        best = {"metric": selection_metric(metrics), "epoch": 0, "state": copy_state(model),
                "causal": model.config.causal}  # fmt: skip
    model.config.causal = objective.causal

    step_loss: torch.nn.Module = _StepLoss(model, loss, packing)
    if group is not None:  # DDP all-reduces the gradients in backward
        step_loss = DistributedDataParallel(
            step_loss,
            device_ids=[device.index] if device.type == "cuda" else None,
            # weights without a gradient: the genre head when its loss is off; the item
            # head when training ratings, the rating head when training items
            find_unused_parameters=(
                hasattr(model, "genre_head") and not loss.genre_weight
            )
            or bool(model.config.rating_buckets),
            **_NO_BUFFER_SYNC,
        )

    progress = tqdm(
        total=schedule.epochs,
        initial=start_epoch - 1,
        desc=name,
        unit="epoch",
        disable=bar_disabled(),
        leave=False,
    )
    for epoch in range(start_epoch, schedule.epochs + 1):
        if bad_epochs >= schedule.patience:
            break
        rank_offset = RANK_SEED_STRIDE * group.rank if group is not None else 0
        torch.manual_seed(training.seed * 100_003 + epoch + rank_offset)
        generator = torch.Generator(device=device).manual_seed(
            training.seed * 1_000_003 + epoch
        )
        model.train()
        # The loss is summed on the device: reading it every step would make the host wait
        # for the GPU after each batch.
        started, seen, batches = time.perf_counter(), 0, 0
        loss_sum = torch.zeros((), device=device)
        steps = Progress(logger, f"{name} epoch {epoch}", steps_per_epoch, "steps")
        for batch in objective.batches(windows, schedule.batch_size, generator):
            seen += len(batch[0].inputs)
            parts = (  # this rank's rows of the global batch
                batch if group is None else distributed.share(batch, group.rank, group.size)
            )  # fmt: skip
            with autocast(device, training.bf16):
                value = step_loss(parts)
            optimizer.zero_grad(set_to_none=True)
            value.backward()
            if loss.fgm_epsilon > 0:
                _adversarial_step(model, parts, loss.fgm_epsilon, step_loss, device, training.bf16)  # fmt: skip
            torch.nn.utils.clip_grad_norm_(model.parameters(), schedule.grad_clip)
            optimizer.step()
            scheduler.step()
            loss_sum += value.detach().float()
            batches += 1
            steps.update(1, lambda: f"loss {float(loss_sum) / batches:.4f}")  # noqa: B023 (called at once)
        steps.close()
        if (
            group is not None
        ):  # the global batches' mean loss, as one process reports it
            torch.distributed.all_reduce(loss_sum)
            loss_sum /= group.size
        if device.type == "cuda":
            torch.cuda.synchronize()  # the step timings below are then real
        train_seconds = time.perf_counter() - started

        metrics = validate(model, valid, training, device)
        record = {
            "epoch": epoch,
            "train_loss": float(loss_sum) / max(batches, 1),
            **metrics,
            "lr": scheduler.get_last_lr()[0],
            "seconds": time.perf_counter() - started,
            "train_seconds": train_seconds,
            "sequences_per_second": seen / max(train_seconds, 1e-9),
        }
        history.append(record)
        chosen_by = selection_metric(metrics)
        if chosen_by > best_trained:
            best_trained, bad_epochs = chosen_by, 0
        else:
            bad_epochs += 1
        if chosen_by > best["metric"]:
            best = {"metric": chosen_by, "epoch": epoch, "state": copy_state(model),
                    "causal": model.config.causal}  # fmt: skip
        progress.update(1)
        shown = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items() if k in _LOGGED)
        progress.set_postfix_str(f"loss {record['train_loss']:.3f}, {shown}")
        logger.info(
            "%s epoch %d: loss %.4f, valid %s, %.1fs (%.0f seq/s)",
            name, epoch, record["train_loss"], shown, record["seconds"], record["sequences_per_second"],
        )  # fmt: skip
        if checkpoint is not None:
            _save_atomically(
                {
                    "run_id": run_id, "epoch": epoch, "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                    "history": history, "best": best, "best_trained": best_trained,
                    "bad_epochs": bad_epochs,
                },
                checkpoint,
            )  # fmt: skip
        if on_epoch_end is not None:
            on_epoch_end(record)
    progress.close()

    for module in frozen:
        module.requires_grad_(True)
    if best["state"] is not None:
        model.load_state_dict(best["state"])
        model.config.causal = best["causal"]
    for record in history:
        record["best_epoch"] = best["epoch"]
    logger.info(
        "%s: best validation %s %.4f at epoch %d",
        name, "NDCG@10" if isinstance(valid, EvalSet) else "-RMSE", best["metric"], best["epoch"],
    )  # fmt: skip
    if checkpoint is not None:
        checkpoint.unlink(missing_ok=True)  # finished: the next run starts afresh
    return model.cpu().eval(), history


def serve_training_jobs() -> int:
    """A distributed worker's part in every `fit` rank 0 runs (`training/distributed.py`):
    train along until rank 0 says no more jobs come; returns how many there were."""
    return distributed.serve(lambda job: fit(**job))


class _StepLoss(torch.nn.Module):
    """`batch_loss` as a module's forward: DistributedDataParallel hooks into `forward`
    to all-reduce the gradients of the backward that follows."""

    def __init__(self, model: SequenceRecModel, settings: LossSettings, packing: bool):
        super().__init__()
        self.model, self.settings, self.packing = model, settings, packing

    def forward(self, parts: list[Part]) -> torch.Tensor:
        if not parts:  # fewer rows than ranks: this rank adds zero gradients
            return (
                sum(p.sum() for p in self.model.parameters() if p.requires_grad) * 0.0
            )
        return batch_loss(self.model, parts, self.settings, self.packing)


def _saved_state(checkpoint: Path | None, run_id: str, name: str) -> dict | None:
    """The checkpoint's training state (on the CPU) if it belongs to this run."""
    if checkpoint is None or not checkpoint.is_file():
        return None
    saved = torch.load(checkpoint, map_location="cpu", weights_only=True)
    if saved["run_id"] != run_id:
        logger.info("%s: ignoring %s (it belongs to another run)", name, checkpoint)
        return None
    logger.info("%s: resuming from %s after epoch %d", name, checkpoint, saved["epoch"])
    return saved


def copy_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of the weights (the best epoch's, or the starting point)."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _item_loss(schedule: ScheduleParams, windows: torch.Tensor, model: SequenceRecModel) -> ItemLoss:  # fmt: skip
    """The stage's softmax (`schedule.loss`); the sampled one draws from the popularity
    of the items in this stage's training windows."""
    if schedule.loss != "sampled":
        return ItemLoss(schedule.loss)
    columns = model.trained_columns()
    proposal = proposal_from_windows(windows, model.config.n_items, columns)
    return ItemLoss("sampled", schedule.negatives, proposal.to(windows.device))


def _adversarial_step(
    model: SequenceRecModel,
    parts: list[Part],
    epsilon: float,
    step_loss: Callable[[list[Part]], torch.Tensor],
    device: torch.device,
    bf16: bool,
) -> None:
    """FGM (Miyato et al.): nudge the item embeddings along their gradient by epsilon and add
    the loss there to the gradient, then put the saved embeddings back (subtracting the
    nudge again would not give the same floats back, and the error would build up)."""
    weight = model.item_embedding.weight
    grad = weight.grad
    if grad is None:
        return
    norm = grad.norm()
    if norm == 0 or not torch.isfinite(norm):
        return
    saved = weight.detach().clone()
    with torch.no_grad():
        weight.add_(epsilon * grad / norm)
    with autocast(device, bf16):
        adversarial = step_loss(parts)
    adversarial.backward()
    with torch.no_grad():
        weight.copy_(saved)
