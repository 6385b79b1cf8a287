"""The one training loop behind pretraining, fine-tuning, the scratch model and the teacher.

Read `fit` top to bottom: batch -> forward under autocast -> loss -> backward -> (FGM) ->
clip -> step -> schedule -> evaluate -> keep best -> checkpoint -> early stop.

Determinism: each epoch reseeds torch (dropout) and the batch generator from (seed, epoch),
so an epoch does the same work whether the run started at epoch 1 or resumed before it.
On CPU an interrupted-and-resumed run ends with the same weights as an uninterrupted one.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import json
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup

from maskrec.metrics import ranking_metrics, target_ranks
from maskrec.models.packing import IGNORE, SequenceBatch, pack, trim_padding
from maskrec.models.sequence import SequenceRecModel, masked_cross_entropy
from maskrec.params import TrainingParams
from maskrec.training.data import EvalSet
from maskrec.training.objectives import Part

logger = logging.getLogger(__name__)


def resolve_device(name: str) -> torch.device:
    """`auto` picks cuda, then mps, then cpu; an explicit device must exist."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            "device='cuda' was requested but no CUDA device is available; use 'auto' or 'cpu'"
        )
    if name == "mps" and not torch.backends.mps.is_available():
        raise ValueError(
            "device='mps' was requested but MPS is not available; use 'auto' or 'cpu'"
        )
    return torch.device(name)


@functools.cache
def keep_freed_memory() -> bool:
    """Ask glibc to keep freed memory for reuse instead of handing it back to the kernel
    (trim threshold 256 MiB, mmap threshold 32 MiB); False where malloc is not glibc's.

    Why: a CPU training step frees and re-allocates tens of MiB of activations. With
    glibc's adaptive defaults those blocks could be mapped and unmapped (or the heap top
    trimmed and re-grown) step after step: up to ~400,000 page faults and 2-13% of a
    fine-tuning epoch on ML-100K (docs/benchmarks.md, "CPU training speed"). Kept, they
    are reused; the step's tensor sizes repeat (`repeating_size`), so the process does
    not grow either.
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
    """Loss-level regularizers shared by every objective."""

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
    row (exact; `models/packing.py`), otherwise all-padding columns are trimmed."""
    total = 0.0
    for part in parts:
        batch = SequenceBatch(part.inputs, part.labels)
        batch = pack(batch, model.config.max_len) if packing else trim_padding(batch)
        inputs, labels = batch.inputs, batch.labels
        weight = part.weight
        layout = {"causal": part.causal, "positions": batch.positions, "segments": batch.segments}  # fmt: skip
        logits, hidden = model(inputs, labels, **layout)
        targets = labels[labels != IGNORE]
        loss = masked_cross_entropy(logits, targets, settings.label_smoothing)
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


@torch.no_grad()
def evaluate(
    model: SequenceRecModel,
    data: EvalSet,
    batch_size: int,
    device: torch.device,
    bf16: bool = False,
) -> np.ndarray:
    """0-based rank of every target over the full catalogue, seen items excluded."""
    model.eval()
    ranks = []
    for start in range(0, len(data), batch_size):
        stop = min(start + batch_size, len(data))
        with _autocast(device, bf16):
            scores = model.score_next(data.contexts[start:stop].to(device))
        rows, items = data.batch_seen(start, stop)
        ranks.append(
            target_ranks(
                scores.float(),
                data.targets[start:stop].to(device),
                rows.to(device),
                items.to(device),
            ).cpu()
        )
    return torch.cat(ranks).numpy() if ranks else np.zeros(0, dtype=np.int64)


def summarise(ranks: np.ndarray, k: int = 10) -> dict[str, float]:
    return {
        name: float(values.mean()) for name, values in ranking_metrics(ranks, k).items()
    }


def _autocast(device: torch.device, bf16: bool):
    return torch.autocast(
        device_type=device.type,
        dtype=torch.bfloat16,
        enabled=bf16 and device.type == "cuda",
    )


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
    objective: Any,
    windows: torch.Tensor,
    valid: EvalSet,
    params: TrainingParams,
    name: str,
    loss: LossSettings | None = None,
    encoder_lr_scale: float = 1.0,
    evaluate_before_training: bool = False,
    on_epoch_end: Callable[[dict], None] | None = None,
) -> tuple[SequenceRecModel, list[dict]]:
    """Train `model` on `windows` with `objective`, early-stopping on validation NDCG@10.

    Returns the model with its best weights restored and the per-epoch history. With
    `evaluate_before_training` the starting weights are "epoch 0" and can win, so
    fine-tuning never returns a model worse on validation than the one it started from.
    """
    loss = loss or LossSettings()
    device = resolve_device(params.device)
    if device.type == "cpu":
        keep_freed_memory()
    model.to(device)
    if loss.teacher is not None:
        loss.teacher.to(device).eval()
    windows = windows.to(device)
    step_model = torch.compile(model) if params.compile else model
    packing = (
        params.packing if isinstance(params.packing, bool) else device.type == "cpu"
    )

    optimizer = torch.optim.AdamW(
        parameter_groups(
            model, params.learning_rate, params.weight_decay, encoder_lr_scale
        ),
        fused=device.type == "cuda",  # one kernel for the whole update
    )
    steps_per_epoch = math.ceil(
        objective.samples_per_epoch(len(windows)) / params.batch_size
    )
    total_steps = steps_per_epoch * params.epochs
    scheduler = get_linear_schedule_with_warmup(
        optimizer, int(params.warmup_ratio * total_steps), total_steps
    )

    run_id = fingerprint(
        name,
        params.model_dump(),
        model.config.to_dict(),
        windows,
        valid.contexts,
        valid.targets,
        repr(objective),
    )
    checkpoint = (
        Path(params.checkpoint_dir) / f"{name}.pt" if params.checkpoint_dir else None
    )
    history: list[dict] = []
    best = {"metric": -1.0, "epoch": 0, "state": None}
    bad_epochs, start_epoch = 0, 1

    if checkpoint is not None and checkpoint.is_file():
        saved = torch.load(checkpoint, map_location=device, weights_only=True)
        if saved["run_id"] == run_id:
            model.load_state_dict(saved["model"])
            optimizer.load_state_dict(saved["optimizer"])
            scheduler.load_state_dict(saved["scheduler"])
            history, bad_epochs = saved["history"], saved["bad_epochs"]
            best = {
                "metric": saved["best_metric"],
                "epoch": saved["best_epoch"],
                "state": saved["best_state"],
            }
            start_epoch = saved["epoch"] + 1
            logger.info(
                "%s: resuming from %s after epoch %d", name, checkpoint, saved["epoch"]
            )
        else:
            logger.info("%s: ignoring %s (it belongs to another run)", name, checkpoint)

    if start_epoch == 1 and evaluate_before_training:
        metrics = summarise(
            evaluate(model, valid, params.eval_batch_size, device, params.bf16)
        )
        history.append(
            {
                "epoch": 0,
                "train_loss": float("nan"),
                **metrics,
                "lr": 0.0,
                "seconds": 0.0,
                "sequences_per_second": 0.0,
            }
        )
        best = {"metric": metrics["ndcg@10"], "epoch": 0, "state": copy_state(model)}

    progress = tqdm(
        total=params.epochs,
        initial=start_epoch - 1,
        desc=name,
        unit="epoch",
        disable=None,
        leave=False,
    )
    for epoch in range(start_epoch, params.epochs + 1):
        if bad_epochs >= params.patience:
            break
        torch.manual_seed(params.seed * 100_003 + epoch)
        generator = torch.Generator(device=device).manual_seed(
            params.seed * 1_000_003 + epoch
        )
        model.train()
        # The loss is summed on the device: reading it every step would make the host wait
        # for the GPU after each batch.
        started, seen, batches = time.perf_counter(), 0, 0
        loss_sum = torch.zeros((), device=device)
        for parts in objective.batches(
            windows, params.batch_size, generator, params.length_bucketing
        ):
            with _autocast(device, params.bf16):
                value = batch_loss(step_model, parts, loss, packing)
            optimizer.zero_grad(set_to_none=True)
            value.backward()
            if loss.fgm_epsilon > 0:
                _adversarial_step(step_model, parts, loss, device, params.bf16, packing)
            torch.nn.utils.clip_grad_norm_(model.parameters(), params.grad_clip)
            optimizer.step()
            scheduler.step()
            loss_sum += value.detach().float()
            batches += 1
            seen += len(parts[0][0])
        if device.type == "cuda":
            torch.cuda.synchronize()  # the step timings below are then real
        train_seconds = time.perf_counter() - started

        metrics = summarise(
            evaluate(model, valid, params.eval_batch_size, device, params.bf16)
        )
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
        if metrics["ndcg@10"] > best["metric"]:
            best, bad_epochs = (
                {
                    "metric": metrics["ndcg@10"],
                    "epoch": epoch,
                    "state": copy_state(model),
                },
                0,
            )
        else:
            bad_epochs += 1
        progress.update(1)
        progress.set_postfix(
            loss=f"{record['train_loss']:.3f}", ndcg10=f"{metrics['ndcg@10']:.4f}"
        )
        logger.info(
            "%s epoch %d: loss %.4f, valid NDCG@10 %.4f, HR@10 %.4f, %.1fs (%.0f seq/s)",
            name, epoch, record["train_loss"], metrics["ndcg@10"], metrics["hr@10"], record["seconds"], record["sequences_per_second"],
        )  # fmt: skip
        if checkpoint is not None:
            _save_atomically(
                {
                    "run_id": run_id, "epoch": epoch, "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                    "history": history, "bad_epochs": bad_epochs, "best_metric": best["metric"],
                    "best_epoch": best["epoch"], "best_state": best["state"],
                },
                checkpoint,
            )  # fmt: skip
        if on_epoch_end is not None:
            on_epoch_end(record)
    progress.close()

    if best["state"] is not None:
        model.load_state_dict(best["state"])
    for record in history:
        record["best_epoch"] = best["epoch"]
    logger.info(
        "%s: best validation NDCG@10 %.4f at epoch %d",
        name,
        best["metric"],
        best["epoch"],
    )
    if checkpoint is not None:
        checkpoint.unlink(missing_ok=True)  # finished: the next run starts afresh
    return model.cpu().eval(), history


def copy_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of the weights (the best epoch's, or a starting point to restore)."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _adversarial_step(
    model: SequenceRecModel,
    parts: list[Part],
    loss: LossSettings,
    device: torch.device,
    bf16: bool,
    packing: bool,
) -> None:
    """FGM (Miyato et al.): nudge the item embeddings along their gradient by epsilon and add
    the loss there to the gradient, then restore them."""
    weight = model.item_embedding.weight
    grad = weight.grad
    if grad is None:
        return
    norm = grad.norm()
    if norm == 0 or not torch.isfinite(norm):
        return
    delta = loss.fgm_epsilon * grad / norm
    with torch.no_grad():
        weight.add_(delta)
    with _autocast(device, bf16):
        adversarial = batch_loss(model, parts, loss, packing)
    adversarial.backward()
    with torch.no_grad():
        weight.sub_(delta)
