"""The seeds pipeline: the latest evaluations with distinct training seeds, compared."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from maskrec.metrics import per_user_tests, with_fdr
from maskrec.pipelines.seeds.nodes import compare_seeds
from tests.helpers import params
from tests.pipelines.evaluation.test_nodes import _per_user

LEVELS = {"fine_tuned": 0.3, "scratch": 0.1, "ease": 0.15, "most_popular": 0.05}


def _run(seed: int, users: int = 200):
    frame = _per_user(np.random.default_rng(seed), LEVELS, users=users)
    # the split fixes who is cold and how long each history is; the seed moves the ranks
    frame["history_length"] = np.where(
        frame["is_cold"], 0, 1 + frame["user_id"] * 7 % 290
    )
    # validation moves with the seed too, the fine-tuned model's more than the others'
    stats = {m: {"kind": "baseline" if m in {"ease", "most_popular"} else "sequence",
                 "valid_ndcg@10": v + 0.01 * seed * (2 if m == "fine_tuned" else 1),
                 "training_seed": seed} for m, v in LEVELS.items()}  # fmt: skip
    return frame, stats


def _partitions(runs: dict[str, tuple[pd.DataFrame, dict]]):
    frames = {f"{v}/per_user_metrics": (lambda f=f: f) for v, (f, _) in runs.items()}
    stats = {f"{v}/model_stats": (lambda s=s: s) for v, (_, s) in runs.items()}
    return frames, stats


SETTINGS = params("evaluation", bootstrap_samples=200, permutation_resamples=199,
                  comparisons=[("fine_tuned", "scratch"), ("fine_tuned", "best_baseline")])  # fmt: skip


def test_the_latest_run_of_each_seed_of_one_configuration_is_compared():
    runs = {
        "2026-01-01T00.00.00.000Z": _run(
            1
        ),  # seed 1 again, older: the newer one counts
        "2026-01-02T00.00.00.000Z": _run(0),
        "2026-01-03T00.00.00.000Z": _run(1),
        "2026-01-04T00.00.00.000Z": _run(
            5, users=150
        ),  # another split: other test users
        "2026-01-05T00.00.00.000Z": _run(2),
    }
    runs["2026-01-04T00.00.00.000Z"][1]["fine_tuned"]["training_seed"] = 3
    result, markdown = compare_seeds(
        *_partitions(runs), SETTINGS, params("seeds", runs=3)
    )
    assert result["seeds"] == [0, 1, 2]
    assert result["versions"] == ["2026-01-02T00.00.00.000Z", "2026-01-03T00.00.00.000Z", "2026-01-05T00.00.00.000Z"]  # fmt: skip
    # each model's mean per seed, and Student's t interval over the seeds (scipy's own)
    values = [
        _run(s)[0].query("model == 'fine_tuned'")["ndcg@10"].mean() for s in (0, 1, 2)
    ]
    entry = result["models"]["fine_tuned"]
    assert entry["per_seed"] == pytest.approx(values)
    low, high = scipy_stats.t.interval(0.95, 2, loc=np.mean(values), scale=scipy_stats.sem(values))  # fmt: skip
    assert entry["t_interval_95"] == pytest.approx([low, high])
    # each seed's paired tests are the evaluation's own, best baseline by validation (EASE)
    difference = next(d for d in result["differences"] if (d["competitor"], d["group"]) == ("ease", "all"))  # fmt: skip
    for seed, test in zip((0, 1, 2), difference["per_seed_tests"], strict=True):
        expected = with_fdr(per_user_tests(_run(seed)[0], [("fine_tuned", "scratch"), ("fine_tuned", "ease")], SETTINGS))  # fmt: skip
        row = next(
            t for t in expected if (t["competitor"], t["group"]) == ("ease", "all")
        )
        assert test["mean_difference"] == pytest.approx(row["mean_difference"])
        assert test["p_adjusted"] == pytest.approx(row["p_adjusted"])
    assert "| fine_tuned | ease | all |" in markdown and "95% over seeds" in markdown
    # beside the test: each seed's validation, what chose the run's settings
    assert entry["valid_per_seed"] == pytest.approx([0.3, 0.32, 0.34])
    assert entry["valid_mean"] == pytest.approx(0.32)
    assert difference["valid_per_seed"] == pytest.approx([0.15, 0.16, 0.17])
    history_group = next(d for d in result["differences"] if d["group"] != "all")
    assert history_group["valid_per_seed"] is None  # validation has no user groups
    assert "| +0.1500 +0.1600 +0.1700 |" in markdown and "| 0.3200 |" in markdown


def test_fewer_than_two_seeds_say_what_to_run():
    runs = {"2026-01-01T00.00.00.000Z": _run(0), "2026-01-02T00.00.00.000Z": _run(0)}
    with pytest.raises(ValueError, match=r"found 1 evaluation.*training.seed=1"):
        compare_seeds(*_partitions(runs), SETTINGS, params("seeds", runs=3))


def test_until_compares_an_earlier_configuration_saved_before_another():
    # three seeds of one configuration, then two runs of another on the same users
    # (tuned.py's order: the tuned runs, then the shipped ones)
    runs = {f"2026-01-0{day}T00.00.00.000Z": _run(seed) for day, seed in ((1, 0), (2, 1), (3, 2), (4, 0), (5, 1))}  # fmt: skip
    latest, _ = compare_seeds(*_partitions(runs), SETTINGS, params("seeds", runs=3))
    assert latest["versions"] == [f"2026-01-0{day}T00.00.00.000Z" for day in (3, 4, 5)]
    earlier, _ = compare_seeds(*_partitions(runs), SETTINGS, params("seeds", runs=3, until="2026-01-03T00.00.00.000Z"))  # fmt: skip
    assert earlier["versions"] == [f"2026-01-0{day}T00.00.00.000Z" for day in (1, 2, 3)]
    assert earlier["seeds"] == [0, 1, 2]


def test_an_until_that_names_no_saved_evaluation_is_refused():
    runs = {"2026-01-01T00.00.00.000Z": _run(0), "2026-01-02T00.00.00.000Z": _run(1)}
    with pytest.raises(ValueError, match=r"seeds.until: no evaluation was saved as version '2026-01-03T00.00.00.000Z'.*2026-01-01T00.00.00.000Z"):  # fmt: skip
        compare_seeds(*_partitions(runs), SETTINGS, params("seeds", runs=2, until="2026-01-03T00.00.00.000Z"))  # fmt: skip
    with pytest.raises(ValueError, match="until"):
        params(
            "seeds", runs=2, until="yesterday"
        )  # not a Kedro version: refused at run start


@pytest.mark.slow
def test_the_catalog_reads_every_saved_version(tmp_path):
    from tests.conftest import copy_project, run

    project = copy_project(tmp_path)
    for day, seed in ((1, 0), (2, 1)):
        version = f"2026-01-0{day}T00.00.00.000Z"
        frame, stats = _run(seed)
        folder = project / "data/08_reporting/per_user_metrics.parquet" / version
        folder.mkdir(parents=True)
        frame.to_parquet(folder / "per_user_metrics.parquet")
        folder = project / "data/08_reporting/model_stats.json" / version
        folder.mkdir(parents=True)
        (folder / "model_stats.json").write_text(json.dumps(stats))
    run(project, ["seeds"], {"seeds": {"runs": 2}})
    summary = next((project / "data/08_reporting/seed_summary.md").glob("*/seed_summary.md")).read_text()  # fmt: skip
    assert "Seeds 0, 1" in summary
