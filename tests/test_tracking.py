"""Run tracking (tracking.py, kedro-mlflow): what a run logs, read back from the MLflow
store the run wrote, and two runs with different parameters side by side."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from maskrec.config import load_parameters
from maskrec.tracking import (
    evaluation_metrics,
    flatten,
    git_state,
    history_metrics,
    metric_key,
)
from tests.conftest import PROJECT_ROOT, SMALL_SAMPLE, copy_project, run
from tests.helpers import saved


def test_parameter_groups_flatten_to_dotted_keys():
    params = load_parameters(PROJECT_ROOT / "conf", env="local")
    flat = flatten(params["fine_tuning"], "fine_tuning")
    assert flat["fine_tuning.distillation.weight"] == 0.0
    assert (
        flat["fine_tuning.schedule.learning_rate"]
        == params["fine_tuning"].schedule.learning_rate
    )
    assert flatten({"a": {"b": [1, 2]}, "c": None}) == {"a.b": [1, 2], "c": None}


def test_histories_and_evaluation_become_metric_series_without_at_signs():
    history = pd.DataFrame({"epoch": [0, 1, 2], "train_loss": [math.nan, 5.0, 4.0], "ndcg@10": [0.1, 0.2, 0.3],
                            "hr@10": [0.2, 0.3, 0.4], "model": "sasrec"})  # fmt: skip
    rows = history_metrics(history)
    assert ("sasrec/valid_ndcg_at_10", 0.3, 2) in rows
    assert [r for r in rows if r[0] == "sasrec/train_loss"] == [("sasrec/train_loss", 5.0, 1), ("sasrec/train_loss", 4.0, 2)]  # fmt: skip
    rating = pd.DataFrame({"epoch": [0, 1, 0], "train_loss": [math.nan, 0.9, math.nan], "rmse": [1.1, 0.95, 1.2],
                           "model": ["rating_next_in_time_0_fine_tuned"] * 2 + ["rating_next_in_time_0_scratch"]})  # fmt: skip
    assert history_metrics(rating) == [  # one curve per stage of the rating pipeline
        ("rating_next_in_time_0_fine_tuned/train_loss", 0.9, 1), ("rating_next_in_time_0_fine_tuned/valid_rmse", 1.1, 0),
        ("rating_next_in_time_0_fine_tuned/valid_rmse", 0.95, 1), ("rating_next_in_time_0_scratch/valid_rmse", 1.2, 0),
    ]  # fmt: skip
    metrics = {"models": {"ease": {"all": {"users": 10, "ndcg@10": {"mean": 0.5, "ci_low": 0.4, "ci_high": 0.6}}}},
               "paired_tests": [{"model": "a", "competitor": "b", "group": "all", "users": 5, "mean_difference": 0.1, "p_adjusted": 0.02},
                                {"model": "a", "competitor": "c", "group": "cold", "users": 0}]}  # fmt: skip
    assert evaluation_metrics(metrics) == {
        "test/ease/all/ndcg_at_10": 0.5, "test/ease/all/ndcg_at_10_ci_low": 0.4, "test/ease/all/ndcg_at_10_ci_high": 0.6,
        "paired/a_vs_b/all/mean_difference": 0.1, "paired/a_vs_b/all/p_adjusted": 0.02,
    }  # fmt: skip
    assert metric_key("x", "mrr@20") == "x/mrr_at_20"
    assert (
        metric_key("paired", "a_vs_b", "history<=30") == "paired/a_vs_b/history_le_30"
    )
    assert (
        metric_key("test", "m", "ndcg@10 (warm, >5)") == "test/m/ndcg_at_10 _warm_ _5_"
    )


def test_the_git_commit_is_read_from_the_project():
    state = git_state(PROJECT_ROOT)
    assert len(state["git_commit"]) == 40 and state["git_dirty"] in {"true", "false"}


def runs(project) -> pd.DataFrame:
    """Every run of the project's store as one row: params.*, metrics.*, tags.* columns (the
    table `mlflow.search_runs` gives, and the MLflow UI's compare view shows)."""
    client = MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("maskrec")
    assert experiment is not None, "no 'maskrec' experiment in the project's mlflow.db"
    return pd.DataFrame(
        [{"run_id": r.info.run_id, **{f"params.{k}": v for k, v in r.data.params.items()},
          **{f"metrics.{k}": v for k, v in r.data.metrics.items()}, **{f"tags.{k}": v for k, v in r.data.tags.items()}}
         for r in client.search_runs([experiment.experiment_id])]
    )  # fmt: skip


@pytest.mark.slow
def test_a_default_run_is_recorded_with_parameters_curves_metrics_figures_and_models(
    full_run,
):
    client = MlflowClient(tracking_uri=f"sqlite:///{full_run / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("maskrec")
    (recorded,) = client.search_runs([experiment.experiment_id])
    params, metrics, tags = (
        recorded.data.params,
        recorded.data.metrics,
        recorded.data.tags,
    )
    assert recorded.info.status == "FINISHED"
    assert (
        params["training.device"] == "cpu"
        and params["pretraining.schedule.epochs"] == "2"
    )
    assert params["baselines.ease_l2"] == "[100.0, 500.0]"
    assert tags["source"] == "sample" and tags["kedro_env"] == "local"
    curve = client.get_metric_history(
        recorded.info.run_id, "pretrained/valid_ndcg_at_10"
    )
    history = pd.read_csv(saved(full_run / "data/08_reporting/pretrained_history.csv"))
    curve = sorted(curve, key=lambda m: m.step)
    assert [m.step for m in curve] == history["epoch"].tolist()
    assert [m.value for m in curve] == pytest.approx(history["ndcg@10"].tolist())
    evaluation = json.loads(
        (saved(full_run / "data/08_reporting/evaluation_metrics.json")).read_text()
    )
    ndcg = evaluation["models"]["fine_tuned"]["all"]["ndcg@10"]
    assert metrics["test/fine_tuned/all/ndcg_at_10"] == pytest.approx(ndcg["mean"])
    assert metrics["test/fine_tuned/all/ndcg_at_10_ci_low"] == pytest.approx(
        ndcg["ci_low"]
    )
    assert "paired/fine_tuned_vs_scratch/all/p_adjusted" in metrics
    assert "valid/sasrec/ndcg_at_10" in metrics
    artifacts = {a.path for folder in ("figures", "reports", "models") for a in client.list_artifacts(recorded.info.run_id, folder)}  # fmt: skip
    assert {"figures/model_comparison_plot.html", "reports/data_quality_report.json", "reports/summary_markdown.md",
            "models/fine_tuned_model", "models/ease_baseline"} <= artifacts  # fmt: skip
    model_files = {a.path for a in client.list_artifacts(recorded.info.run_id, "models/fine_tuned_model")}  # fmt: skip
    assert {"models/fine_tuned_model/config.json", "models/fine_tuned_model/model.safetensors"} <= model_files  # fmt: skip


@pytest.mark.slow
def test_the_chosen_model_is_an_mlflow_model_that_ranks_as_the_project_does(full_run):
    """Logged by the run, registered, loaded back by URI: the same top 10 as the
    project's scoring path on the model's folder."""
    import mlflow

    from maskrec.datasets.mlflow_model import load_folder
    from maskrec.registry import BY_NAME, chosen
    from maskrec.scoring import recommend

    store = f"sqlite:///{full_run / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=store, registry_uri=store)
    (recorded,) = client.search_runs([client.get_experiment_by_name("maskrec").experiment_id])  # fmt: skip
    stats = json.loads(
        (saved(full_run / "data/08_reporting/model_stats.json")).read_text()
    )
    name = chosen(stats)
    folder = saved(full_run / "data/06_models" / BY_NAME[name].dataset)
    on_disk = load_folder(folder)
    table = on_disk.catalogue.table()
    histories = [table["original_item_id"].iloc[[0, 4, 9]].tolist(), table["original_item_id"].iloc[[20]].tolist()]  # fmt: skip
    mlflow.set_tracking_uri(store)
    mlflow.set_registry_uri(store)
    (version,) = client.search_model_versions("name='maskrec-test'")
    assert version.run_id == recorded.info.run_id
    for uri in (f"runs:/{recorded.info.run_id}/model", "models:/maskrec-test/1"):
        logged = mlflow.pyfunc.load_model(uri)
        signature = logged.metadata.signature
        assert signature.inputs.input_names() == ["history"] and "title" in signature.outputs.input_names()  # fmt: skip
        answer = logged.predict(pd.DataFrame({"history": histories}), params={"k": 10})
        expected, _ = recommend(on_disk, [[int(table.set_index("original_item_id").at[i, "item_id"]) for i in h] for h in histories], 10, 256)  # fmt: skip
        originals = table.set_index("item_id").loc[expected.ravel(), "original_item_id"].tolist()  # fmt: skip
        assert answer["item_id"].tolist() == originals
        assert answer["request"].tolist() == [0] * 10 + [1] * 10
        assert answer["title"].tolist() == table.set_index("item_id").loc[expected.ravel(), "title"].tolist()  # fmt: skip
    with pytest.raises(Exception, match="not in"):
        logged.predict(pd.DataFrame({"history": [[-5]]}))


@pytest.mark.slow
def test_two_runs_with_different_params_are_two_runs_to_compare(tmp_path):
    project = copy_project(tmp_path)
    for seed in (1, 2):
        run(project, ["data_processing", "data_split"], {**SMALL_SAMPLE, "data_split": {"seed": seed}})  # fmt: skip
    table = runs(project)
    assert len(table) == 2
    assert sorted(table["params.data_split.seed"]) == ["1", "2"]
    same = table["params.data_split.strategy"]
    assert same.nunique() == 1  # the side-by-side view: one column per parameter


def test_a_failure_to_log_is_a_warning_not_the_end_of_the_run(tmp_path, caplog):
    import mlflow

    from maskrec.tracking import RunTracking

    before = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    try:
        with mlflow.start_run(experiment_id=mlflow.create_experiment("tracking-test")):
            # not a figure: MLflow cannot log it
            RunTracking().after_dataset_saved("model_comparison_plot", object())
    finally:
        mlflow.set_tracking_uri(before)
    assert "could not log model_comparison_plot" in caplog.text
