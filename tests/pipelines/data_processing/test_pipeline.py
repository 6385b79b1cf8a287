"""The data_processing pipeline on an in-memory catalog (spaceflights' way)."""

from __future__ import annotations

from maskrec.pipelines.data_processing import create_pipeline
from maskrec.sample import SampleSpec, generate_sample
from tests.helpers import params, run_pipeline


def test_raw_sample_becomes_clean_contiguous_tables(caplog):
    ratings, movies = generate_sample(
        SampleSpec(n_users=60, n_items=120, n_ratings=1500, seed=2)
    )
    raw = {
        "interactions": ratings.rename(columns={"userId": "user_id", "movieId": "item_id"}),
        "items": movies.rename(columns={"movieId": "item_id"}).assign(year=2000),
        "source": {"source": "test"},
    }  # fmt: skip
    out = run_pipeline(create_pipeline(), {"movielens_raw": raw, "params:data_processing": params("data_processing")}, caplog)  # fmt: skip
    interactions, features = out["interactions"], out["item_features"]
    assert sorted(interactions["item_id"].unique()) == list(range(1, len(features) + 1))
    assert sorted(interactions["user_id"].unique()) == list(range(len(out["user_map"])))
    report = out["data_quality_report"]
    assert report["read"]["rows"] == 1500 and report["kept"]["rows"] == len(
        interactions
    )
    assert (
        report["kept"]["rows"] + sum(report["dropped"].values())
        == report["read"]["rows"]
    )
