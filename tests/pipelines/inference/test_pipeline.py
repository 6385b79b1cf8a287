"""The inference pipeline on an in-memory catalog, reading saved models lazily."""

from __future__ import annotations

import pandas as pd

from maskrec.datasets import TrainedModelsDataset
from tests.helpers import quick_parameters, run_pipeline, small_split


def test_recommendations_come_from_the_model_best_on_validation(models_folder, caplog):
    data = small_split()
    known = data["item_features"]["original_item_id"].tolist()
    stats = {"ease": {"valid_ndcg@10": 0.2}, "sasrec": {"valid_ndcg@10": 0.3}, "most_popular": {"valid_ndcg@10": 0.1}}  # fmt: skip
    inputs = {"interactions": data["interactions"], "item_features": data["item_features"], "user_map": data["user_map"],
              "model_stats": stats, "trained_models": TrainedModelsDataset(path=str(models_folder)).load(),
              "history_requests": pd.DataFrame({"request_id": ["a", "b"], "where": ["f, line 2", "f, line 3"],
                                                "history": [known[:3], known[3:4]]}),
              "params:inference": quick_parameters()["params:inference"], "params:training": quick_parameters()["params:training"]}  # fmt: skip
    from maskrec.pipelines.inference import create_pipeline

    out = run_pipeline(create_pipeline(), inputs, caplog)
    recs, mine = out["recommendations"], out["history_recommendations"]
    assert (recs["model"] == "sasrec").all() and (mine["model"] == "sasrec").all()
    assert recs["predicted_rating"].isna().all()  # no rating model in the folder
    assert recs["user_id"].nunique() == data["interactions"]["user_id"].nunique()
    assert len(mine) == 10 and not set(mine["item_id"]) & set(quick_parameters()["params:inference"].history)  # fmt: skip
    requests = out["request_recommendations"]
    assert requests.groupby("request_id").size().to_dict() == {"a": 10, "b": 10}
    assert not set(requests.loc[requests["request_id"] == "a", "item_id"]) & set(
        known[:3]
    )
