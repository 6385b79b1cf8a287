"""A run no longer overwrites the last: models, histories and reports are versioned, and
`kedro run --load-versions` or `maskrec serve --version` reach an earlier run's model
(issue 28)."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest
from kedro.io import Version

from maskrec.scoring import recommend
from maskrec.service import load_recommender
from tests.conftest import run


def versions(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_dir())


@pytest.mark.slow
def test_an_earlier_runs_model_is_served_and_used_by_inference(full_run, tmp_path):
    from maskrec.datasets import TrainedModelsDataset

    project = tmp_path / "project"
    shutil.copytree(full_run, project)
    (first,) = versions(project / "data/08_reporting/model_stats.json")
    before = pd.read_parquet(project / "data/07_model_output/recommendations.parquet")

    # a second run with other seeds: new versions beside the first, nothing overwritten
    run(project, ["pretraining", "fine_tuning", "baselines", "evaluation"], {"training": {"seed": 5}})  # fmt: skip
    first_again, second = versions(project / "data/08_reporting/model_stats.json")
    assert first_again == first and second > first
    assert versions(project / "data/06_models/fine_tuned_model") == [first, second]
    assert len(versions(project / "data/08_reporting/fine_tuned_history.csv")) == 2

    earlier = load_recommender(project, model="sasrec", version=first)
    latest = load_recommender(project, model="sasrec")
    on_disk = TrainedModelsDataset(str(project / "data/06_models"), version=Version(first, None)).load()  # fmt: skip
    history = [[1, 2, 3]]
    expected = recommend(on_disk[earlier.name](), history, 10, 256)
    assert earlier.top(history, 10)[0].tolist() == expected[0].tolist()
    assert latest.top(history, 10)[1].tolist() != expected[1].tolist()  # reseeded
    with pytest.raises(ValueError, match=f"no run saved evaluated models at that version; saved: {second}, {first}"):  # fmt: skip
        load_recommender(project, version="2020-01-01T00.00.00.000Z")

    # kedro run --load-versions: inference with the first run's models and evaluation
    run(project, ["inference"], load_versions={"trained_models": first, "model_stats": first})  # fmt: skip
    after = pd.read_parquet(project / "data/07_model_output/recommendations.parquet")
    pd.testing.assert_frame_equal(after, before)
