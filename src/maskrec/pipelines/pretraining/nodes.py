"""Masked-item (Cloze) pretraining on the training sequences only."""

from __future__ import annotations

import pandas as pd

from maskrec.models.sequence import SequenceRecModel
from maskrec.params import PretrainingParams, TrainingParams
from maskrec.training.loop import LossSettings
from maskrec.training.objectives import ClozeObjective
from maskrec.training.setup import train


def pretrain(
    pretrained_initial_model: SequenceRecModel,
    train_sequences: pd.DataFrame,
    valid_targets: pd.DataFrame,
    params: PretrainingParams,
    training: TrainingParams,
) -> tuple[SequenceRecModel, pd.DataFrame]:
    """Cloze pretraining, early-stopped on validation NDCG@10 (a [MASK] appended after
    each user's training history is the next-item question)."""
    config = pretrained_initial_model.config
    objective = ClozeObjective(
        params.mask_prob, config.mask_id, config.n_items, params.bert_replacement
    )
    return train(
        pretrained_initial_model, objective, train_sequences, valid_targets, params,
        training, "pretrained", loss=LossSettings(genre_weight=params.genre_loss_weight),
    )  # fmt: skip
