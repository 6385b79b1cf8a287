"""What every training node needs around `fit`, in one place: the model's config and
seeded initial weights from parameters and item features, the training windows and the
validation set from the split tables, and the history table afterwards.

Nodes call `init_model` and `train`; nothing else builds windows, evaluation sets or
model configs.
"""

from __future__ import annotations

import zlib

import numpy as np
import pandas as pd
import torch

from maskrec.alignment import normalise_title
from maskrec.model_input import RatingSet, eval_set, training_windows
from maskrec.models.sequence import SequenceRecConfig, SequenceRecModel
from maskrec.params import ModelParams, ScheduleParams, TrainingParams
from maskrec.training.loop import fit
from maskrec.training.objectives import Objective


def model_config(
    item_features: pd.DataFrame, params: ModelParams, **overrides
) -> SequenceRecConfig:
    """The architecture from parameters (any field overridable) plus the catalogue (ids,
    genres, years) from the item features."""
    features = item_features.sort_values("item_id")
    genre_columns = [c for c in features.columns if c.startswith("genre_")]
    genres = features[genre_columns].to_numpy()
    settings = params.model_dump() | overrides
    return SequenceRecConfig(
        n_items=len(features),
        hidden_size=settings["hidden_size"],
        num_layers=settings["num_layers"],
        num_heads=settings["num_heads"],
        intermediate_size=settings["intermediate_size"],
        hidden_dropout=settings["hidden_dropout"],
        attention_dropout=settings["attention_dropout"],
        max_len=settings["max_len"],
        causal=settings.get("causal", False),
        recency_bias=settings["recency_bias"],
        n_genres=len(genre_columns),
        use_genres=settings["use_genres"] and bool(genre_columns),
        use_years=settings["use_years"],
        item_ids=features["original_item_id"].astype(int).tolist(),
        item_genres=[row.nonzero()[0].tolist() for row in genres],
        item_years=features["year"].astype("Int64").fillna(0).astype(int).tolist(),
        item_content=settings["item_content"],
        title_buckets=settings["title_buckets"],
        item_title_words=[title_words(t, settings["title_buckets"]) for t in features["title"]]
        if settings["item_content"] and settings["title_buckets"]
        else None,
    )  # fmt: skip


def title_words(title: str, buckets: int, most: int = 16) -> list[int]:
    """A title's words (normalised as for alignment), each hashed to 1..buckets-1 with a
    stable hash (CRC-32), so the same word gets the same bucket in every release and run."""
    words = normalise_title(title).split()[:most]
    return [zlib.crc32(word.encode()) % (buckets - 1) + 1 for word in words]


def init_model(
    item_features: pd.DataFrame,
    model: ModelParams,
    training: TrainingParams,
    seed_offset: int = 0,
    **overrides,
) -> SequenceRecModel:
    """Fresh weights seeded by `training.seed` (+ `seed_offset`): the pretrained and the
    scratch model start from the very same weights, so the ablation differs only in
    pretraining."""
    torch.manual_seed(training.seed + seed_offset)
    return SequenceRecModel(model_config(item_features, model, **overrides))


def train(
    model: SequenceRecModel,
    objective: Objective,
    train_sequences: pd.DataFrame,
    valid: pd.DataFrame | RatingSet,
    schedule: ScheduleParams,
    training: TrainingParams,
    name: str,
    **options,
) -> tuple[SequenceRecModel, pd.DataFrame]:
    """`fit` on windows of the training sequences (as long as the objective needs; rated
    tokens for a rating objective) with early stopping on `valid` (the validation targets
    table, or rating questions); returns the model and its history table (one row per
    epoch, `model` = `name`). `options` go to `fit`."""
    max_len = model.config.max_len
    sequences = train_sequences["item_ids"].tolist()
    if len(sequences):  # the items this training gives interactions (content models)
        model.mark_known(np.unique(np.concatenate(sequences)))
    tokens = train_sequences["rating_codes"].tolist() if objective.reads_ratings else sequences  # fmt: skip
    model, history = fit(
        model,
        objective,
        training_windows(tokens, objective.window_length(max_len)),
        valid if isinstance(valid, RatingSet) else eval_set(valid, max_len),
        schedule,
        training,
        name,
        **options,
    )
    return model, pd.DataFrame(history).assign(model=name)
