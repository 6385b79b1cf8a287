"""Test data and parameters made the way the project makes them: parameter groups from the
committed configuration (the one source of values), small splits from the generator
through the project's own nodes."""

from __future__ import annotations

from functools import cache
from typing import Any

import pandas as pd

from maskrec.datasets.split_targets import SplitTargetsDataset
from maskrec.params import load_parameters
from maskrec.pipelines.data_processing import nodes as processing
from maskrec.pipelines.data_split.nodes import split_interactions
from maskrec.sample import SampleSpec, generate_sample
from tests.conftest import PROJECT_ROOT


@cache
def _configured() -> dict:
    return load_parameters(PROJECT_ROOT / "conf", env="local")


def _merge(base: dict, overrides: dict) -> dict:
    out = dict(base)
    for key, value in overrides.items():
        nested = isinstance(value, dict) and isinstance(out.get(key), dict)
        out[key] = _merge(out[key], value) if nested else value
    return out


def params(group: str, **overrides: Any):
    """Parameter group `group` as conf/ sets it, with `overrides` (nested dicts merge)."""
    configured = _configured()[group]
    return type(configured)(**_merge(configured.model_dump(), overrides))


def no_given_targets() -> pd.DataFrame:
    return SplitTargetsDataset().load()


@cache
def small_split(n_users: int = 120, n_items: int = 200, n_ratings: int = 3000) -> dict:
    ratings, movies = generate_sample(
        SampleSpec(n_users=n_users, n_items=n_items, n_ratings=n_ratings, seed=5)
    )
    interactions = ratings.rename(columns={"userId": "user_id", "movieId": "item_id"})
    items = movies.rename(columns={"movieId": "item_id"})
    items["year"] = items["title"].str.extract(r"\((\d{4})\)$")[0].astype("Int64")
    raw = {"interactions": interactions, "items": items, "source": {"source": "test"}}
    cleaning = params("data_processing")
    cleaned, _ = processing.clean_interactions(raw, cleaning)
    kcore, _ = processing.filter_k_core(cleaned, cleaning)
    remapped, user_map, item_map = processing.remap_ids(kcore)
    train, valid, test, cold = split_interactions(
        remapped, user_map, item_map, no_given_targets(),
        params("data_split", cold_user_fraction=0.1),
    )  # fmt: skip
    return {"item_features": processing.build_item_features(raw, item_map), "train": train, "valid": valid, "test": test,
            "cold": cold, "interactions": remapped, "user_map": user_map, "item_map": item_map}  # fmt: skip
