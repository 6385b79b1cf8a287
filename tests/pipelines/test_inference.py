from __future__ import annotations

import pandas as pd
import pytest

from maskrec.models.baselines import MostPopular, interaction_matrix
from maskrec.params import InferenceParams
from maskrec.pipelines.inference.nodes import (
    recommend_for_all_users,
    recommend_for_history,
)

ITEMS = pd.DataFrame(
    {
        "item_id": [1, 2, 3, 4],
        "original_item_id": [10, 20, 30, 40],
        "title": ["A", "B", "C", "D"],
        "year": [2000] * 4,
    }
)
INTERACTIONS = pd.DataFrame(
    {"user_id": [0, 0, 1], "item_id": [1, 2, 1], "rating": 4.0, "timestamp": [1, 2, 3]}
)
USERS = pd.DataFrame({"user_id": [0, 1], "original_user_id": [100, 200]})
MODELS = {
    "most_popular": MostPopular.fit(
        interaction_matrix([[1, 2, 3], [1, 2], [1]], n_items=4)
    )
}
STATS = {"most_popular": {"valid_ndcg@10": 0.1}}


def test_recommendations_for_everyone_skip_what_they_have_seen():
    recs = recommend_for_all_users(
        INTERACTIONS, ITEMS, USERS, STATS, InferenceParams(top_k=2), **MODELS
    )
    assert recs[recs["user_id"] == 100]["item_id"].tolist() == [30, 40]
    assert recs[recs["user_id"] == 200]["title"].tolist() == ["B", "C"]
    assert (
        recs["rank"].tolist() == [1, 2, 1, 2]
        and (recs["model"] == "most_popular").all()
    )


def test_recommendations_for_a_given_history():
    recs = recommend_for_history(
        ITEMS, STATS, InferenceParams(top_k=1, history=[10, 30]), **MODELS
    )
    assert recs["item_id"].tolist() == [20]
    assert recommend_for_history(ITEMS, STATS, InferenceParams(), **MODELS).empty


def test_unknown_items_and_models_are_named():
    with pytest.raises(ValueError, match=r"item ids \[99\]"):
        recommend_for_history(ITEMS, STATS, InferenceParams(history=[10, 99]), **MODELS)
    with pytest.raises(ValueError, match="inference.model='nope'"):
        recommend_for_history(
            ITEMS, STATS, InferenceParams(model="nope", history=[10]), **MODELS
        )
