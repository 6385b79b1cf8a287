"""The evaluation pipeline on an in-memory catalog: every registered model, scored once."""

from __future__ import annotations

from maskrec.pipelines.evaluation import create_pipeline
from maskrec.registry import models
from tests.helpers import quick_parameters, run_pipeline, small_split


def test_every_model_is_scored_on_every_test_user(trained, caplog):
    data = small_split()
    inputs = {"test_targets": data["test"], "valid_targets": data["valid"], "train_sequences": data["train"],
              "item_features": data["item_features"], "params:evaluation": quick_parameters()["params:evaluation"], "params:training": quick_parameters()["params:training"],
              "new_films_model": trained["new_films_model"], **{m.dataset: trained[m.dataset] for m in models()}}  # fmt: skip
    out = run_pipeline(create_pipeline(), inputs, caplog)
    per_user, metrics = out["per_user_metrics"], out["evaluation_metrics"]
    assert len(per_user) == len(models()) * len(data["test"])
    assert set(metrics["models"]) == {m.name for m in models()}
    assert metrics["best_model_by_validation"] in metrics["models"]
    assert metrics["models"]["sasrec"]["test_ndcg@10_seen_included"] <= 1.0
    assert all(t["p_adjusted"] >= t["p_value"] for t in metrics["paired_tests"] if t["users"])  # fmt: skip


def test_a_skipped_baseline_is_reported_not_scored_and_never_chosen(trained, caplog):
    from maskrec.models.baselines import Skipped
    from maskrec.pipelines.reporting.nodes import build_summary

    data = small_split()
    skipped = Skipped(trained["ease_baseline"].n_items, config={"model": "ease", "reason": "too large"})  # fmt: skip
    inputs = {"test_targets": data["test"], "valid_targets": data["valid"], "train_sequences": data["train"],
              "item_features": data["item_features"], "params:evaluation": quick_parameters()["params:evaluation"], "params:training": quick_parameters()["params:training"],
              "new_films_model": trained["new_films_model"], **{m.dataset: trained[m.dataset] for m in models()}, "ease_baseline": skipped}  # fmt: skip
    out = run_pipeline(create_pipeline(), inputs, caplog)
    metrics = out["evaluation_metrics"]
    assert "ease" not in set(out["per_user_metrics"]["model"])
    assert (
        metrics["skipped"] == {"ease": "too large"} and "ease" not in metrics["models"]
    )
    assert metrics["best_baseline_by_validation"] in {
        "item_knn",
        "mf_als",
        "most_popular",
    }
    assert "Skipped in this run: EASE (too large)." in build_summary(metrics, {})[1]
