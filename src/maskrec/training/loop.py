"""The one training loop behind pretraining, fine-tuning, the scratch model, the teacher,
SASRec and the rating head.

Read `fit` top to bottom: (epoch 0) -> batch -> forward under autocast (the model
computes its own loss) -> backward -> (FGM) -> clip -> step -> schedule -> validate ->
keep best -> checkpoint -> early stop. Validation scores through `scoring.rank` (or
`scoring.rate`), the same path as test evaluation. What a stage trains with is one
resolved spec (`params.Stage`: architecture, schedule, loss, regularizers, seed).

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
import itertools
import json
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm
from transformers import (
    get_cosine_schedule_with_warmup,
    get_linear_schedule_with_warmup,
)

from maskrec.devices import autocast, resolve_device
from maskrec.metrics import error_metrics, mean_metrics
from maskrec.model_input import EvalSet, RatingSet
from maskrec.models.losses import ItemLoss, LossSettings, proposal_from_windows
from maskrec.models.packing import SequenceBatch, pack
from maskrec.models.rating_tokens import RATING_CODES, split_tokens
from maskrec.models.sequence import SequenceRecModel
from maskrec.params import Schedule, Stage, TrainingParams
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

# what `fit` calls after each trained epoch: (epoch, validation metrics)
EpochCallback = Callable[[int, dict[str, float]], None]


class StopTraining(Exception):
    """Raised by an `on_epoch` callback to end a run for good: its checkpoint goes."""


@dataclass
class Teacher:
    """The distillation teacher and its share of the loss, or none (a Kedro dataset
    cannot hold a bare None): fine-tuning with weight 0 trains no teacher."""

    model: SequenceRecModel | None = None
    weight: float = 0.0
    temperature: float = 2.0


def fit(
    model: SequenceRecModel,
    objective: Objective,
    windows: torch.Tensor,
    valid: EvalSet | RatingSet,
    stage: Stage,
    training: TrainingParams,
    name: str,
    *,
    teacher: Teacher | None = None,
    start_is_candidate: bool = False,
    on_epoch: EpochCallback | None = None,
    keep_checkpoint: bool = False,
) -> tuple[SequenceRecModel, list[dict]]:
    """Train `model` on `windows` with `objective` as `stage` says, early-stopping on
    validation NDCG@10 (on validation RMSE when `valid` holds rating questions).

    Every stage gets the same mechanism:
    - Epoch 0: with `start_is_candidate`, the starting weights, read the way they read
      now, are scored on validation first and can be chosen as the best epoch, so
      fine-tuning never returns a model worse on validation than the one it started from.
    - Reading direction: training reads sequences as `objective.causal` says (a Cloze
      model fine-tuned causally becomes a left-to-right model). The model keeps the
      reading of the chosen epoch, so choosing epoch 0 restores its reading too.
    - Freezing: the embeddings and the `regularizers.freeze_layers` lowest layers get no
      gradient.
    - Patience: training stops after `schedule.patience` epochs in a row without progress:
      a validation score better than the best *trained* epoch's by at least
      `schedule.min_improvement` of it. Epoch 0 can win but does not count for patience:
      a new objective (or reading) usually starts below the model it starts from, and
      gets `patience` epochs to improve on itself. Patience cannot end a run before
      `schedule.min_epochs` trained epochs. With `schedule.smoothing` N > 1 the
      progress is that of the mean of the last N epochs' scores: a single spike does
      not end the run at a bar the curve has not yet reached.
    - Epoch length: a full pass over the windows, or its first `schedule.max_steps_per_epoch`
      batches (each epoch draws its own order, so successive epochs see fresh subsets):
      on large data validation and patience then come every N steps, not every pass.
    - `on_epoch(epoch, metrics)`, when given, sees each trained epoch's validation metrics
      (a tuning trial's pruner). If it raises `StopTraining` (a pruned trial, not to be
      resumed), the run's checkpoint is removed; any other error keeps it, so the run
      can be retried from its last epoch. The exception goes on either way.
    - `keep_checkpoint`: the finished run's last checkpoint stays, so the same run again
      returns its result at once instead of training (a tuning trial's earlier stages,
      when the trial is retried after an interruption); the caller removes it
      (`discard_checkpoints`). Otherwise a finished run deletes its checkpoint.

    Under torchrun every process trains (`training/distributed.py`): rank 0 sends the
    call to the others, which run it too; `schedule.batch_size` is the global batch.

    Returns the model on the CPU with the chosen epoch's weights, and one record per epoch.
    """
    schedule, regularizers = stage.schedule, stage.regularizers
    group = distributed.current()
    if group is not None and group.rank == 0:  # the other processes run this call too
        distributed.send_job(
            dict(model=model.cpu(), objective=objective, windows=windows, valid=valid,
                 stage=stage, training=training, name=name, teacher=teacher,
                 start_is_candidate=start_is_candidate)
        )  # fmt: skip
    device = _device(training)
    run_id = fingerprint(
        name, stage.model_dump(), training.model_dump(), model.config.to_dict(),
        *model.state_dict().values(), windows, *vars(valid).values(), repr(objective),
        start_is_candidate,
    )  # fmt: skip
    model.to(device)
    model.content_dropout = regularizers.content_dropout  # (training steps only)
    windows = windows.to(device)
    loss = _loss_settings(stage, windows, model, teacher)
    tutor = teacher.model.to(device).eval() if loss.distill_weight > 0 else None
    packing = training.packing if isinstance(training.packing, bool) else device.type == "cpu"  # fmt: skip
    bf16 = training.autocast_bf16(device)  # decided once, read at every step
    frozen = model.lower_layers(regularizers.freeze_layers) if regularizers.freeze_layers else []  # fmt: skip
    for module in frozen:
        module.requires_grad_(False)
    optimizer = torch.optim.AdamW(
        parameter_groups(
            model,
            schedule.learning_rate,
            schedule.weight_decay,
            regularizers.encoder_lr_scale,
        ),  # fmt: skip
        # one kernel for the whole update: on the CPU too (4% of a sample epoch; the same
        # numbers as the per-parameter loop, to the digit of the run's metrics)
        fused=device.type in ("cpu", "cuda"),
    )
    steps_per_epoch = math.ceil(objective.samples_per_epoch(len(windows)) / schedule.batch_size)  # fmt: skip
    # a capped epoch is the first max_steps_per_epoch batches of its order
    if schedule.max_steps_per_epoch:
        steps_per_epoch = min(steps_per_epoch, schedule.max_steps_per_epoch)
    total_steps = steps_per_epoch * schedule.epochs
    decay = get_cosine_schedule_with_warmup if schedule.decay == "cosine" else get_linear_schedule_with_warmup  # fmt: skip
    scheduler = decay(optimizer, int(schedule.warmup_ratio * total_steps), total_steps)

    state = _State(best_state=None, best_causal=model.config.causal)
    checkpoint = _Checkpoint.for_run(training, group, name, run_id)
    resumed = checkpoint.resume(state, model, optimizer, scheduler, group)
    if start_is_candidate and not resumed:
        metrics = validate(model, valid, training, device)
        state.history.append({"epoch": 0, "train_loss": float("nan"), **metrics, "lr": 0.0,
                              "seconds": 0.0, "sequences_per_second": 0.0})  # fmt: skip
        state.keep_best(selection_metric(metrics), 0, model)
    model.config.causal = objective.causal

    step_loss = _step_loss_module(model, loss, tutor, packing, group, device)
    progress = tqdm(total=schedule.epochs, initial=state.epoch, desc=name, unit="epoch", disable=bar_disabled(), leave=False)  # fmt: skip
    for epoch in range(state.epoch + 1, schedule.epochs + 1):
        if state.patience_over(schedule):
            break
        rank_offset = RANK_SEED_STRIDE * group.rank if group is not None else 0
        torch.manual_seed(stage.seed * 100_003 + epoch + rank_offset)
        generator = torch.Generator(device=device).manual_seed(stage.seed * 1_000_003 + epoch)  # fmt: skip
        model.train()
        # The loss is summed on the device: reading it every step would make the host wait
        # for the GPU after each batch.
        started, seen, batches = time.perf_counter(), 0, 0
        loss_sum = torch.zeros((), device=device)
        steps = Progress(logger, f"{name} epoch {epoch}", steps_per_epoch, "steps")
        for batch in itertools.islice(objective.batches(windows, schedule.batch_size, generator), steps_per_epoch):  # fmt: skip
            seen += len(batch[0].inputs)
            parts = batch if group is None else distributed.share(batch, group.rank, group.size)  # fmt: skip
            with autocast(device, bf16):
                value = step_loss(parts)
            optimizer.zero_grad(set_to_none=True)
            value.backward()
            if regularizers.fgm_epsilon > 0:
                _adversarial_step(model, parts, regularizers.fgm_epsilon, step_loss, device, bf16)  # fmt: skip
            # foreach: one norm over all gradients (torch's default does so on CUDA only)
            torch.nn.utils.clip_grad_norm_(
                model.parameters(), schedule.grad_clip, foreach=True
            )
            optimizer.step()
            scheduler.step()
            loss_sum += value.detach().float()
            batches += 1
            steps.update(1, lambda: f"loss {float(loss_sum) / batches:.4f}")  # noqa: B023 (called at once)
        steps.close()
        train_seconds = _epoch_end(loss_sum, group, device, started)

        metrics = validate(model, valid, training, device)
        record = {
            "epoch": epoch, "train_loss": float(loss_sum) / max(batches, 1), **metrics,
            "lr": scheduler.get_last_lr()[0], "seconds": time.perf_counter() - started,
            "train_seconds": train_seconds, "sequences_per_second": seen / max(train_seconds, 1e-9),
        }  # fmt: skip
        state.history.append(record)
        state.epoch_done(
            epoch,
            selection_metric(metrics),
            model,
            schedule.min_improvement,
            schedule.smoothing,
        )
        shown = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items() if k in _LOGGED)
        progress.update(1)
        progress.set_postfix_str(f"loss {record['train_loss']:.3f}, {shown}")
        logger.info("%s epoch %d: loss %.4f, valid %s, %.1fs (%.0f seq/s)", name, epoch,
                    record["train_loss"], shown, record["seconds"], record["sequences_per_second"])  # fmt: skip
        checkpoint.save(state, model, optimizer, scheduler)
        if on_epoch is not None:
            try:
                on_epoch(epoch, metrics)
            except StopTraining:
                checkpoint.finish()
                raise
    progress.close()

    for module in frozen:
        module.requires_grad_(True)
    if state.best_state is not None:
        model.load_state_dict(state.best_state)
        model.config.causal = state.best_causal
    for record in state.history:
        record["best_epoch"] = state.best_epoch
    logger.info("%s: best validation %s %.4f at epoch %d", name, "NDCG@10" if isinstance(valid, EvalSet) else "-RMSE",
                state.best_metric, state.best_epoch)  # fmt: skip
    if not keep_checkpoint:
        checkpoint.finish()
    return model.cpu().eval(), state.history


def replay_stopping(
    history: Sequence[dict], schedule: Schedule
) -> tuple[int, int] | None:
    """What `fit` would do, under `schedule`'s stopping rule (patience, `min_improvement`,
    `smoothing`, `min_epochs`, the `epochs` cap), with the validation scores a run recorded
    (`history`: its per-epoch records, epoch 0 among them when its start was a candidate):
    (the last epoch it would train, the epoch it would keep). None when the rule would
    train past the record, which cannot say what comes next.

    Why: a stopping rule can then be chosen on recorded validation curves without training
    again. Where the replay keeps the epoch the run kept and the cap is the run's (the
    learning rate's decay depends on it), the rule trains the same model in the replay's
    epochs. The decisions are `fit`'s own (`_State`), in `fit`'s order."""
    records = {int(r["epoch"]): r for r in history}
    state = _State(best_state=None, best_causal=False)
    if 0 in records:  # the start, scored before training
        state.history.append(records[0])
        state.keep_best(selection_metric(records[0]), 0, None)
    for epoch in range(1, schedule.epochs + 1):
        if state.patience_over(schedule):
            break
        if epoch not in records:
            return None
        state.history.append(records[epoch])
        state.epoch_done(epoch, selection_metric(records[epoch]), None, schedule.min_improvement, schedule.smoothing)  # fmt: skip
    return state.epoch, state.best_epoch


def discard_checkpoints(training: TrainingParams, *names: str) -> None:
    """Remove the checkpoints runs named `names` kept (`fit(keep_checkpoint=True)`)."""
    for name in names:
        _Checkpoint.for_run(training, distributed.current(), name, "").finish()


def serve_training_jobs() -> int:
    """A distributed worker's part in every `fit` rank 0 runs (`training/distributed.py`):
    train along until rank 0 says no more jobs come; returns how many there were."""
    return distributed.serve(lambda job: fit(**job))


def selection_metric(metrics: dict[str, float]) -> float:
    """What early stopping and the best epoch maximise: validation NDCG@10 for ranking,
    minus RMSE for ratings."""
    return metrics["ndcg@10"] if "ndcg@10" in metrics else -metrics["rmse"]


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
        errors = rate(model, valid, training.scoring_batch_size, device) - valid.targets.numpy()  # fmt: skip
        return error_metrics(errors if group is None else distributed.gather(errors))
    ranks = rank(model, valid, training.scoring_batch_size, device=device, bf16=training.autocast_bf16(device)).ranks  # fmt: skip
    return mean_metrics(ranks if group is None else distributed.gather(ranks))


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


def part_loss(
    model: SequenceRecModel,
    part: Part,
    loss: LossSettings,
    teacher: SequenceRecModel | None = None,
    packing: bool = False,
) -> torch.Tensor:
    """One loss term of a batch: its rows laid out (with `packing`, several short
    sequences share a row, exactly: `models/packing.py`) and read by the model, which
    computes its own loss. A rating term travels packed as rated tokens."""
    if part.rating_labels is not None:
        inputs, ratings, labels, layout = (
            part.inputs,
            part.ratings,
            part.rating_labels,
            {},
        )
        if packing:
            batch = pack(SequenceBatch(inputs * RATING_CODES + ratings, labels), model.config.max_len)  # fmt: skip
            (inputs, ratings), labels = split_tokens(batch.inputs), batch.labels
            layout = {"positions": batch.positions, "segments": batch.segments}
        return model(inputs, causal=part.causal, ratings=ratings, rating_labels=labels, **layout).loss  # fmt: skip
    batch = SequenceBatch(part.inputs, part.labels)
    if packing:
        batch = pack(batch, model.config.max_len)
    return model(
        batch.inputs, batch.labels, causal=part.causal, positions=batch.positions,
        segments=batch.segments, loss=loss, teacher=teacher,
    ).loss  # fmt: skip


def batch_loss(
    model: SequenceRecModel,
    parts: list[Part],
    loss: LossSettings,
    teacher: SequenceRecModel | None = None,
    packing: bool = False,
) -> torch.Tensor:
    """The weighted sum of a batch's loss terms."""
    total = 0.0
    for part in parts:
        total = total + part.weight * part_loss(model, part, loss, teacher, packing)
    return total


def fingerprint(*parts: Any) -> str:
    """A hash of everything that defines a run, so a checkpoint is only resumed by the same run."""
    digest = hashlib.sha256()
    for part in parts:
        if isinstance(part, torch.Tensor):
            digest.update(part.detach().cpu().numpy().tobytes())
        else:
            digest.update(json.dumps(part, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:16]


def copy_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of the weights (the best epoch's, or the starting point)."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


# --- what `fit` calls ----------------------------------------------------------------


@dataclass
class _State:
    """Where a run stands: the epochs done and their records, the best epoch (its
    weights and reading) and patience. A checkpoint holds exactly this."""

    best_state: dict[str, torch.Tensor] | None
    best_causal: bool
    best_metric: float = -math.inf
    best_epoch: int = 0
    best_trained: float = -math.inf
    bad_epochs: int = 0
    epoch: int = 0
    history: list[dict] = field(default_factory=list)

    def keep_best(
        self, metric: float, epoch: int, model: SequenceRecModel | None
    ) -> None:
        self.best_metric, self.best_epoch = metric, epoch
        if model is not None:  # (`replay_stopping` records the epoch alone)
            self.best_state, self.best_causal = copy_state(model), model.config.causal

    def patience_over(self, schedule: Schedule) -> bool:
        """Whether patience ends the run before its next epoch: `schedule.patience` epochs
        in a row without progress, and at least `schedule.min_epochs` trained epochs."""
        return (
            self.bad_epochs >= schedule.patience and self.epoch >= schedule.min_epochs
        )

    def epoch_done(self, epoch: int, metric: float, model: SequenceRecModel | None, min_improvement: float = 0.0,
                   smoothing: int = 1) -> None:  # fmt: skip
        """Patience counts trained epochs only: an epoch is progress if the mean score of
        the last `smoothing` trained epochs (this one's record included; 1: the epoch
        alone) beats the best such mean by `min_improvement` of it (a relative margin, so
        it means the same for NDCG@10 and for RMSE); any single epoch (0 too) can be the
        best, and its weights are the ones kept."""
        self.epoch = epoch
        recent = [selection_metric(r) for r in self.history[-smoothing:] if r["epoch"] >= 1] or [metric]  # fmt: skip
        score = sum(recent) / len(recent)
        margin = min_improvement * abs(self.best_trained) if math.isfinite(self.best_trained) else 0.0  # fmt: skip
        if score > self.best_trained + margin:
            self.best_trained, self.bad_epochs = score, 0
        else:
            self.bad_epochs += 1
        if metric > self.best_metric:
            self.keep_best(metric, epoch, model)


@dataclass
class _Checkpoint:
    """The per-epoch resume state of one run, under `training.checkpoint_dir`, written
    atomically by rank 0 alone (which sends it on to the other processes on resume),
    and deleted when the run finishes; `path` None: no checkpoints."""

    path: Path | None
    run_id: str
    name: str

    @classmethod
    def for_run(cls, training: TrainingParams, group, name: str, run_id: str) -> _Checkpoint:  # fmt: skip
        writes = training.checkpoint_dir and (group is None or group.rank == 0)
        return cls(Path(training.checkpoint_dir) / f"{name}.pt" if writes else None, run_id, name)  # fmt: skip

    def resume(self, state: _State, model, optimizer, scheduler, group) -> bool:
        """Load this run's checkpoint into `state`, the model, optimizer and scheduler;
        False (nothing loaded) when there is none for this run."""
        saved = self._saved()
        if group is not None:
            saved = distributed.broadcast(saved)
        if saved is None:
            return False
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        for key, value in saved["state"].items():
            setattr(state, key, value)
        return True

    def save(self, state: _State, model, optimizer, scheduler) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        torch.save({"run_id": self.run_id, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(), "state": vars(state)}, tmp)  # fmt: skip
        os.replace(tmp, self.path)

    def finish(self) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)  # finished: the next run starts afresh

    def _saved(self) -> dict | None:
        if self.path is None or not self.path.is_file():
            return None
        saved = torch.load(self.path, map_location="cpu", weights_only=True)
        if saved.get("run_id") != self.run_id or "state" not in saved:
            logger.info(
                "%s: ignoring %s (it belongs to another run)", self.name, self.path
            )
            return None
        logger.info("%s: resuming from %s after epoch %d", self.name, self.path, saved["state"]["epoch"])  # fmt: skip
        return saved


def _device(training: TrainingParams) -> torch.device:
    device = resolve_device(training.device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())  # this process's GPU
    if device.type == "cpu":
        keep_freed_memory()
    return device


def _loss_settings(stage: Stage, windows: torch.Tensor, model: SequenceRecModel, teacher: Teacher | None) -> LossSettings:  # fmt: skip
    """The stage's loss, whole: its item softmax (the sampled one draws from the
    popularity of the items in this stage's training windows), label smoothing, the
    genre loss, and distillation when a teacher was trained."""
    spec = stage.loss
    item = ItemLoss(spec.softmax)
    if spec.softmax == "sampled":
        proposal = proposal_from_windows(windows, model.config.n_items, model.trained_columns())  # fmt: skip
        item = ItemLoss("sampled", spec.negatives, proposal.to(windows.device))
    taught = teacher is not None and teacher.model is not None and teacher.weight > 0
    return LossSettings(
        item=item, label_smoothing=spec.label_smoothing, genre_weight=spec.genre_weight,
        distill_weight=teacher.weight if taught else 0.0,
        temperature=teacher.temperature if taught else 2.0,
    )  # fmt: skip


def _step_loss_module(model, loss, teacher, packing, group, device) -> torch.nn.Module:
    """`batch_loss` as a module, wrapped in DistributedDataParallel in a process group
    (DDP hooks into `forward` to all-reduce the gradients of the backward that follows)."""
    step_loss: torch.nn.Module = _StepLoss(model, loss, teacher, packing)
    if group is None:
        return step_loss
    return DistributedDataParallel(
        step_loss,
        device_ids=[device.index] if device.type == "cuda" else None,
        # weights without a gradient: the genre head when its loss is off; the item
        # head when training ratings, the rating head when training items
        find_unused_parameters=(hasattr(model, "genre_head") and not loss.genre_weight)
        or bool(model.config.rating_buckets),
        **_NO_BUFFER_SYNC,
    )


class _StepLoss(torch.nn.Module):
    def __init__(self, model: SequenceRecModel, loss: LossSettings, teacher, packing: bool):  # fmt: skip
        super().__init__()
        self.model, self.loss, self.teacher, self.packing = (
            model,
            loss,
            teacher,
            packing,
        )

    def forward(self, parts: list[Part]) -> torch.Tensor:
        if not parts:  # fewer rows than ranks: this rank adds zero gradients
            return (
                sum(p.sum() for p in self.model.parameters() if p.requires_grad) * 0.0
            )
        return batch_loss(self.model, parts, self.loss, self.teacher, self.packing)


def _epoch_end(loss_sum: torch.Tensor, group, device: torch.device, started: float) -> float:  # fmt: skip
    """The epoch's training seconds, after the global batches' mean loss is gathered (as
    one process reports it) and the GPU has finished (so the timing is real)."""
    if group is not None:
        torch.distributed.all_reduce(loss_sum)
        loss_sum /= group.size
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - started


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


@functools.cache
def keep_freed_memory() -> bool:
    """Ask glibc to keep freed memory for reuse instead of handing it back to the kernel
    (trim threshold 256 MiB, mmap threshold 32 MiB); False where malloc is not glibc's.

    Why: a CPU training step frees and re-allocates tens of MiB of activations. With
    glibc's adaptive defaults those blocks could be mapped and unmapped (or the heap top
    trimmed and re-grown) step after step, re-faulting pages each time (measured before
    issue 24: `git show 949a0af:docs/benchmarks.md`, "CPU training speed"). Kept, they are reused; the step's tensor sizes repeat
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
