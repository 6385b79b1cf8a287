"""Fine-tuning for next-item prediction, with regularization, from pretrained or random
weights (the scratch ablation), optionally distilled from a larger Cloze-trained teacher."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial, update_wrapper

import pandas as pd

from maskrec.models.sequence import SequenceRecConfig, SequenceRecModel
from maskrec.params import FineTuningParams, ModelParams, TrainingParams
from maskrec.training.loop import LossSettings
from maskrec.training.objectives import (
    CausalObjective,
    ClozeObjective,
    NextItemObjective,
    Objective,
)
from maskrec.training.setup import init_model, train


@dataclass
class Teacher:
    """The distillation teacher, or none (Kedro datasets cannot hold a bare None)."""

    model: SequenceRecModel | None = None


def train_teacher(
    item_features: pd.DataFrame,
    train_sequences: pd.DataFrame,
    valid_targets: pd.DataFrame,
    model: ModelParams,
    params: FineTuningParams,
    training: TrainingParams,
) -> Teacher:
    """A wider Cloze-trained model whose soft targets guide fine-tuning; empty when
    distillation is off (weight 0), which costs nothing."""
    settings = params.distillation
    if settings.weight == 0:
        return Teacher()
    width = settings.teacher_hidden_size
    teacher = init_model(
        item_features, model, training, seed_offset=1, hidden_size=width,
        num_layers=settings.teacher_num_layers, intermediate_size=4 * width,
    )  # fmt: skip
    config = teacher.config
    teacher, _ = train(
        teacher, ClozeObjective(params.mask_prob, config.mask_id, config.n_items),
        train_sequences, valid_targets, params.model_copy(update={"epochs": settings.teacher_epochs}),
        training, "teacher",
    )  # fmt: skip
    return Teacher(teacher)


def objective_for(config: SequenceRecConfig, params: FineTuningParams) -> Objective:
    """The fine-tuning objective the parameters ask for (see `FineTuningParams`)."""
    if params.objective == "causal":
        return CausalObjective(params.cloze_weight, params.mask_prob, config.mask_id)
    return NextItemObjective(
        config.mask_id, config.n_items, params.prefixes_per_sequence,
        params.cloze_weight, params.mask_prob,
    )  # fmt: skip


def fine_tune(
    model: SequenceRecModel,
    teacher: Teacher,
    train_sequences: pd.DataFrame,
    valid_targets: pd.DataFrame,
    params: FineTuningParams,
    training: TrainingParams,
    name: str,
) -> tuple[SequenceRecModel, pd.DataFrame]:
    """Fine-tune `model` with the regularizers in `params`; its starting weights are epoch
    0 and are kept if no fine-tuned epoch beats them on validation."""
    config = model.config
    model.set_dropout(
        config.hidden_dropout if params.hidden_dropout is None else params.hidden_dropout,
        config.attention_dropout if params.attention_dropout is None else params.attention_dropout,
    )  # fmt: skip
    distill = params.distillation
    loss = LossSettings(
        label_smoothing=params.label_smoothing, fgm_epsilon=params.fgm_epsilon,
        teacher=teacher.model,
        distill_weight=0.0 if teacher.model is None else distill.weight,
        temperature=distill.temperature,
    )  # fmt: skip
    return train(
        model, objective_for(config, params), train_sequences, valid_targets, params,
        training, name, loss=loss, encoder_lr_scale=params.encoder_lr_scale,
        freeze_layers=params.freeze_layers, start_is_candidate=True,
    )  # fmt: skip


# The two branches of the ablation: the same function, told which model it trains.
fine_tune_pretrained = update_wrapper(partial(fine_tune, name="fine_tuned"), fine_tune)
fine_tune_scratch = update_wrapper(partial(fine_tune, name="scratch"), fine_tune)
