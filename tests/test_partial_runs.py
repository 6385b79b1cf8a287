"""Pipelines run one at a time, on other data, as Kedro users run them: the saved models
keep their own catalogue, so the service always answers as they were trained, and every
pipeline that scores the data on disk with a model trained on other data stops before
any work, naming the command that retrains (issue 28)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from maskrec.catalogue import RETRAIN, CatalogueMismatch
from maskrec.service import create_app, load_recommender
from tests.conftest import SMALL_SAMPLE, run

OTHER_DATA = {"sample": {**SMALL_SAMPLE["sample"], "n_items": 260, "seed": 11}}


def features(project: Path) -> pd.DataFrame:
    return pd.read_parquet(project / "data/04_feature/item_features.parquet")


def mismatch(project: Path, pipelines: list[str]) -> str:
    """The message a pipeline that must not score stale models stops with."""
    with pytest.raises(CatalogueMismatch) as caught:
        run(project, pipelines, OTHER_DATA)
    message = str(caught.value)
    assert "another catalogue" in message and RETRAIN in message, message
    return message


def served_answer(project: Path) -> tuple[int, dict]:
    """The served model's catalogue size and its answer to a history of its own films."""
    recommender = load_recommender(project)
    films = recommender.catalogue.items
    with TestClient(create_app(recommender)) as client:
        answer = client.post("/recommend", json={"history": films["original_item_id"].iloc[:3].tolist(), "k": 5})  # fmt: skip
    assert answer.status_code == 200, answer.text
    return len(films), answer.json()


@pytest.mark.slow
def test_each_pipeline_alone_on_other_data_answers_or_says_what_to_rerun(
    full_run, tmp_path
):
    project = tmp_path / "project"
    shutil.copytree(full_run, project)
    trained_items = len(features(project))

    # new data, models not retrained
    run(project, ["data_processing", "data_split"], OTHER_DATA)
    assert len(features(project)) != trained_items
    served, body = served_answer(
        project
    )  # the service answers from the model's own catalogue
    assert served == trained_items and len(body["items"]) == 5
    message = mismatch(project, ["inference"])
    assert f"{trained_items:,} items" in message and "item_features" in message
    mismatch(project, ["evaluation"])
    assert "starts from" in mismatch(
        project, ["fine_tuning"]
    )  # the saved pretrained model
    assert served_answer(project)[0] == trained_items  # nothing good was overwritten

    # retrained one pipeline at a time, in the order the message gives
    for pipeline in RETRAIN.split("--pipelines ")[1].split(","):
        run(project, [pipeline], OTHER_DATA)
    run(project, ["inference"], OTHER_DATA)
    recommendations = pd.read_parquet(project / "data/07_model_output/recommendations.parquet")  # fmt: skip
    assert set(recommendations["item_id"]) <= set(features(project)["original_item_id"])
    assert served_answer(project)[0] == len(features(project))
