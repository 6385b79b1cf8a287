"""The data-efficiency curve: each model's test metrics at every fraction of the target's
training users, with intervals, and the figure."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from maskrec.figures import line
from maskrec.params import SplitParams
from maskrec.registry import label

METRICS = ("ndcg@10", "hr@10")


def keep_user_fraction(
    train_sequences: pd.DataFrame, params: SplitParams, fraction: float
) -> pd.DataFrame:
    """The training sequences of `fraction` of the users (at least one), chosen by one
    seeded order of all users, so a smaller fraction's users are a subset of a larger
    one's (nested subsets, as a data-efficiency curve needs)."""
    users = np.sort(train_sequences["user_id"].to_numpy())
    order = np.random.default_rng(params.seed).permutation(users)
    keep = order[: max(1, int(round(fraction * len(users))))]
    return train_sequences[train_sequences["user_id"].isin(keep)].reset_index(drop=True)


def summarise_data_efficiency(
    fractions: dict[str, float], models: tuple[str, ...], **evaluation_metrics: dict
) -> dict[str, Any]:
    """Per model and fraction of training users: test NDCG@10 and HR@10 (mean and 95%
    interval, all test users), and each model's NDCG@10 at 10% of the users as a share
    of its own at 100%. `evaluation_metrics` is keyed like `fractions`."""
    curve: dict[str, list[dict]] = {}
    for model in models:
        points = []
        for key, fraction in sorted(fractions.items(), key=lambda kv: kv[1]):
            stats = evaluation_metrics[key]["models"][model]["all"]
            points.append({"fraction": fraction, **{m: stats[m] for m in METRICS}})
        curve[model] = points
    kept = {}
    for model, points in curve.items():
        by_fraction = {p["fraction"]: p["ndcg@10"]["mean"] for p in points}
        if 0.1 in by_fraction and by_fraction.get(1.0):
            kept[model] = by_fraction[0.1] / by_fraction[1.0]
    return {"curve": curve, "ndcg@10_at_10pct_over_100pct": kept,
            "protocol": "each fraction fine-tunes on a nested, seeded subset of the target's training users; "
                        "validation and test users are the same at every fraction"}  # fmt: skip


def plot_data_efficiency(data_efficiency: dict[str, Any]) -> go.Figure:
    """Test NDCG@10 against the share of the target's training users, one line per model,
    with 95% bootstrap intervals."""
    figure = go.Figure()
    for model, points in data_efficiency["curve"].items():
        stats = [p["ndcg@10"] for p in points]
        figure.add_trace(
            line(label(model), [100 * p["fraction"] for p in points], stats)
        )
    figure.update_layout(
        title="Test NDCG@10 by share of the target's training users (95% intervals)",
        xaxis={"title": "% of training users", "type": "log"},
        yaxis_title="NDCG@10",
    )
    return figure
