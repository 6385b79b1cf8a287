"""Masked-item (Cloze) pretraining on the training sequences only."""

from __future__ import annotations

import pandas as pd
import torch

from maskrec.models.sequence import SequenceRecConfig, SequenceRecModel
from maskrec.params import ModelParams, PretrainingParams
from maskrec.training.data import eval_set, training_windows
from maskrec.training.loop import LossSettings, fit
from maskrec.training.objectives import ClozeObjective


def model_config(
    item_features: pd.DataFrame, params: ModelParams, causal: bool = False, **overrides
) -> SequenceRecConfig:
    """The architecture from parameters plus the catalogue (ids, genres, years) from data."""
    features = item_features.sort_values("item_id")
    genre_columns = [c for c in features.columns if c.startswith("genre_")]
    genres = features[genre_columns].to_numpy()
    years = features["year"].astype("Int64").fillna(0).astype(int).tolist()
    settings = params.model_dump(exclude={"seed"})
    settings.update(overrides)
    return SequenceRecConfig(
        n_items=len(features),
        hidden_size=settings["hidden_size"],
        num_layers=settings["num_layers"],
        num_heads=settings["num_heads"],
        intermediate_size=settings["intermediate_size"],
        hidden_dropout=settings["hidden_dropout"],
        attention_dropout=settings["attention_dropout"],
        max_len=settings["max_len"],
        causal=causal,
        recency_bias=settings["recency_bias"],
        n_genres=len(genre_columns),
        use_genres=settings["use_genres"] and bool(genre_columns),
        use_years=settings["use_years"],
        item_ids=features["original_item_id"].astype(int).tolist(),
        item_genres=[row.nonzero()[0].tolist() for row in genres],
        item_years=years,
    )


def init_model(item_features: pd.DataFrame, params: ModelParams) -> SequenceRecModel:
    """A freshly initialised model. Seeded: the pretrained and the scratch model start from
    the very same weights, so the ablation differs only in pretraining."""
    torch.manual_seed(params.seed)
    return SequenceRecModel(model_config(item_features, params))


def history_frame(history: list[dict], model: str) -> pd.DataFrame:
    return pd.DataFrame(history).assign(model=model)


def pretrain(
    model: SequenceRecModel,
    train_sequences: pd.DataFrame,
    valid_targets: pd.DataFrame,
    params: PretrainingParams,
) -> tuple[SequenceRecModel, pd.DataFrame]:
    """Cloze pretraining with early stopping on validation NDCG@10 (mask appended after
    each user's training history)."""
    length = model.config.max_len
    objective = ClozeObjective(
        params.mask_prob,
        model.config.mask_id,
        model.config.n_items,
        params.bert_replacement,
    )
    model, history = fit(
        model,
        objective,
        training_windows(train_sequences["item_ids"].tolist(), length),
        eval_set(valid_targets, length),
        params,
        name="pretraining",
        loss=LossSettings(genre_weight=params.genre_loss_weight),
    )
    return model, history_frame(history, "pretrained")
