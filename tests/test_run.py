"""End-to-end `kedro run` of the project on a small generated sample.

The run happens in a copy of the project's configuration under a temporary folder, so the
tests never touch the working tree's data/.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from maskrec import THIRD_PARTY_NOISE
from tests.conftest import SMALL_SAMPLE, copy_project, run
from tests.helpers import saved


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return copy_project(tmp_path)


@pytest.mark.slow
def test_data_pipelines_end_to_end(project):
    run(project, ["data_processing", "data_split"], SMALL_SAMPLE)

    report = json.loads(
        (project / "data/08_reporting/data_quality_report.json").read_text()
    )
    assert report["read"]["rows"] == 4500 and report["read"]["users"] == 150
    assert report["source"]["source"] == "sample"

    interactions = pd.read_parquet(project / "data/03_primary/interactions.parquet")
    train = pd.read_parquet(project / "data/05_model_input/train_sequences.parquet")
    valid = pd.read_parquet(project / "data/05_model_input/valid_targets.parquet")
    test = pd.read_parquet(project / "data/05_model_input/test_targets.parquet")
    cold = pd.read_parquet(project / "data/05_model_input/cold_users.parquet")

    assert interactions["item_id"].min() == 1  # 0 is reserved for padding
    assert len(cold) == 15  # 10% of 150 users by default
    assert len(test) == 150 and test["is_cold"].sum() == 15
    assert len(valid) == len(train) == 135
    # Every event is a training event, a warm target, or part of a cold user's history.
    warm_targets = len(valid) + int((~test["is_cold"]).sum())
    cold_events = sum(len(c) + 1 for c in test.loc[test["is_cold"], "context"])
    assert sum(map(len, train["item_ids"])) + warm_targets + cold_events == len(
        interactions
    )


@pytest.mark.slow
def test_kedro_run_shows_no_warning_from_maskrec_nor_the_filtered_library_noise(
    project,
):
    """The `kedro` command's output: no warning raised in maskrec's code (the transfer
    pipeline's dotted names raised one on every run) and none of the library warnings
    `maskrec.THIRD_PARTY_NOISE` filters (three a run before)."""
    kedro = str(Path(sys.executable).with_name("kedro"))
    # wide enough for one line a log record
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1", "COLUMNS": "300"}
    done = subprocess.run([kedro, "run", "--pipelines", "data_processing"], cwd=project, env=env,
                          capture_output=True, text=True, timeout=300, check=True)  # fmt: skip
    output = done.stdout + done.stderr
    assert "Pipeline execution completed successfully" in output
    warned = [line for line in output.splitlines() if "Warning:" in line]
    # maskrec's own files: the project's src/ or an installed package (a library's file
    # under a clone named maskrec/, .../maskrec/.venv/.../mlflow/..., is not one)
    ours = re.compile(r"(/src/maskrec/|site-packages/maskrec/)")
    assert not [line for line in warned if ours.search(line)]
    for message in THIRD_PARTY_NOISE:
        assert not re.search(message, output), message


@pytest.mark.slow
def test_bad_parameter_stops_the_run_before_any_node(project):
    with pytest.raises(Exception, match="cold_user_fraction"):
        run(
            project,
            ["data_processing", "data_split"],
            {**SMALL_SAMPLE, "data_split": {"cold_user_fraction": 2}},
        )
    assert not (project / "data/03_primary/interactions.parquet").exists()


@pytest.mark.slow
@pytest.mark.parametrize("runner", ["ParallelRunner", "ThreadRunner"])
def test_concurrent_runners_are_refused_before_any_node(project, runner):
    from kedro.runner import ParallelRunner, ThreadRunner

    bootstrap_project(project)
    chosen = {"ParallelRunner": ParallelRunner, "ThreadRunner": ThreadRunner}[runner]()
    with KedroSession.create(project_path=project, runtime_params=SMALL_SAMPLE) as session:  # fmt: skip
        with pytest.raises(ValueError, match=f"--runner {runner} is not supported.*SequentialRunner"):  # fmt: skip
            session.run(pipeline_names=["data_processing"], runner=chosen)
    assert not (project / "data").exists()  # nothing was read, generated or written


@pytest.mark.slow
def test_a_params_key_a_stage_sets_for_itself_is_named_at_run_start(project, caplog):
    """`--params schedule.epochs=1` shortens every stage that sets no epochs of its own;
    pretraining sets 60 in conf/base, so the run says so before any node (a refused
    runner then stops it here, so nothing is read or trained)."""
    from kedro.runner import ThreadRunner

    params = {**SMALL_SAMPLE, "schedule": {"epochs": 1}, "model": {"hidden_dropout": 0.3}}  # fmt: skip
    with caplog.at_level("WARNING", logger="maskrec.hooks"), pytest.raises(ValueError, match="ThreadRunner is not supported"):  # fmt: skip
        run(project, ["__default__"], params, runner=ThreadRunner())
    warned = [r.getMessage() for r in caplog.records if r.name == "maskrec.hooks"]
    assert warned == [
        "--params model.hidden_dropout=0.3 does not reach fine_tuning, scratch: fine_tuning."
        "model.hidden_dropout = 0.22436454303026174 in the configuration wins there (set "
        "fine_tuning.model.hidden_dropout to change it)",
        "--params model.hidden_dropout=0.3 does not reach sasrec: sasrec.model.hidden_dropout"
        " = 0.09937804169891856 in the configuration wins there (set sasrec.model.hidden_dropout"
        " to change it)",
        "--params schedule.epochs=1 does not reach pretraining: pretraining.schedule.epochs"
        " = 60 in the configuration wins there (set pretraining.schedule.epochs to change it)",
    ]  # the other stages take both; the transfer and rating stages are not in this run
    assert not (project / "data").exists()


# Target and source samples that share their films (same item seed), with other users.
TRANSFER = {
    "sample": {"n_users": 150, "n_items": 300, "n_ratings": 4500, "seed": 3, "user_seed": 0},
    "pretraining_source": "sample",
    "pretraining_sample": {"n_users": 400, "n_items": 300, "n_ratings": 12000, "seed": 3},
    "training": {"device": "cpu", "checkpoint_dir": None},
    "schedule": {"epochs": 2},
    **{group: {"schedule": {"epochs": 2}} for group in ("pretraining", "transfer_pretraining", "sasrec")},
    "evaluation": {"bootstrap_samples": 200, "permutation_resamples": 199},
}  # fmt: skip


@pytest.mark.slow
def test_transfer_run_pretrains_on_the_source_and_compares_every_model(project):
    """`data_efficiency` is the transfer run plus the per-fraction models: one run checks
    both (each training 1 epoch here), with the newest films held out of the target's
    training (the source has them)."""
    quick = {"schedule": {"epochs": 1}, **{group: {"schedule": {"epochs": 1}} for group in ("pretraining", "transfer_pretraining", "sasrec")}}  # fmt: skip
    run(project, ["data_efficiency"], {**TRANSFER, **quick, "data_split": {"cold_item_fraction": 0.1}})  # fmt: skip
    report = json.loads(
        (project / "data/08_reporting/item_alignment_report.json").read_text()
    )
    assert (
        report["method"] == "id" and report["coverage"] == 1.0
    )  # the samples share films
    assert report["source_users_kept"] == 400
    # the source stage early-stops on each source user's own last event, not the target's
    source_valid = pd.read_parquet(project / "data/05_model_input/pretraining_source_valid_targets.parquet")  # fmt: skip
    assert len(source_valid) == 400
    assert (
        saved(project / "data/06_models/source_pretrained_model") / "config.json"
    ).is_file()
    source_report = json.loads((project / "data/08_reporting/pretraining_source_data_quality_report.json").read_text())  # fmt: skip
    assert (
        source_report["read"]["rows"] == 12000
    )  # the source went through data_processing
    metrics = json.loads(
        (saved(project / "data/08_reporting/evaluation_metrics.json")).read_text()
    )
    assert {"transfer", "transfer_pretrained", "joint_sasrec", "fine_tuned", "sasrec"} <= set(metrics["models"])  # fmt: skip
    # the held-out films: the source-trained models order the ones they met there (the
    # same source sequences train both), the target-only models none
    stats = json.loads(
        saved(project / "data/08_reporting/model_stats.json").read_text()
    )
    train = pd.read_parquet(project / "data/05_model_input/train_sequences.parquet")
    items = pd.read_parquet(project / "data/04_feature/item_features.parquet")
    untrained = set(items["item_id"]) - {int(i) for s in train["item_ids"] for i in s}
    held_out = set(pd.read_parquet(project / "data/05_model_input/cold_items.parquet")["item_id"])  # fmt: skip
    assert held_out and held_out <= untrained  # (cold users' films may lack events too)
    ordered = {n: s["new_films_ordered_by_model"] for n, s in stats.items() if "new_films_ordered_by_model" in s}  # fmt: skip
    assert 0 < ordered["transfer+new_films"] == ordered["joint_sasrec+new_films"] <= len(untrained)  # fmt: skip
    assert ordered["fine_tuned+new_films"] == ordered["sasrec+new_films"] == 0
    competitors = {
        t["competitor"] for t in metrics["paired_tests"] if t["model"] == "transfer"
    }
    assert competitors == {
        "fine_tuned",
        "sasrec",
        "joint_sasrec",
        "transfer_pretrained",
        "genre_recency",
    }
    history = pd.read_csv(saved(project / "data/08_reporting/transfer_history.csv"))
    assert history["epoch"].tolist() == [
        0,
        1,
    ]  # fine-tuning starts from the source model
    summary = (saved(project / "data/08_reporting/summary.md")).read_text()
    assert "source-pretrained + fine-tuned" in summary
    assert (
        "items (100.0%) matched a source item (method: id" in summary
    )  # the alignment, reported
    curve = json.loads((project / "data/08_reporting/data_efficiency.json").read_text())["curve"]  # fmt: skip
    assert set(curve) == {"transfer", "fine_tuned", "sasrec"}
    assert [p["fraction"] for p in curve["sasrec"]] == [0.05, 0.1, 0.25, 0.5, 1.0]
    assert (
        saved(project / "data/06_models/users_10pct.transfer_model") / "config.json"
    ).is_file()
    plot = saved(project / "data/08_reporting/data_efficiency_plot.json")
    assert json.loads(plot.read_text())["data"]


def rating_run(project: Path) -> dict:
    return {**SMALL_SAMPLE, "training": {"device": "cpu", "checkpoint_dir": str(project / "checkpoints")},
            "ratings": {"classic_models": ["global_mean", "biases"], "blend": ["fine_tuned", "biases"], "model": {"max_len": 16},
                        "pretraining": {"schedule": {"epochs": 2}}, "head": {"schedule": {"epochs": 2}},
                        "comparisons": [["fine_tuned", "scratch"], ["biases", "global_mean"]]},
            "evaluation": {"bootstrap_samples": 200, "permutation_resamples": 199}}  # fmt: skip


@pytest.mark.slow
def test_a_stopped_rating_run_resumes_at_the_fold_it_was_in(project, monkeypatch):
    """`kedro run --pipelines rating_prediction` stopped in its third fold (Kedro runs
    the folds side by side, stage by stage: stopped in the third fold's pretraining, once
    it wrote its first epoch's checkpoint): the same command with
    `--only-missing-outputs` trains nothing the stopped run finished, resumes the third
    fold's pretraining after that epoch, and ends with every fold evaluated."""
    import mlflow

    from maskrec.pipeline_registry import register_pipelines
    from maskrec.training import loop, setup
    from tests.helpers import stopped_after

    pipeline, params = register_pipelines()["rating_prediction"], rating_run(project)
    folds = [n.namespace for n in pipeline.nodes if n.name.endswith(".pretrain_node")]
    with pytest.raises(KeyboardInterrupt), stopped_after(1, name=f"{folds[2]}_pretrained"):  # fmt: skip
        run(project, ["rating_prediction"], params)
    # A stopped process leaves its MLflow run open (no hook runs on Ctrl-C; kedro-mlflow
    # reopened it before each node, and MLflow stacked those): this process lives on and
    # closes it, as a new process would not need to.
    while mlflow.active_run() is not None:
        mlflow.end_run(status="KILLED")
    rating_folds = project / "data/06_models/rating_folds"
    assert sorted(p.parent.name for p in rating_folds.glob("*/pretrained")) == sorted(
        folds[:2]
    )
    assert not (saved(project / "data/08_reporting/rating_metrics.json")).exists()

    trained, resumed = [], []
    fit, resume = setup.fit, loop._Checkpoint.resume

    def recorded_fit(
        model, objective, windows, valid, stage, training, name, **options
    ):
        trained.append(name)
        return fit(model, objective, windows, valid, stage, training, name, **options)

    def recorded_resume(self, state, *args):
        if resume(self, state, *args):
            resumed.append((self.name, state.epoch))
            return True
        return False

    monkeypatch.setattr(setup, "fit", recorded_fit)
    monkeypatch.setattr(loop._Checkpoint, "resume", recorded_resume)
    run(project, ["rating_prediction"], params, only_missing_outputs=True)
    again = {f"{ns}_pretrained" for ns in folds[2:]} | {f"{ns}_{kind}" for ns in folds for kind in ("fine_tuned", "scratch")}  # fmt: skip
    assert sorted(trained) == sorted(again)  # the first two pretrainings are not redone
    assert resumed == [(f"{folds[2]}_pretrained", 1)]
    metrics = json.loads((saved(project / "data/08_reporting/rating_metrics.json")).read_text())  # fmt: skip
    assert set(metrics["protocols"]) == {"next_in_time", "random_folds"}
    assert set(metrics["protocols"]["random_folds"]) == {"global_mean", "biases", "fine_tuned", "scratch", "blend"}  # fmt: skip
    blend = json.loads((project / f"data/07_model_output/rating_folds/{folds[0]}/blend.json").read_text())  # fmt: skip
    assert blend["members"] == ["fine_tuned", "biases"] and set(blend["validation_rmse"]) == {"fine_tuned", "biases", "blend"}  # fmt: skip
    assert (saved(project / "data/06_models/rating_model") / "config.json").is_file()


@pytest.mark.slow
def test_a_pretraining_source_outside_the_transfer_run_is_refused(project):
    with pytest.raises(ValueError, match="read only by the transfer run"):
        run(
            project,
            ["data_processing"],
            {**SMALL_SAMPLE, "pretraining_source": "sample"},
        )
    with pytest.raises(ValueError, match="add --params pretraining_source="):
        run(project, ["transfer"], SMALL_SAMPLE)
    assert not (project / "data").exists()


@pytest.mark.slow
def test_folder_source_with_bad_file_names_the_line(project, tmp_path):
    from tests.conftest import write_csv_layout

    folder = write_csv_layout(tmp_path / "mine")
    (folder / "ratings.csv").write_text(
        (folder / "ratings.csv").read_text() + "3,10,4.0,notatime\n"
    )
    with pytest.raises(Exception, match=r"ratings\.csv, line 7, column 'timestamp'"):
        run(project, ["data_processing"], {"source": str(folder)})


@pytest.mark.slow
def test_default_run_produces_models_metrics_figures_and_recommendations(full_run):
    from maskrec.datasets import ArrayModelDataset, ModelFolderDataset

    for name in ("pretrained", "fine_tuned", "scratch", "sasrec"):
        folder = saved(full_run / "data/06_models" / f"{name}_model")
        assert (folder / "config.json").is_file() and (
            folder / "model.safetensors"
        ).is_file()
        assert ModelFolderDataset(filepath=str(folder)).load().config.n_items > 0
    for name in ("most_popular", "item_knn", "ease", "mf_als", "newest_first", "genre_recency", "random"):  # fmt: skip
        assert (
            ArrayModelDataset(
                filepath=str(saved(full_run / "data/06_models" / f"{name}_baseline"))
            )
            .load()
            .kind
            == name
        )
    history = pd.read_csv(saved(full_run / "data/08_reporting/fine_tuned_history.csv"))
    assert history["epoch"].tolist() == [
        0,
        1,
        2,
    ]  # epoch 0 is the pretrained starting point

    metrics = json.loads(
        (saved(full_run / "data/08_reporting/evaluation_metrics.json")).read_text()
    )
    assert set(metrics["models"]) == {
        "fine_tuned",
        "scratch",
        "pretrained",
        "sasrec",
        "most_popular",
        "item_knn",
        "ease",
        "mf_als",
        "newest_first",
        "genre_recency",
        "random",
    }
    assert metrics["models"]["fine_tuned"]["cold"]["users"] == 15
    assert {t["group"] for t in metrics["paired_tests"]} == {
        "all",
        "history<=30",
        "cold",
    }
    per_user = pd.read_parquet(
        saved(full_run / "data/08_reporting/per_user_metrics.parquet")
    )
    assert (
        len(per_user) == 11 * 150
    )  # 11 models (with the content baselines and random)
    for plot in (
        "model_comparison",
        "learning_curves",
        "history_length",
        "cold_vs_warm",
        "new_items",
    ):
        figure = json.loads(
            (saved(full_run / f"data/08_reporting/{plot}_plot.json")).read_text()
        )
        assert figure["data"], plot
    assert (
        "| pretrained + fine-tuned |"
        in (saved(full_run / "data/08_reporting/summary.md")).read_text()
    )

    recs = pd.read_parquet(full_run / "data/07_model_output/recommendations.parquet")
    assert (
        recs["user_id"].nunique() == 150
        and (recs.groupby("user_id").size() == 10).all()
    )
    assert recs["model"].iloc[0] == metrics["best_model_by_validation"]
    interactions = pd.read_parquet(full_run / "data/03_primary/interactions.parquet")
    item_map = pd.read_parquet(full_run / "data/03_primary/item_map.parquet").set_index(
        "item_id"
    )["original_item_id"]
    user_map = pd.read_parquet(full_run / "data/03_primary/user_map.parquet").set_index(
        "user_id"
    )["original_user_id"]
    seen = set(
        zip(
            interactions["user_id"].map(user_map),
            interactions["item_id"].map(item_map),
            strict=True,
        )
    )
    assert not seen & set(
        zip(recs["user_id"], recs["item_id"], strict=True)
    )  # nothing already watched


@pytest.mark.slow
def test_a_shop_log_with_text_ids_and_no_ratings_runs_end_to_end(project, tmp_path):
    """A log of one's own (Parquet, text ids, implicit feedback, a product table with
    categories) through the whole default run with only --params; what needs ratings is
    refused before any node, saying why."""
    from maskrec.sample import SampleSpec, write_event_log
    from tests.conftest import SHORT_RUN

    (project / "conf" / "local").mkdir(parents=True, exist_ok=True)
    (project / "conf" / "local" / "parameters.yml").write_text(SHORT_RUN)
    events, products = write_event_log(SampleSpec(n_users=150, n_items=300, n_ratings=4500, seed=3), tmp_path / "shop")  # fmt: skip
    log = {"source": str(events), "items": str(products),
           "columns": {"user": "visitor", "item": "sku", "timestamp": "event_time", "title": "name", "features": "price"}}  # fmt: skip
    with pytest.raises(Exception, match="has no ratings .* the rating_prediction pipeline predicts ratings"):  # fmt: skip
        run(project, ["rating_prediction"], log)
    assert not (project / "data/03_primary").exists()  # refused before any node
    run(project, ["__default__"], log)

    metrics = json.loads(saved(project / "data/08_reporting/evaluation_metrics.json").read_text())  # fmt: skip
    assert {"fine_tuned", "sasrec", "genre_recency"} <= set(metrics["models"])
    assert all(0 < m["all"]["diversity@10"]["mean"] <= 1 for m in metrics["models"].values())  # fmt: skip
    summary = saved(project / "data/08_reporting/summary.md").read_text()
    assert "has no ratings (implicit feedback)" in summary
    recs = pd.read_parquet(project / "data/07_model_output/recommendations.parquet")
    assert recs["user_id"].str.startswith("v").all() and recs["item_id"].str.startswith("sku-").all()  # fmt: skip
    features = pd.read_parquet(project / "data/04_feature/item_features.parquet")
    assert "genre_Kitchen" in features  # categories became the content's genres
    assert features["feature_price"].notna().all()  # and the price a numeric feature
    config = json.loads((saved(project / "data/06_models/sasrec_model") / "config.json").read_text())  # fmt: skip
    assert config["n_item_features"] == 1 and config["item_ids"][0].startswith("sku-")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["01_explore_data.ipynb", "02_results.ipynb"])
def test_notebooks_run_top_to_bottom(full_run, name):
    import nbclient
    import nbformat

    notebook = nbformat.read(full_run / "notebooks" / name, as_version=4)
    nbclient.NotebookClient(
        notebook,
        timeout=180,
        kernel_name="python3",
        resources={"metadata": {"path": str(full_run)}},
    ).execute()
    errors = [
        o
        for c in notebook.cells
        for o in c.get("outputs", [])
        if o.get("output_type") == "error"
    ]
    assert not errors
    assert any(
        o.get("data", {}).get("application/vnd.plotly.v1+json")
        for c in notebook.cells
        for o in c.get("outputs", [])
    )


@pytest.mark.slow
def test_kedro_viz_serves_every_node_and_every_declared_preview(full_run, tmp_path):
    """Through kedro-viz's own API, as `kedro viz run` and `kedro viz build
    --include-previews` use it: every data node answers, every dataset that has a preview
    (and does not switch it off) returns one, and the static build writes them all."""
    import fsspec
    from fastapi.testclient import TestClient
    from kedro_viz.api.apps import create_api_app_from_project
    from kedro_viz.api.rest.responses.save_responses import save_api_responses_to_fs
    from kedro_viz.server import load_and_populate_data

    bootstrap_project(full_run)
    load_and_populate_data(full_run, extra_params=SMALL_SAMPLE)
    client = TestClient(create_api_app_from_project(full_run))
    main = client.get("/api/main").json()
    nodes = {n["id"]: n for p in main["pipelines"] for n in client.get(f"/api/pipelines/{p['id']}").json()["nodes"]}  # fmt: skip
    data_nodes = {n["name"]: i for i, n in nodes.items() if n["type"] == "data"}
    assert (
        "item_alignment" in data_nodes
    )  # the transfer pipeline's datasets are there too
    with KedroSession.create(
        project_path=full_run, runtime_params=SMALL_SAMPLE
    ) as session:
        catalog = session.load_context().catalog
    previewed = []
    for name, node_id in data_nodes.items():
        response = client.get(f"/api/nodes/{node_id}")
        assert response.status_code == 200, name
        if name.startswith("params:") or name not in catalog:
            continue
        dataset = catalog.get(name)
        declared = getattr(dataset, "metadata", None) or {}
        wanted = hasattr(dataset, "preview") and declared.get("kedro-viz", {}).get("preview") is not False  # fmt: skip
        if wanted and dataset.exists():  # this run wrote it (not the transfer run's)
            assert response.json().get("preview") is not None, name
            previewed.append(name)
    assert {"train_sequences", "valid_targets", "test_targets", "interactions",
            "model_comparison_plot", "evaluation_metrics", "fine_tuned_history"} <= set(previewed)  # fmt: skip
    sequences = client.get(f"/api/nodes/{data_nodes['train_sequences']}").json()
    assert sequences["preview"]["columns"][:2] == ["user_id", "item_ids"]
    save_api_responses_to_fs(str(tmp_path / "build"), fsspec.filesystem("file"), True)
    assert {p.name for p in (tmp_path / "build" / "api" / "nodes").iterdir()} == set(
        nodes
    )
