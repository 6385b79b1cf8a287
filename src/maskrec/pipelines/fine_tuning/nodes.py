"""Fine-tuning for next-item prediction, with regularization, from pretrained or random
weights (the scratch ablation), optionally distilled from a larger Cloze-trained teacher."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import torch

from maskrec.models.sequence import SequenceRecModel
from maskrec.params import (
    FineTuningParams,
    ModelParams,
    PretrainingParams,
    TrainingParams,
)
from maskrec.pipelines.pretraining.nodes import history_frame, model_config
from maskrec.training.data import eval_set, training_windows
from maskrec.training.loop import (
    LossSettings,
    copy_state,
    evaluate,
    fit,
    resolve_device,
    summarise,
)
from maskrec.training.objectives import (
    CausalObjective,
    ClozeObjective,
    NextItemObjective,
)


@dataclass
class Teacher:
    """The distillation teacher, or none (Kedro datasets cannot hold a bare None)."""

    model: SequenceRecModel | None = None


def train_teacher(
    item_features: pd.DataFrame,
    train_sequences: pd.DataFrame,
    valid_targets: pd.DataFrame,
    model_params: ModelParams,
    params: FineTuningParams,
) -> Teacher:
    """A wider Cloze-trained model whose soft targets guide fine-tuning; empty when
    distillation is off (weight 0), which costs nothing."""
    settings = params.distillation
    if settings.weight == 0:
        return Teacher()
    torch.manual_seed(model_params.seed + 1)
    teacher = SequenceRecModel(
        model_config(
            item_features,
            model_params,
            hidden_size=settings.teacher_hidden_size,
            num_layers=settings.teacher_num_layers,
            intermediate_size=4 * settings.teacher_hidden_size,
        )
    )
    shared = params.model_dump(include=set(TrainingParams.model_fields))
    teacher_params = PretrainingParams(
        **{**shared, "epochs": settings.teacher_epochs}, mask_prob=params.mask_prob
    )
    length = teacher.config.max_len
    teacher, _ = fit(
        teacher,
        ClozeObjective(
            params.mask_prob, teacher.config.mask_id, teacher.config.n_items
        ),
        training_windows(train_sequences["item_ids"].tolist(), length),
        eval_set(valid_targets, length),
        teacher_params,
        name="teacher",
    )
    return Teacher(teacher)


def _fine_tune(
    model: SequenceRecModel,
    teacher: Teacher,
    train_sequences: pd.DataFrame,
    valid_targets: pd.DataFrame,
    params: FineTuningParams,
    name: str,
) -> tuple[SequenceRecModel, pd.DataFrame]:
    config = model.config
    model.set_dropout(
        config.hidden_dropout
        if params.hidden_dropout is None
        else params.hidden_dropout,
        config.attention_dropout
        if params.attention_dropout is None
        else params.attention_dropout,
    )
    if params.freeze_layers:
        frozen = [
            model.bert.embeddings,
            *model.bert.encoder.layer[: params.freeze_layers],
        ]
        for module in frozen:
            module.requires_grad_(False)
    valid = eval_set(valid_targets, config.max_len)
    starting_point = None
    if params.objective == "causal":
        # The starting weights, read the way they were trained, are "epoch 0" and can win,
        # exactly as with the next_item objective (there `fit` does this itself).
        starting_point = _starting_point(model, valid, params)
        # Same weights, now read left to right; saved with causal=True, so inference
        # scores the next item from the last real position, as SASRec does.
        config.causal = True
        objective = CausalObjective(
            params.cloze_weight, params.mask_prob, config.mask_id
        )
        window_length = config.max_len + 1
    else:
        objective = NextItemObjective(
            config.mask_id,
            config.n_items,
            params.prefixes_per_sequence,
            params.cloze_weight,
            params.mask_prob,
        )
        window_length = config.max_len
    loss = LossSettings(
        label_smoothing=params.label_smoothing,
        fgm_epsilon=params.fgm_epsilon,
        teacher=teacher.model,
        distill_weight=params.distillation.weight if teacher.model is not None else 0.0,
        temperature=params.distillation.temperature,
    )
    model, history = fit(
        model,
        objective,
        training_windows(train_sequences["item_ids"].tolist(), window_length),
        valid,
        params,
        name=name,
        loss=loss,
        encoder_lr_scale=params.encoder_lr_scale,
        evaluate_before_training=starting_point is None,
    )
    model.requires_grad_(True)
    if starting_point is not None:
        history = _keep_better(model, history, *starting_point)
    return model, history_frame(history, name)


def _starting_point(
    model: SequenceRecModel, valid, params: FineTuningParams
) -> tuple[dict, dict]:
    """Validation metrics and a copy of the weights before fine-tuning."""
    device = resolve_device(params.device)
    metrics = summarise(
        evaluate(model.to(device), valid, params.eval_batch_size, device, params.bf16)
    )
    return metrics, copy_state(model.cpu())


def _keep_better(
    model: SequenceRecModel, history: list[dict], metrics: dict, state: dict
) -> list[dict]:
    """Prepend the starting weights as epoch 0; if no fine-tuned epoch beat them on
    validation, restore them (and their bidirectional reading)."""
    start = {"epoch": 0, "train_loss": float("nan"), **metrics, "lr": 0.0,
             "seconds": 0.0, "sequences_per_second": 0.0}  # fmt: skip
    best_tuned = max((h["ndcg@10"] for h in history), default=-1.0)
    if metrics["ndcg@10"] >= best_tuned:
        model.load_state_dict(state)
        model.config.causal = False
        best_epoch = 0
    else:
        best_epoch = history[0]["best_epoch"]
    history = [start, *history]
    for record in history:
        record["best_epoch"] = best_epoch
    return history


def fine_tune_pretrained(
    pretrained_model: SequenceRecModel,
    teacher_model: Teacher,
    train_sequences: pd.DataFrame,
    valid_targets: pd.DataFrame,
    params: FineTuningParams,
) -> tuple[SequenceRecModel, pd.DataFrame]:
    """Fine-tune the pretrained model; its pretrained weights are epoch 0 and can win."""
    return _fine_tune(
        pretrained_model,
        teacher_model,
        train_sequences,
        valid_targets,
        params,
        "fine_tuned",
    )


def fine_tune_scratch(
    initial_model: SequenceRecModel,
    teacher_model: Teacher,
    train_sequences: pd.DataFrame,
    valid_targets: pd.DataFrame,
    params: FineTuningParams,
) -> tuple[SequenceRecModel, pd.DataFrame]:
    """The ablation: identical architecture, initial weights and fine-tuning, no pretraining."""
    return _fine_tune(
        initial_model, teacher_model, train_sequences, valid_targets, params, "scratch"
    )
