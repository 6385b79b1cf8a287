"""Top-K recommendations with titles, for every user and for a given history, from one
model: the best by validation NDCG@10 or the one `inference.model` names."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from maskrec.evaluation import Model, recommend
from maskrec.params import InferenceParams
from maskrec.pipelines.evaluation.nodes import scored

logger = logging.getLogger(__name__)


def load_chosen_model(
    model_stats: dict[str, Any],
    trained_models: dict[str, Callable[[], Model]],
    params: InferenceParams,
) -> tuple[Model, str]:
    """Load only the model inference uses (chosen on validation, never on test)."""
    candidates = scored(model_stats)
    name = (
        max(candidates, key=lambda m: candidates[m]["valid_ndcg@10"])
        if params.model == "best"
        else params.model
    )
    if name in model_stats and name not in candidates:
        raise ValueError(
            f"inference.model={name!r} was skipped in this run "
            f"({model_stats[name]['skipped']}); name another model or 'best'"
        )
    logger.info("recommending with %s", name)
    return trained_models[name](), name


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
    interactions: pd.DataFrame,
    item_features: pd.DataFrame,
    user_map: pd.DataFrame,
    chosen_model: Model,
    chosen_model_name: str,
    params: InferenceParams,
) -> pd.DataFrame:
    """Every user's top-K unseen items from their whole known history (original ids)."""
    histories = interactions.groupby("user_id", sort=True)["item_id"].agg(list)
    items, scores = recommend(chosen_model, histories.tolist(), params.top_k, params.batch_size)  # fmt: skip
    users = user_map.set_index("user_id").loc[histories.index, "original_user_id"]
    return _frame(users.to_numpy(), items, scores, item_features, chosen_model_name)


def recommend_for_history(
    item_features: pd.DataFrame,
    chosen_model: Model,
    chosen_model_name: str,
    params: InferenceParams,
) -> pd.DataFrame:
    """Top-K for the history in `inference.history` (original item ids, oldest first)."""
    requests = pd.DataFrame({"request_id": ["0"], "history": [params.history], "where": ["inference.history"]})  # fmt: skip
    frame = _recommend_histories(requests[: 1 if params.history else 0], item_features, chosen_model, chosen_model_name, params)  # fmt: skip
    return frame.rename(columns={"request_id": "user_id"}).assign(user_id=0)


def recommend_for_requests(
    history_requests: pd.DataFrame,
    item_features: pd.DataFrame,
    chosen_model: Model,
    chosen_model_name: str,
    params: InferenceParams,
) -> pd.DataFrame:
    """Top-K for every history of the file `inference_histories` names (one per row;
    `HistoriesDataset`), by request_id; empty when no file is given."""
    return _recommend_histories(history_requests, item_features, chosen_model, chosen_model_name, params)  # fmt: skip


def _recommend_histories(
    requests: pd.DataFrame,
    item_features: pd.DataFrame,
    chosen_model: Model,
    chosen_model_name: str,
    params: InferenceParams,
) -> pd.DataFrame:
    """Histories of original ids (request_id, history, where) -> top-K frame; an id the
    catalogue lacks is an error naming its request, before anything is scored."""
    known = dict(
        zip(item_features["original_item_id"], item_features["item_id"], strict=True)
    )
    for where, history in zip(requests["where"], requests["history"], strict=True):
        unknown = [i for i in history if i not in known]
        if unknown:
            raise ValueError(
                f"{where}: item ids {unknown[:10]} are not in the catalogue the models were trained on"
            )
    histories = [[known[i] for i in history] for history in requests["history"]]
    items, scores = recommend(chosen_model, histories, params.top_k, params.batch_size)
    frame = _frame(requests["request_id"].to_numpy(), items, scores, item_features, chosen_model_name)  # fmt: skip
    return frame.rename(columns={"user_id": "request_id"})
