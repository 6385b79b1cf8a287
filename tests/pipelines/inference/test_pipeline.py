"""The inference pipeline on an in-memory catalog, reading saved models lazily."""

from __future__ import annotations

from maskrec.datasets import TrainedModelsDataset
from tests.helpers import quick_parameters, run_pipeline, small_split


def test_recommendations_come_from_the_model_best_on_validation(models_folder, caplog):
    data = small_split()
    stats = {"ease": {"valid_ndcg@10": 0.2}, "sasrec": {"valid_ndcg@10": 0.3}, "most_popular": {"valid_ndcg@10": 0.1}}  # fmt: skip
    inputs = {"interactions": data["interactions"], "item_features": data["item_features"], "user_map": data["user_map"],
              "model_stats": stats, "trained_models": TrainedModelsDataset(path=str(models_folder)).load(),
              "params:inference": quick_parameters()["params:inference"]}  # fmt: skip
    from maskrec.pipelines.inference import create_pipeline

    out = run_pipeline(create_pipeline(), inputs, caplog)
    recs, mine = out["recommendations"], out["history_recommendations"]
    assert (recs["model"] == "sasrec").all() and (mine["model"] == "sasrec").all()
    assert recs["user_id"].nunique() == data["interactions"]["user_id"].nunique()
    assert len(mine) == 10 and not set(mine["item_id"]) & set(quick_parameters()["params:inference"].history)  # fmt: skip
