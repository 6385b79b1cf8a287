"""Small end-to-end data for tests, made by the project's own nodes from the generator."""

from __future__ import annotations

from functools import cache

from maskrec.params import DataProcessingParams, SplitParams
from maskrec.pipelines.data_processing import nodes as processing
from maskrec.pipelines.data_split.nodes import split_interactions
from maskrec.sample import SampleSpec, generate_sample


@cache
def small_split(n_users: int = 120, n_items: int = 200, n_ratings: int = 3000) -> dict:
    ratings, movies = generate_sample(
        SampleSpec(n_users=n_users, n_items=n_items, n_ratings=n_ratings, seed=5)
    )
    interactions = ratings.rename(columns={"userId": "user_id", "movieId": "item_id"})
    items = movies.rename(columns={"movieId": "item_id"})
    items["year"] = items["title"].str.extract(r"\((\d{4})\)$")[0].astype("Int64")
    raw = {"interactions": interactions, "items": items, "source": {"source": "test"}}
    params = DataProcessingParams()
    cleaned, _ = processing.clean_interactions(raw, params)
    kcore, _ = processing.filter_k_core(cleaned, params)
    remapped, _, item_map = processing.remap_ids(kcore)
    train, valid, test, cold = split_interactions(
        remapped, SplitParams(cold_user_fraction=0.1)
    )
    return {"item_features": processing.build_item_features(raw, item_map), "train": train, "valid": valid, "test": test,
            "cold": cold, "interactions": remapped}  # fmt: skip
