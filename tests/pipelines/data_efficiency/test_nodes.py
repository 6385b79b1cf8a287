"""The data-efficiency curve from per-fraction evaluation metrics, and its figure."""

from __future__ import annotations

import pandas as pd
import pytest

from maskrec.pipelines.data_efficiency.nodes import (
    keep_user_fraction,
    plot_data_efficiency,
    summarise_data_efficiency,
)
from tests.helpers import params


def metrics(ndcg: dict[str, float]) -> dict:
    return {"models": {m: {"all": {"ndcg@10": {"mean": v, "ci_low": v - 0.01, "ci_high": v + 0.01},
                                   "hr@10": {"mean": 2 * v, "ci_low": 2 * v - 0.02, "ci_high": 2 * v + 0.02}}}
                       for m, v in ndcg.items()}}  # fmt: skip


def test_curve_orders_fractions_and_reports_what_ten_percent_keeps():
    fractions = {"full": 1.0, "users_10pct": 0.1, "users_05pct": 0.05}
    summary = summarise_data_efficiency(
        fractions, ("transfer", "sasrec"),
        full=metrics({"transfer": 0.12, "sasrec": 0.10}),
        users_10pct=metrics({"transfer": 0.108, "sasrec": 0.05}),
        users_05pct=metrics({"transfer": 0.09, "sasrec": 0.03}),
    )  # fmt: skip
    assert [p["fraction"] for p in summary["curve"]["transfer"]] == [0.05, 0.1, 1.0]
    assert summary["ndcg@10_at_10pct_over_100pct"] == pytest.approx({"transfer": 0.9, "sasrec": 0.5})  # fmt: skip
    figure = plot_data_efficiency(summary)
    sasrec = next(t for t in figure.data if t.name == "SASRec")
    assert list(sasrec.x) == [5.0, 10.0, 100.0] and list(sasrec.y) == [0.03, 0.05, 0.10]
    assert sasrec.error_y.array[0] == pytest.approx(0.01)


def test_user_fractions_are_nested_seeded_subsets():
    train = pd.DataFrame({"user_id": range(200), "item_ids": [[1, 2]] * 200, "timestamps": [[1, 2]] * 200})  # fmt: skip
    settings = params("data_split")
    sizes, previous = [], set()
    for fraction in (0.05, 0.1, 0.25, 0.5, 1.0):
        kept = set(keep_user_fraction(train, settings, fraction)["user_id"])
        assert previous <= kept  # nested
        sizes.append(len(kept))
        previous = kept
    assert sizes == [10, 20, 50, 100, 200]
    again = keep_user_fraction(train, settings, 0.1)
    assert set(again["user_id"]) == set(
        keep_user_fraction(train, settings, 0.1)["user_id"]
    )
    other = keep_user_fraction(train, params("data_split", seed=1), 0.1)
    assert set(other["user_id"]) != set(again["user_id"])
    assert len(keep_user_fraction(train, settings, 0.001)) == 1  # at least one user
