"""What every training node needs around `fit`, in one place: the model's config and
seeded initial weights from a stage's spec and the item features, the training windows
and the validation set from the split tables, and the history table afterwards.

Nodes call `init_model` and `train`; nothing else builds windows, evaluation sets or
model configs.
"""

from __future__ import annotations

import warnings
import zlib

import numpy as np
import pandas as pd
import torch

from maskrec.alignment import normalise_title
from maskrec.catalogue import (
    RETRAIN,
    CatalogueMismatch,
    item_counts,
    original_ids,
    trained_on,
)
from maskrec.model_input import RatingSet, eval_set, training_windows
from maskrec.models.sequence import SequenceRecConfig, SequenceRecModel
from maskrec.params import Architecture, ClozeStage, Stage, TrainingParams
from maskrec.training.loop import fit
from maskrec.training.objectives import Objective


def model_config(
    item_features: pd.DataFrame, architecture: Architecture
) -> SequenceRecConfig:
    """The architecture (every field, as the stage's spec resolved it) plus the catalogue
    (ids, genres, years, title words) from the item features."""
    features = item_features.sort_values("item_id")
    genre_columns = [c for c in features.columns if c.startswith("genre_")]
    genres = features[genre_columns].to_numpy()
    settings = architecture.model_dump()
    titles = settings["item_content"] and settings["title_buckets"]
    numeric = standardised(features[[c for c in features.columns if c.startswith("feature_")]])  # fmt: skip
    return SequenceRecConfig(
        n_items=len(features),
        **(settings | {"use_genres": settings["use_genres"] and bool(genre_columns)}),
        n_genres=len(genre_columns),
        item_ids=original_ids(features["original_item_id"]),
        item_titles=features["title"].astype(str).tolist(),
        item_genres=[row.nonzero()[0].tolist() for row in genres],
        item_years=features["year"].astype("Int64").fillna(0).astype(int).tolist(),
        item_title_words=[title_words(t, settings["title_buckets"]) for t in features["title"]] if titles else None,
        item_numeric=numeric.tolist() if numeric.size else None,
        n_item_features=numeric.shape[1],
        records_trained_items=True,
    )  # fmt: skip


def standardised(columns: pd.DataFrame) -> np.ndarray:
    """Numeric item features (a log's item table) on one scale: each column centred and
    divided by its standard deviation over the catalogue, an unknown value at the mean
    (0). Content, not interactions: no training event is read."""
    values = columns.to_numpy(dtype=np.float64)
    if not values.size:
        return np.zeros((len(columns), 0))
    with warnings.catch_warnings():  # a column with no value at all: mean 0, spread 1
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nan_to_num(np.nanmean(values, axis=0))
        spread = np.nan_to_num(np.nanstd(values, axis=0))
    spread[spread == 0] = 1.0
    return np.nan_to_num((values - mean) / spread).round(6)


def title_words(title: str, buckets: int, most: int = 16) -> list[int]:
    """A title's words (normalised as for alignment), each hashed to 1..buckets-1 with a
    stable hash (CRC-32), so the same word gets the same bucket in every release and run."""
    words = normalise_title(title).split()[:most]
    return [zlib.crc32(word.encode()) % (buckets - 1) + 1 for word in words]


def fresh_model(item_features: pd.DataFrame, stage: Stage) -> SequenceRecModel:
    """Fresh weights of the stage's architecture, seeded by the stage's seed."""
    torch.manual_seed(stage.seed)
    return SequenceRecModel(model_config(item_features, stage.model))


def init_model(item_features: pd.DataFrame, stage: ClozeStage) -> SequenceRecModel:
    """The node that starts a Cloze-trained model (`fresh_model`): the pretrained and the
    scratch model start from the very same weights (both from the `pretraining` spec),
    so the ablation differs only in pretraining. (Typed as the Cloze stage its nodes
    give it, so Kedro validates `params:pretraining` as one type in every pipeline.)"""
    return fresh_model(item_features, stage)


def train(
    model: SequenceRecModel,
    objective: Objective,
    train_sequences: pd.DataFrame,
    valid: pd.DataFrame | RatingSet,
    stage: Stage,
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
    if len(sequences):  # the items this training gives interactions (`known_items`)
        seen = np.unique(np.concatenate(sequences))
        if seen[-1] > model.config.n_items:  # a model saved before the data changed
            raise CatalogueMismatch(
                f"{name}: the training data has item id {seen[-1]}, but the model it starts from "
                f"knows {model.config.n_items} items: it was trained on other data. Retrain on "
                f"this data: `{RETRAIN}`"
            )
        model.mark_known(seen)
    tokens = train_sequences["rating_codes"].tolist() if objective.reads_ratings else sequences  # fmt: skip
    model, history = fit(
        model,
        objective,
        training_windows(tokens, objective.window_length(max_len)),
        valid if isinstance(valid, RatingSet) else eval_set(valid, max_len),
        stage,
        training,
        name,
        **options,
    )
    # the model's own catalogue: what it was trained on, for scoring it alone later
    model.config.item_counts = item_counts(train_sequences, model.config.n_items)
    model.config.trained_on = trained_on(model.config.item_ids, train_sequences, stage.model_dump(), name)  # fmt: skip
    return model, pd.DataFrame(history).assign(model=name)
