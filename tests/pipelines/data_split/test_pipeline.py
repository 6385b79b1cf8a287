"""The data_split pipeline on an in-memory catalog, with its own and with given targets."""

from __future__ import annotations

import pandas as pd

from maskrec.pipelines.data_split import create_pipeline
from tests.helpers import no_given_targets, params, run_pipeline, small_split


def _inputs(targets: pd.DataFrame, **split) -> dict:
    data = small_split()
    return {"interactions": data["interactions"], "user_map": data["user_map"], "item_map": data["item_map"],
            "given_split_targets": targets, "params:data_split": params("data_split", **split)}  # fmt: skip


def test_leave_one_out_with_cold_users(caplog):
    out = run_pipeline(create_pipeline(), _inputs(no_given_targets()), caplog)
    cold = set(out["cold_users"]["user_id"])
    assert cold and cold.isdisjoint(out["train_sequences"]["user_id"])
    assert (
        set(out["test_targets"].loc[out["test_targets"]["is_cold"], "user_id"]) == cold
    )


def test_given_targets_decide_validation_and_test_items(caplog):
    data = small_split()
    originals = data["interactions"].merge(data["user_map"]).merge(data["item_map"])
    last_two = originals.groupby("user_id").tail(2).groupby("original_user_id")["original_item_id"].agg(list)  # fmt: skip
    targets = pd.DataFrame({"user_id": last_two.index, "valid_item": last_two.str[0], "test_item": last_two.str[1]})  # fmt: skip
    out = run_pipeline(create_pipeline(), _inputs(targets, strategy="given", cold_user_fraction=0.0), caplog)  # fmt: skip
    test = out["test_targets"].merge(data["user_map"])
    expected = dict(zip(targets["user_id"], targets["test_item"], strict=True))
    items = dict(zip(data["item_map"]["item_id"], data["item_map"]["original_item_id"], strict=True))  # fmt: skip
    assert all(items[t] == expected[u] for u, t in zip(test["original_user_id"], test["target_item"], strict=True))  # fmt: skip
    assert out["cold_users"].empty
