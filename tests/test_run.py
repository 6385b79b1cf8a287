"""End-to-end `kedro run` of the project on a small generated sample.

The run happens in a copy of the project's configuration under a temporary folder, so the
tests never touch the working tree's data/.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from tests.conftest import PROJECT_ROOT

SMALL_SAMPLE = {
    "sample": {"n_users": 150, "n_items": 300, "n_ratings": 4500, "seed": 3}
}
QUICK_TRAINING = {"epochs": 2, "device": "cpu", "checkpoint_dir": None}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    for name in ("conf", "pyproject.toml"):
        source = PROJECT_ROOT / name
        if source.is_dir():
            shutil.copytree(
                source, tmp_path / name, ignore=shutil.ignore_patterns("local")
            )
        else:
            shutil.copy(source, tmp_path / name)
    (tmp_path / "conf" / "local").mkdir()
    (tmp_path / "src").mkdir()  # bootstrap wants it; the installed package is used
    return tmp_path


def run(project: Path, pipelines: list[str], params: dict | None = None) -> None:
    bootstrap_project(project)
    with KedroSession.create(
        project_path=project, runtime_params=params or {}
    ) as session:
        session.run(pipeline_names=pipelines)


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
def test_bad_parameter_stops_the_run_before_any_node(project):
    with pytest.raises(Exception, match="cold_user_fraction"):
        run(
            project,
            ["data_processing", "data_split"],
            {**SMALL_SAMPLE, "data_split": {"cold_user_fraction": 2}},
        )
    assert not (project / "data/03_primary/interactions.parquet").exists()


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
def test_default_run_trains_pretrained_fine_tuned_and_scratch_models(project):
    params = {
        **SMALL_SAMPLE,
        "pretraining": QUICK_TRAINING,
        "fine_tuning": QUICK_TRAINING,
    }
    run(project, ["__default__"], params)

    from maskrec.datasets import ModelFolderDataset

    for name in ("pretrained", "fine_tuned", "scratch"):
        folder = project / "data/06_models" / f"{name}_model"
        assert (folder / "config.json").is_file() and (
            folder / "model.safetensors"
        ).is_file()
        model = ModelFolderDataset(filepath=str(folder)).load()
        assert model.config.n_items == len(model.config.item_ids)
    history = pd.read_csv(project / "data/08_reporting/fine_tuning_history.csv")
    assert history["epoch"].tolist() == [
        0,
        1,
        2,
    ]  # epoch 0 is the pretrained starting point
    assert {
        "train_loss",
        "ndcg@10",
        "hr@10",
        "lr",
        "seconds",
        "sequences_per_second",
    } <= set(history.columns)
    scratch = pd.read_csv(project / "data/08_reporting/scratch_history.csv")
    assert scratch["model"].unique().tolist() == ["scratch"]
