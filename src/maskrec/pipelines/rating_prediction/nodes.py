"""Rating prediction: how much will this user like this film? The protocols, the models'
predictions on held-out ratings, and RMSE / MAE with intervals and paired tests.

Two protocols over the same cleaned interactions:
- `next_in_time`: each user's last rating is the test, the one before it validation (as
  the ranking split does); models without choices to make train on everything before
  the test rating.
- `random_folds`: Surprise's k-fold cross-validation, every rating in exactly one test
  fold (seeded), so the numbers compare with its published table.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from maskrec.metrics import fdr_adjust, paired_comparison, ratio_intervals
from maskrec.models.rating_baselines import fit_predict
from maskrec.params import EvaluationParams, RatingParams

logger = logging.getLogger(__name__)
COLUMNS = ["user_id", "item_id", "rating", "timestamp"]


def split_ratings(interactions: pd.DataFrame, params: RatingParams) -> pd.DataFrame:
    """Every rating once, with its place in each protocol: `time_part` (train, valid or
    test: a user's last rating is test, the one before valid) and `fold` (0..folds-1, a
    seeded random partition of all ratings into near-equal parts)."""
    ratings = interactions[COLUMNS].reset_index(drop=True)  # sorted by user, then time
    from_end = ratings.groupby("user_id").cumcount(ascending=False).to_numpy()
    part = np.where(from_end == 0, "test", np.where(from_end == 1, "valid", "train"))
    rng = np.random.default_rng(params.seed)
    fold = np.empty(len(ratings), dtype=np.int64)
    fold[rng.permutation(len(ratings))] = np.arange(len(ratings)) % params.folds
    return ratings.assign(time_part=part, fold=fold)


def protocol_splits(
    rating_splits: pd.DataFrame, params: RatingParams
) -> Iterator[tuple[str, int, pd.DataFrame, pd.DataFrame]]:
    """(protocol, fold, train, test) for every protocol and fold the parameters ask for."""
    if "next_in_time" in params.protocols:
        before = rating_splits["time_part"] != "test"
        yield "next_in_time", 0, rating_splits[before], rating_splits[~before]
    if "random_folds" in params.protocols:
        for fold in range(params.folds):
            held = rating_splits["fold"] == fold
            yield "random_folds", fold, rating_splits[~held], rating_splits[held]


def predict_with_classic_models(
    rating_splits: pd.DataFrame, params: RatingParams
) -> pd.DataFrame:
    """Every classic model's prediction of every test rating of every protocol and fold
    (they have no choice to make on validation, so they train on all but the test)."""
    frames = []
    for protocol, fold, train, test in protocol_splits(rating_splits, params):
        for kind in params.models:
            settings = getattr(params, kind, {}) if kind != "global_mean" else {}
            predicted = fit_predict(kind, train, test, dict(settings), params.seed)
            frames.append(test[["user_id", "item_id", "rating"]].assign(
                protocol=protocol, fold=fold, model=kind, prediction=predicted))  # fmt: skip
            rmse = float(np.sqrt(np.mean((predicted - test["rating"].to_numpy()) ** 2)))
            logger.info("%s fold %d: %s RMSE %.4f", protocol, fold, kind, rmse)
    return pd.concat(frames, ignore_index=True)


def _per_user(predictions: pd.DataFrame) -> pd.DataFrame:
    """Squared and absolute errors summed per (protocol, model, user), with counts."""
    errors = predictions.assign(
        squared=(predictions["prediction"] - predictions["rating"]) ** 2,
        absolute=(predictions["prediction"] - predictions["rating"]).abs(),
    )
    return errors.groupby(["protocol", "model", "user_id"], sort=True).agg(
        squared=("squared", "sum"), absolute=("absolute", "sum"), ratings=("rating", "size")
    ).reset_index()  # fmt: skip


def _errors(group: pd.DataFrame, evaluation: EvaluationParams) -> dict[str, Any]:
    """RMSE and MAE over a group's ratings, with bootstrap intervals over its users."""
    low, high = ratio_intervals(
        group[["squared", "absolute"]].to_numpy().T, group["ratings"].to_numpy(),
        evaluation.bootstrap_samples, evaluation.confidence, evaluation.seed,
    )  # fmt: skip
    total = group["ratings"].sum()
    mse, mae = group["squared"].sum() / total, group["absolute"].sum() / total
    return {"users": len(group), "ratings": int(total),
            "rmse": {"mean": float(np.sqrt(mse)), "ci_low": float(np.sqrt(low[0])), "ci_high": float(np.sqrt(high[0]))},
            "mae": {"mean": float(mae), "ci_low": float(low[1]), "ci_high": float(high[1])}}  # fmt: skip


def evaluate_ratings(
    rating_predictions: pd.DataFrame,
    rating_splits: pd.DataFrame,
    params: RatingParams,
    evaluation: EvaluationParams,
) -> dict[str, Any]:
    """Per protocol and model: RMSE and MAE with 95% intervals on all users, on users with
    at most `evaluation.sparse_user_max_history` training ratings and by training-history
    length; and paired tests of per-user mean squared error for `params.comparisons`,
    adjusted together for the false discovery rate."""
    history = (
        rating_splits[rating_splits["time_part"] != "test"].groupby("user_id").size()
    )
    per_user = _per_user(rating_predictions)
    per_user["history"] = history.reindex(per_user["user_id"]).fillna(0).to_numpy()
    edges = evaluation.history_buckets
    labels = [f"{lo}-{hi - 1}" for lo, hi in zip(edges[:-1], edges[1:], strict=True)] + [f"{edges[-1]}+"]  # fmt: skip
    per_user["bucket"] = pd.cut(per_user["history"], [*edges, np.inf], right=False, labels=labels)  # fmt: skip
    sparse = per_user["history"] <= evaluation.sparse_user_max_history
    result: dict[str, Any] = {"protocols": {}, "paired_tests": []}
    for protocol, rows in per_user.groupby("protocol", sort=False):
        models = {}
        for model, group in rows.groupby("model", sort=False):
            mine = sparse[group.index]
            models[model] = {
                "all": _errors(group, evaluation),
                f"history<={evaluation.sparse_user_max_history}": _errors(group[mine], evaluation),
                "by_history_length": {str(b): _errors(g, evaluation) for b, g in group.groupby("bucket", observed=True)},
            }  # fmt: skip
        result["protocols"][protocol] = models
        mse = rows.assign(mse=rows["squared"] / rows["ratings"]).pivot(index="user_id", columns="model", values="mse")  # fmt: skip
        sparse_users = rows.loc[sparse[rows.index], "user_id"].unique()
        for model, competitor in params.comparisons:
            for group_name, users in (("all", mse.index), (f"history<={evaluation.sparse_user_max_history}", sparse_users)):  # fmt: skip
                both = mse.loc[users, [model, competitor]].dropna()
                test = paired_comparison(
                    both[model], both[competitor], evaluation.bootstrap_samples,
                    evaluation.permutation_resamples, evaluation.confidence, evaluation.seed,
                )  # fmt: skip
                result["paired_tests"].append({"protocol": protocol, "model": model, "competitor": competitor,
                                               "group": group_name, "metric": "user mse", **test})  # fmt: skip
    adjusted = fdr_adjust([t["p_value"] for t in result["paired_tests"]])
    for test, p in zip(result["paired_tests"], adjusted, strict=True):
        test["p_adjusted"] = p
    return result


def plot_rating_errors(rating_metrics: dict[str, Any]) -> go.Figure:
    """RMSE with its 95% interval per model, one group of bars per protocol."""
    figure = go.Figure()
    for protocol, models in rating_metrics["protocols"].items():
        rmse = [m["all"]["rmse"] for m in models.values()]
        figure.add_trace(go.Bar(
            name=protocol, x=list(models), y=[r["mean"] for r in rmse],
            error_y={"type": "data", "symmetric": False,
                     "array": [r["ci_high"] - r["mean"] for r in rmse],
                     "arrayminus": [r["mean"] - r["ci_low"] for r in rmse]},
        ))  # fmt: skip
    figure.update_layout(title="Rating prediction: test RMSE (95% interval over users; lower is better)",
                         yaxis_title="RMSE", barmode="group")  # fmt: skip
    return figure
