"""The training stages, each a function of data and its resolved spec (`params.Stage`):
Cloze pretraining, regularized fine-tuning (with an optional distillation teacher),
rating fine-tuning and SASRec. Several pipelines run the same stage on different data
(the target's pretraining and the transfer's source pretraining, say), so the stages
live here and each pipeline's nodes.py binds the model name it trains (`named`): no
pipeline imports another pipeline's nodes.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from functools import partial, update_wrapper
from typing import Any

import pandas as pd
import torch

from maskrec.catalogue import check_catalogue
from maskrec.model_input import RatingSet
from maskrec.models.sequence import SequenceRecConfig, SequenceRecModel
from maskrec.params import (
    ClozeStage,
    FineTuningStage,
    RatingHeadStage,
    SASRecStage,
    TrainingParams,
)
from maskrec.training.loop import EpochCallback, Teacher
from maskrec.training.objectives import (
    CausalObjective,
    ClozeObjective,
    NextItemObjective,
    Objective,
    RatingObjective,
)
from maskrec.training.setup import fresh_model, init_model, train


def named(stage: Callable, name: str) -> Callable:
    """`stage` with the model name it trains bound (a node function keeps the stage's
    name and signature for Kedro and kedro-viz)."""
    return update_wrapper(partial(stage, name=name), stage)


def pretrain(
    initial_model: SequenceRecModel,
    sequences: pd.DataFrame,
    valid_targets: pd.DataFrame,
    stage: ClozeStage,
    training: TrainingParams,
    name: str,
    keep_checkpoint: bool = False,
) -> tuple[SequenceRecModel, pd.DataFrame]:
    """Cloze pretraining on `sequences`, early-stopped on validation NDCG@10 (a [MASK]
    appended after each user's training history is the next-item question).
    `keep_checkpoint`: see `fit`."""
    config = initial_model.config
    objective = ClozeObjective(stage.mask_prob, config.mask_id, config.n_items, stage.bert_replacement)  # fmt: skip
    return train(initial_model, objective, sequences, valid_targets, stage, training, name, keep_checkpoint=keep_checkpoint)  # fmt: skip


def train_teacher(
    item_features: pd.DataFrame,
    train_sequences: pd.DataFrame,
    valid_targets: pd.DataFrame,
    stage: FineTuningStage,
    training: TrainingParams,
    keep_checkpoint: bool = False,
) -> Teacher:
    """A wider Cloze-trained model (`fine_tuning.distillation.teacher`) whose soft targets
    guide fine-tuning; none when distillation is off (weight 0), which costs nothing.
    `keep_checkpoint`: see `fit`."""
    distillation = stage.distillation
    if distillation.weight == 0:
        return Teacher()
    teacher, _ = pretrain(
        init_model(item_features, distillation.teacher), train_sequences, valid_targets,
        distillation.teacher, training, "teacher", keep_checkpoint,
    )  # fmt: skip
    return Teacher(teacher, distillation.weight, distillation.temperature)


def fine_tuning_objective(config: SequenceRecConfig, stage: FineTuningStage) -> Objective:  # fmt: skip
    """The fine-tuning objective the spec asks for (see `FineTuningStage`)."""
    if stage.objective == "causal":
        return CausalObjective(stage.cloze_weight, stage.mask_prob, config.mask_id)
    return NextItemObjective(
        config.mask_id, config.n_items, stage.prefixes_per_sequence,
        stage.cloze_weight, stage.mask_prob,
    )  # fmt: skip


def warm_start(
    pretrained: SequenceRecModel,
    item_features: pd.DataFrame,
    initial: ClozeStage,
    stage: FineTuningStage,
) -> SequenceRecModel:
    """The weights fine-tuning starts from (`stage.warm_start`): shrink x `pretrained` +
    perturb x the initial weights its pretraining started from (`init_model` on the
    `initial` stage: the scratch ablation's start), parameter by parameter; `pretrained`
    itself where they are 1 and 0. The initial weights are drawn again here, not taken
    from the pipeline, where a model handed on in memory may since have been trained."""
    if stage.warm_start.as_pretrained:
        return pretrained
    initial_weights = dict(init_model(item_features, initial).named_parameters())
    started = copy.deepcopy(pretrained)
    names = [name for name, _ in started.named_parameters()]
    if sorted(names) != sorted(initial_weights):
        raise ValueError("fine_tuning.warm_start: the pretrained model's parameters are not those of the initial weights (another architecture)")  # fmt: skip
    with torch.no_grad():
        for name, weight in started.named_parameters():
            weight.mul_(stage.warm_start.shrink).add_(initial_weights[name], alpha=stage.warm_start.perturb)  # fmt: skip
    return started


def fine_tune(
    model: SequenceRecModel,
    teacher: Teacher,
    train_sequences: pd.DataFrame,
    valid_targets: pd.DataFrame,
    stage: FineTuningStage,
    training: TrainingParams,
    name: str,
    on_epoch: EpochCallback | None = None,
    item_features: pd.DataFrame | None = None,
) -> tuple[SequenceRecModel, pd.DataFrame]:
    """Fine-tune `model` as `stage` says (its dropout, schedule, loss and regularizers);
    its starting weights are epoch 0 and are kept if no fine-tuned epoch beats them on
    validation. `on_epoch`: see `fit`. With `item_features` (the data on disk), a saved
    starting model trained on another item map stops the run, saying what to rerun."""
    if item_features is not None:
        check_catalogue(f"the model {name} starts from", model.catalogue, item_features, "item_features")  # fmt: skip
    model.set_dropout(stage.model.hidden_dropout, stage.model.attention_dropout)
    return train(
        model, fine_tuning_objective(model.config, stage), train_sequences, valid_targets,
        stage, training, name, teacher=teacher, start_is_candidate=True, on_epoch=on_epoch,
    )  # fmt: skip


def with_rating_head(model: SequenceRecModel, scale: dict[str, Any], seed: int, stage: RatingHeadStage) -> SequenceRecModel:  # fmt: skip
    """`model`'s weights plus a new rating head of the kind `stage` trains
    (`rating_loss`), starting at the fitted ratings' mean (`scale`: mean and range); the
    head's random parts are drawn from `seed`, so two models given the same seed get the
    same head."""
    torch.manual_seed(seed)
    return model.with_rating_head(scale["mean"], scale["range"], stage.rating_loss)


def fine_tune_ratings(
    model: SequenceRecModel,
    rated_sequences: pd.DataFrame,
    valid: RatingSet,
    stage: RatingHeadStage,
    training: TrainingParams,
    name: str,
    on_epoch: EpochCallback | None = None,
) -> tuple[SequenceRecModel, pd.DataFrame]:
    """Fine-tune a model with a rating head (`with_rating_head`) to predict hidden ratings
    among shown ones, with the ranking fine-tuning's regularizers, early-stopped on the
    validation questions' RMSE; its starting weights are epoch 0, as in `fine_tune`.
    `on_epoch`: see `fit`."""
    model.set_dropout(stage.model.hidden_dropout, stage.model.attention_dropout)
    return train(
        model, RatingObjective(stage.mask_prob), rated_sequences, valid, stage, training,
        name, start_is_candidate=True, on_epoch=on_epoch,
    )  # fmt: skip


def train_sasrec(
    item_features: pd.DataFrame,
    train_sequences: pd.DataFrame,
    valid_targets: pd.DataFrame,
    stage: SASRecStage,
    training: TrainingParams,
    name: str,
    on_epoch: EpochCallback | None = None,
) -> tuple[SequenceRecModel, pd.DataFrame]:
    """SASRec from scratch: the shared architecture made causal, next-item targets at every
    position, early-stopped on validation NDCG@10 like every other model. `on_epoch`: see
    `fit`."""
    sasrec = fresh_model(item_features, stage)
    return train(sasrec, CausalObjective(), train_sequences, valid_targets, stage, training, name, on_epoch=on_epoch)  # fmt: skip
