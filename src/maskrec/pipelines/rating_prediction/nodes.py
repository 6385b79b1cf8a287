"""Rating prediction: how much will this user like this film? The protocols, the models'
predictions on held-out ratings, and RMSE / MAE with intervals and paired tests.

Two protocols over the same cleaned interactions:
- `next_in_time`: each user's last rating is the test, the one before it validation (as
  the ranking split does); models without choices to make train on everything before
  the test rating.
- `random_folds`: Surprise's k-fold cross-validation, every rating in exactly one test
  fold (seeded), so the numbers compare with its published table.

The sequence models (`fine_tuned`, `scratch`) read a user's rated history with the
question's item in its place in time, its rating hidden (`model_input.rating_set`).
They choose their epoch on validation ratings held out of each fold's training ratings
(next_in_time: each user's rating before the test one; random_folds: a seeded
`valid_fraction` of the fold's training ratings), and `fine_tuned`'s Cloze pretraining
runs per protocol and fold on that fold's training ratings only: no test rating, nor
the fact that it exists, reaches any training.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import torch

from maskrec.metrics import fdr_adjust, paired_comparison, ratio_intervals
from maskrec.model_input import rating_set, sequence_table
from maskrec.models.rating_baselines import KINDS as CLASSIC
from maskrec.models.rating_baselines import fit_predict
from maskrec.models.sequence import SequenceRecModel
from maskrec.params import (
    EvaluationParams,
    ModelParams,
    PretrainingParams,
    RatingParams,
    TrainingParams,
)
from maskrec.scoring import rate
from maskrec.training.setup import init_model
from maskrec.training.stages import fine_tune_ratings, pretrain

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
        for kind in (m for m in params.models if m in CLASSIC):
            settings = getattr(params, kind, {}) if kind != "global_mean" else {}
            predicted = fit_predict(kind, train, test, dict(settings), params.seed)
            frames.append(test[["user_id", "item_id", "rating"]].assign(
                protocol=protocol, fold=fold, model=kind, prediction=predicted))  # fmt: skip
            rmse = float(np.sqrt(np.mean((predicted - test["rating"].to_numpy()) ** 2)))
            logger.info("%s fold %d: %s RMSE %.4f", protocol, fold, kind, rmse)
    return pd.concat(frames, ignore_index=True)


def _held_out(
    protocol: str, train: pd.DataFrame, params: RatingParams
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A protocol's training ratings as (fitted, validation): the `valid` time part for
    next_in_time, a seeded random `sequence.valid_fraction` for the random folds."""
    if protocol == "next_in_time":
        valid = train["time_part"] == "valid"
    else:
        rng = np.random.default_rng(params.seed + 1)
        valid = rng.random(len(train)) < params.sequence.valid_fraction
    return train[~valid], train[valid]


def next_item_targets(fitted: pd.DataFrame, valid: pd.DataFrame) -> pd.DataFrame:
    """Pretraining's validation (user_id, context, target_item): each user's latest
    validation rating as the item after the user's fitted items before it in time."""
    latest = valid.groupby("user_id", sort=True).tail(1).set_index("user_id")
    mine = fitted[fitted["user_id"].isin(latest.index)]
    before = mine[mine["timestamp"].to_numpy() <= latest.loc[mine["user_id"], "timestamp"].to_numpy()]  # fmt: skip
    contexts = before.groupby("user_id", sort=True)["item_id"].agg(lambda x: x.to_numpy())  # fmt: skip
    return pd.DataFrame({"user_id": contexts.index, "context": contexts.to_numpy(),
                         "target_item": latest.loc[contexts.index, "item_id"].to_numpy()})  # fmt: skip


def predict_with_sequence_models(
    rating_splits: pd.DataFrame,
    item_features: pd.DataFrame,
    model: ModelParams,
    pretraining: PretrainingParams,
    params: RatingParams,
    training: TrainingParams,
) -> tuple[pd.DataFrame, pd.DataFrame, SequenceRecModel]:
    """The rating head's predictions of every test rating of every protocol and fold
    (`sequence_fold`). Returns the predictions, the training histories (every stage,
    protocol and fold) and the fine-tuned model of next_in_time (else of fold 0), which
    inference rates with."""
    frames, histories, kept = [], [], None
    for protocol, fold, train, test in protocol_splits(rating_splits, params):
        predictions, history, tuned = sequence_fold(
            protocol, fold, train, test, item_features, model, pretraining, params, training
        )  # fmt: skip
        frames.append(predictions)
        histories.append(history)
        kept = kept if kept is not None else tuned.get("fine_tuned")
    return pd.concat(frames, ignore_index=True), pd.concat(histories, ignore_index=True), kept  # fmt: skip


def sequence_fold(
    protocol: str,
    fold: int,
    train: pd.DataFrame,
    test: pd.DataFrame,
    item_features: pd.DataFrame,
    model: ModelParams,
    pretraining: PretrainingParams,
    params: RatingParams,
    training: TrainingParams,
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, SequenceRecModel]]:
    """One protocol and fold: validation ratings held out of `train`, `fine_tuned` from
    Cloze weights pretrained on the rest (the fitted ratings), `scratch` from the same
    initial weights (seed `ratings.seed`), both fine-tuned alike and asked for `test`'s
    ratings. Returns the predictions, the histories and the fine-tuned models by kind."""
    head = params.sequence
    model = model.model_copy(update={"max_len": head.context_length})
    seeded = training.model_copy(update={"seed": params.seed})
    cloze = pretraining.model_copy(update={"epochs": head.pretraining_epochs, "patience": head.pretraining_patience})  # fmt: skip
    fitted, valid = _held_out(protocol, train, params)
    sequences = sequence_table(fitted, ratings=True)
    questions = {"valid": rating_set(fitted, valid, head.context_length),
                 "test": rating_set(train, test, head.context_length)}  # fmt: skip
    scale = (float(fitted["rating"].min()), float(fitted["rating"].max()))
    prefix = f"rating_{protocol}_{fold}"
    starts, histories, frames, tuned = {}, [], [], {}
    if "fine_tuned" in params.models:
        starts["fine_tuned"], history = pretrain(
            init_model(item_features, model, seeded), sequences,
            next_item_targets(fitted, valid), cloze, seeded, f"{prefix}_pretrained",
        )  # fmt: skip
        histories.append(history)
    if "scratch" in params.models:
        starts["scratch"] = init_model(item_features, model, seeded)
    for kind, start in starts.items():
        # the head's initial weights: the same for both
        torch.manual_seed(params.seed)
        rater = start.with_rating_head(fitted["rating"].mean(), scale)
        tuned[kind], history = fine_tune_ratings(rater, sequences, questions["valid"], head, seeded, f"{prefix}_{kind}")  # fmt: skip
        histories.append(history)
        predicted = rate(tuned[kind], questions["test"], training.eval_batch_size)
        frames.append(test[["user_id", "item_id", "rating"]].assign(
            protocol=protocol, fold=fold, model=kind, prediction=predicted.astype(float)))  # fmt: skip
        rmse = float(np.sqrt(np.mean((predicted - test["rating"].to_numpy()) ** 2)))
        logger.info("%s fold %d: %s RMSE %.4f", protocol, fold, kind, rmse)
    history = pd.concat(histories, ignore_index=True).assign(
        protocol=protocol, fold=fold
    )
    return pd.concat(frames, ignore_index=True), history, tuned


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
    classic_rating_predictions: pd.DataFrame,
    sequence_rating_predictions: pd.DataFrame,
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
    predictions = pd.concat([classic_rating_predictions, sequence_rating_predictions])
    per_user = _per_user(predictions)
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
