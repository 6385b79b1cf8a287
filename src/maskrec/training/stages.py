"""The training stages, each a function of data and parameters: Cloze pretraining,
regularized fine-tuning (with an optional distillation teacher), rating fine-tuning and
SASRec. Several
pipelines run the same stage on different data (the target's pretraining and the
transfer's source pretraining, say), so the stages live here and each pipeline's nodes.py
binds the model name it trains (`named`): no pipeline imports another pipeline's nodes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial, update_wrapper

import pandas as pd

from maskrec.model_input import RatingSet
from maskrec.models.sequence import SequenceRecConfig, SequenceRecModel
from maskrec.params import (
    FineTuningParams,
    ModelParams,
    PretrainingParams,
    RatingHeadParams,
    SASRecParams,
    TrainingParams,
)
from maskrec.training.loop import LossSettings
from maskrec.training.objectives import (
    CausalObjective,
    ClozeObjective,
    NextItemObjective,
    Objective,
    RatingObjective,
)
from maskrec.training.setup import init_model, train


def named(stage: Callable, name: str) -> Callable:
    """`stage` with the model name it trains bound (a node function keeps the stage's
    name and signature for Kedro and kedro-viz)."""
    return update_wrapper(partial(stage, name=name), stage)


def pretrain(
    initial_model: SequenceRecModel,
    sequences: pd.DataFrame,
    valid_targets: pd.DataFrame,
    params: PretrainingParams,
    training: TrainingParams,
    name: str,
) -> tuple[SequenceRecModel, pd.DataFrame]:
    """Cloze pretraining on `sequences`, early-stopped on validation NDCG@10 (a [MASK]
    appended after each user's training history is the next-item question)."""
    config = initial_model.config
    objective = ClozeObjective(
        params.mask_prob, config.mask_id, config.n_items, params.bert_replacement
    )
    return train(
        initial_model, objective, sequences, valid_targets, params, training, name,
        loss=LossSettings(genre_weight=params.genre_loss_weight),
    )  # fmt: skip


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


def fine_tuning_objective(
    config: SequenceRecConfig, params: FineTuningParams
) -> Objective:
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
    set_dropout(model, params)
    distill = params.distillation
    loss = LossSettings(
        label_smoothing=params.label_smoothing, fgm_epsilon=params.fgm_epsilon,
        teacher=teacher.model,
        distill_weight=0.0 if teacher.model is None else distill.weight,
        temperature=distill.temperature,
    )  # fmt: skip
    return train(
        model, fine_tuning_objective(config, params), train_sequences, valid_targets,
        params, training, name, loss=loss, encoder_lr_scale=params.encoder_lr_scale,
        freeze_layers=params.freeze_layers, start_is_candidate=True,
    )  # fmt: skip


def set_dropout(model: SequenceRecModel, params: FineTuningParams | RatingHeadParams) -> None:  # fmt: skip
    """Fine-tuning's dropout (None keeps the model's)."""
    config = model.config
    model.set_dropout(
        config.hidden_dropout if params.hidden_dropout is None else params.hidden_dropout,
        config.attention_dropout if params.attention_dropout is None else params.attention_dropout,
    )  # fmt: skip


def fine_tune_ratings(
    model: SequenceRecModel,
    rated_sequences: pd.DataFrame,
    valid: RatingSet,
    params: RatingHeadParams,
    training: TrainingParams,
    name: str,
) -> tuple[SequenceRecModel, pd.DataFrame]:
    """Fine-tune a model with a rating head (`with_rating_head`) to predict hidden ratings
    among shown ones, with the ranking fine-tuning's regularizers, early-stopped on the
    validation questions' RMSE; its starting weights are epoch 0, as in `fine_tune`."""
    set_dropout(model, params)
    return train(
        model, RatingObjective(params.mask_prob), rated_sequences, valid, params, training,
        name, loss=LossSettings(fgm_epsilon=params.fgm_epsilon),
        encoder_lr_scale=params.encoder_lr_scale, freeze_layers=params.freeze_layers,
        start_is_candidate=True,
    )  # fmt: skip


def train_sasrec(
    item_features: pd.DataFrame,
    train_sequences: pd.DataFrame,
    valid_targets: pd.DataFrame,
    model: ModelParams,
    params: SASRecParams,
    training: TrainingParams,
    name: str,
) -> tuple[SequenceRecModel, pd.DataFrame]:
    """SASRec from scratch: the shared architecture made causal, next-item targets at every
    position, early-stopped on validation NDCG@10 like every other model."""
    sasrec = init_model(
        item_features, model, training, causal=True, num_heads=params.num_heads,
        hidden_dropout=params.hidden_dropout, attention_dropout=params.attention_dropout,
    )  # fmt: skip
    return train(sasrec, CausalObjective(), train_sequences, valid_targets, params, training, name)  # fmt: skip
