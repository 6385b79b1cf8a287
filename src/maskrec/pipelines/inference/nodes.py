"""Top-K recommendations with titles, for every user and for a given history."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from maskrec.evaluation import recommend
from maskrec.models.baselines import Baseline
from maskrec.models.sequence import SequenceRecModel
from maskrec.params import InferenceParams

logger = logging.getLogger(__name__)


def _choose(
    model_stats: dict[str, Any],
    params: InferenceParams,
    models: dict[str, SequenceRecModel | Baseline],
) -> str:
    if params.model == "best":
        return max(model_stats, key=lambda m: model_stats[m]["valid_ndcg@10"])
    if params.model not in models:
        raise ValueError(
            f"inference.model={params.model!r} is not one of 'best', {sorted(models)}"
        )
    return params.model


def _frame(
    owners: np.ndarray,
    items: np.ndarray,
    scores: np.ndarray,
    item_features: pd.DataFrame,
    model: str,
) -> pd.DataFrame:
    lookup = item_features.set_index("item_id")
    flat = items.ravel()
    return pd.DataFrame({
        "user_id": np.repeat(owners, items.shape[1]),
        "rank": np.tile(np.arange(1, items.shape[1] + 1), len(owners)),
        "item_id": lookup.loc[flat, "original_item_id"].to_numpy(),
        "title": lookup.loc[flat, "title"].to_numpy(),
        "year": lookup.loc[flat, "year"].to_numpy(),
        "score": scores.ravel().astype(float),
        "model": model,
    })  # fmt: skip


def recommend_for_all_users(
    interactions: pd.DataFrame, item_features: pd.DataFrame, user_map: pd.DataFrame, model_stats: dict[str, Any],
    params: InferenceParams, **models: SequenceRecModel | Baseline,
) -> pd.DataFrame:  # fmt: skip
    """Every user's top-K unseen items from their whole known history (original ids)."""
    name = _choose(model_stats, params, models)
    histories = interactions.groupby("user_id", sort=True)["item_id"].agg(list)
    items, scores = recommend(
        models[name], histories.tolist(), params.top_k, params.batch_size
    )
    original_users = (
        user_map.set_index("user_id")
        .loc[histories.index, "original_user_id"]
        .to_numpy()
    )
    logger.info("recommendations for %d users with %s", len(histories), name)
    return _frame(original_users, items, scores, item_features, name)


def recommend_for_history(
    item_features: pd.DataFrame,
    model_stats: dict[str, Any],
    params: InferenceParams,
    **models: SequenceRecModel | Baseline,
) -> pd.DataFrame:
    """Top-K for the history in `inference.history` (original item ids, oldest first)."""
    name = _choose(model_stats, params, models)
    if not params.history:
        return _frame(
            np.zeros(0, dtype=int),
            np.zeros((0, params.top_k), dtype=int),
            np.zeros((0, params.top_k)),
            item_features,
            name,
        )
    known = dict(
        zip(item_features["original_item_id"], item_features["item_id"], strict=True)
    )
    unknown = [i for i in params.history if i not in known]
    if unknown:
        raise ValueError(
            f"inference.history: item ids {unknown[:10]} are not in the catalogue the models were trained on"
        )
    items, scores = recommend(
        models[name], [[known[i] for i in params.history]], params.top_k
    )
    return _frame(np.zeros(1, dtype=int), items, scores, item_features, name)
