"""Rating prediction: how much will this user like this film? The protocols, every model's
predictions of held-out ratings, and RMSE / MAE with intervals and paired tests.

Two protocols over the same cleaned interactions, each fold its own namespaced instance
of one modular pipeline (`pipeline.py`: kedro viz shows each, and an interrupted run
resumes at the fold it was in):
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
runs per fold on that fold's training ratings only: no test rating, nor the fact that it
exists, reaches any training.

The `blend` (`ratings.blend`, `models.rating_blend`) is a linear combination of the heads'
and the classic models' predictions whose weights are fitted per fold on the same
validation ratings, the classic members refitted without them for that: the Netflix
Prize's way of combining models that err differently, fitted on no test rating either.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from maskrec.figures import bars
from maskrec.metrics import (
    error_metrics,
    history_buckets,
    paired_tests,
    ratio_intervals,
    with_fdr,
)
from maskrec.model_input import (
    next_rating_parts,
    random_rating_folds,
    random_validation_mask,
    rater_input,
    rating_set,
)
from maskrec.models.rating_baselines import check_similarity_size, fit_predict_many
from maskrec.models.rating_blend import blend, fit_blend
from maskrec.models.sequence import SequenceRecModel
from maskrec.params import RATING_FOLDS, EvaluationParams, RatingParams, TrainingParams
from maskrec.scoring import rate
from maskrec.training.setup import init_model
from maskrec.training.stages import fine_tune_ratings, pretrain, with_rating_head

logger = logging.getLogger(__name__)
COLUMNS = ["user_id", "item_id", "rating", "timestamp"]
FOLDS = RATING_FOLDS  # Surprise's protocol; a fold is a namespace (pipeline structure, not a parameter)
SEQUENCE_MODELS = ("fine_tuned", "scratch")


def split_ratings(interactions: pd.DataFrame, params: RatingParams) -> pd.DataFrame:
    """Every rating once, with its place in each protocol: `time_part` (train, valid or
    test: a user's last rating is test, the one before valid) and `fold` (0..FOLDS-1, a
    seeded random partition of all ratings into near-equal parts)."""
    ratings = interactions[COLUMNS].reset_index(drop=True)  # sorted by user, then time
    if "knn_baseline" in params.classic_models:  # before any fold fits or trains
        check_similarity_size(ratings, params.knn_baseline)
    part = next_rating_parts(ratings["user_id"].to_numpy())
    return ratings.assign(
        time_part=part, fold=random_rating_folds(len(ratings), params.seed)
    )


def select_fold(
    rating_splits: pd.DataFrame, protocol: str, fold: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One protocol's (training, test) ratings: next_in_time holds out each user's last
    rating, random fold k holds out fold k."""
    held = (
        rating_splits["time_part"] == "test"
        if protocol == "next_in_time"
        else rating_splits["fold"] == fold
    )
    return rating_splits[~held], rating_splits[held]


def predict_with_classic_models(
    train: pd.DataFrame,
    fitted: pd.DataFrame,
    held: pd.DataFrame,
    test: pd.DataFrame,
    params: RatingParams,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every classic model's prediction of every test rating (they have no choice to make
    on validation, so they train on all but the test), and the blend's classic members'
    predictions of the validation (`held`) ratings, refitted on the `fitted` ratings
    alone so that none has seen the ratings the blend weighs it on. The fits run side by
    side (`ratings.classic_jobs` processes)."""
    blended = [kind for kind in params.blend if kind in params.classic_models]
    fits = [(kind, train, test) for kind in params.classic_models] + [(kind, fitted, held) for kind in blended]  # fmt: skip
    predicted = fit_predict_many([(kind, ratings, asked, _settings(kind, params)) for kind, ratings, asked in fits],
                                 params.seed, params.classic_jobs)  # fmt: skip
    frames = [_predictions(asked, kind, p) for (kind, _, asked), p in zip(fits, predicted, strict=True)]  # fmt: skip
    on_test = len(params.classic_models)
    # the validation table has its columns even when the blend has no classic member
    columns = _predictions(held.iloc[:0], "", np.empty(0))
    return pd.concat(frames[:on_test], ignore_index=True), pd.concat([columns, *frames[on_test:]], ignore_index=True)  # fmt: skip


def _settings(kind: str, params: RatingParams) -> dict[str, Any]:
    """Classic model `kind`'s `ratings.<kind>` settings (the global mean has none)."""
    return dict(getattr(params, kind, {})) if kind != "global_mean" else {}


def hold_out_validation(
    train: pd.DataFrame, params: RatingParams, protocol: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """`train` split into the ratings the sequence models fit and the validation ratings
    they stop on (and the blend is weighed on): the `valid` time part for next_in_time,
    a seeded `valid_fraction` for the random folds."""
    if protocol == "next_in_time":
        valid = (train["time_part"] == "valid").to_numpy()
    else:
        valid = random_validation_mask(len(train), params.seed, params.valid_fraction)
    return train[~valid], train[valid]


def rating_model_input(
    train: pd.DataFrame,
    fitted: pd.DataFrame,
    held: pd.DataFrame,
    test: pd.DataFrame,
    params: RatingParams,
) -> tuple[pd.DataFrame, Any, Any, Any, dict[str, Any]]:
    """What the sequence models train, stop and are tested on: the `fitted` ratings as
    rated sequences; pretraining's next-item validation; the validation (`held`) and test
    rating questions (a test question's window is all of `train` around it); and the
    fitted ratings' mean and range, where the rating head starts."""
    length = params.head.model.max_len
    rated, pretraining_valid, valid_questions, scale = rater_input(fitted, held, length)
    return rated, pretraining_valid, valid_questions, rating_set(train, test, length), scale  # fmt: skip


def init_rating_model(item_features: pd.DataFrame, params: RatingParams) -> SequenceRecModel:  # fmt: skip
    """Fresh weights of the rating models' architecture, seeded by `ratings.seed`: the
    pretrained and the scratch model start from the same weights."""
    return init_model(item_features, params.pretraining)


def pretrain_on_fold(
    initial_model: SequenceRecModel,
    rated_sequences: pd.DataFrame,
    valid_targets: pd.DataFrame,
    params: RatingParams,
    training: TrainingParams,
    name: str,
) -> tuple[SequenceRecModel, pd.DataFrame]:
    """Cloze pretraining on the fold's fitted ratings (`ratings.pretraining`)."""
    return pretrain(initial_model, rated_sequences, valid_targets, params.pretraining, training, name)  # fmt: skip


def add_rating_head(
    model: SequenceRecModel, rating_scale: dict[str, Any], params: RatingParams
) -> SequenceRecModel:
    """`model`'s weights plus a new rating head (`training.stages.with_rating_head`) drawn
    from `ratings.seed`, so the pretrained and the scratch model get the same head."""
    return with_rating_head(model, rating_scale, params.seed, params.head)


def fine_tune_on_fold(
    model: SequenceRecModel,
    rated_sequences: pd.DataFrame,
    valid_questions: Any,
    params: RatingParams,
    training: TrainingParams,
    name: str,
) -> tuple[SequenceRecModel, pd.DataFrame]:
    """The rating head fine-tuned on the fold's fitted ratings (`ratings.head`),
    early-stopped on the validation questions' RMSE."""
    return fine_tune_ratings(model, rated_sequences, valid_questions, params.head, training, name)  # fmt: skip


def predict_with_sequence_models(
    test: pd.DataFrame,
    test_questions: Any,
    fine_tuned: SequenceRecModel,
    scratch: SequenceRecModel,
    training: TrainingParams,
) -> pd.DataFrame:
    """Both rating heads' predictions of the fold's test ratings (`scoring.rate`)."""
    return pd.concat(
        [
            _predictions(
                test, kind, rate(model, test_questions, training.scoring_batch_size)
            )  # fmt: skip
            for kind, model in zip(SEQUENCE_MODELS, (fine_tuned, scratch), strict=True)
        ],
        ignore_index=True,
    )


def fit_rating_blend(
    held: pd.DataFrame,
    valid_questions: Any,
    rating_scale: dict[str, Any],
    classic_valid: pd.DataFrame,
    fine_tuned: SequenceRecModel,
    scratch: SequenceRecModel,
    params: RatingParams,
    training: TrainingParams,
) -> dict[str, Any]:
    """The blend's weights (`ratings.blend`'s members; `models.rating_blend`), fitted on
    the validation ratings (`held`): its classic members as refitted without them
    (`classic_valid`), the rating heads as trained (they chose their epoch on these
    ratings: a small optimism in their weights); predictions clipped to the fitted
    ratings' range (`rating_scale`). With the members' and the blend's RMSE on those
    ratings (in-sample for the blend)."""
    if not params.blend:
        return {"members": []}
    heads = dict(zip(SEQUENCE_MODELS, (fine_tuned, scratch), strict=True))
    predictions = {
        name: rate(heads[name], valid_questions, training.scoring_batch_size) if name in heads
        else _member_predictions(classic_valid, name, held, "the fold's validation ratings")
        for name in params.blend
    }  # fmt: skip
    ratings = held["rating"].to_numpy(dtype=float)
    weights = fit_blend(predictions, ratings, params.blend_penalties)
    scale = tuple(rating_scale["range"])
    mine = {**predictions, "blend": blend(weights, predictions, scale)}
    rmse = {name: float(error_metrics(p - ratings)["rmse"]) for name, p in mine.items()}
    logger.info("blend weights %s (intercept %.3f, penalty %g); validation RMSE %s",
                {k: round(v, 3) for k, v in weights["weights"].items()}, weights["intercept"], weights["penalty"],
                {k: round(v, 4) for k, v in rmse.items()})  # fmt: skip
    return {"members": list(predictions), **weights, "scale": list(scale),
            "validation_ratings": len(ratings), "validation_rmse": rmse}  # fmt: skip


def _member_predictions(table: pd.DataFrame, model: str, asked: pd.DataFrame, what: str) -> np.ndarray:  # fmt: skip
    """`model`'s predictions in `table`, which must be of the `asked` ratings in their
    order (else refused: a member that answered other questions, or another run's table)."""
    mine = table[table["model"] == model]
    if not np.array_equal(mine[["user_id", "item_id"]].to_numpy(), asked[["user_id", "item_id"]].to_numpy()):  # fmt: skip
        raise ValueError(f"the blend's member {model!r} predicts other ratings than {what}")  # fmt: skip
    return mine["prediction"].to_numpy()


def predict_with_blend(
    classic: pd.DataFrame, sequence: pd.DataFrame, weights: dict[str, Any]
) -> pd.DataFrame:
    """The blend's predictions of the fold's test ratings, from its members' (each as
    trained on all it trains on); none where `ratings.blend` is empty."""
    if not weights["members"]:
        return sequence.iloc[:0]
    members = pd.concat([classic, sequence], ignore_index=True)
    first = weights["members"][0]
    asked = members.loc[members["model"] == first, ["user_id", "item_id", "rating"]]
    # every member answers the same questions, in one order
    predictions = {m: _member_predictions(members, m, asked, repr(first)) for m in weights["members"]}  # fmt: skip
    return asked.assign(model="blend", prediction=blend(weights, predictions, tuple(weights["scale"])))  # fmt: skip


def collect_fold(
    classic: pd.DataFrame,
    sequence: pd.DataFrame,
    blended: pd.DataFrame,
    pretrained_history: pd.DataFrame,
    fine_tuned_history: pd.DataFrame,
    scratch_history: pd.DataFrame,
    protocol: str,
    fold: int,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The fold's predictions (every model, the blend too) and its training histories
    (every stage), labelled with the protocol and fold; each fold's pair is saved, so a
    resumed run (`--only-missing-outputs`) skips the folds that finished."""
    predictions = pd.concat([classic, sequence, blended], ignore_index=True).assign(protocol=protocol, fold=fold)  # fmt: skip
    for model in predictions["model"].unique():
        mine = predictions[predictions["model"] == model]
        rmse = error_metrics(mine["prediction"] - mine["rating"])["rmse"]
        logger.info("%s fold %d: %s RMSE %.4f", protocol, fold, model, rmse)
    history = pd.concat([pretrained_history, fine_tuned_history, scratch_history], ignore_index=True)  # fmt: skip
    return predictions, history.assign(protocol=protocol, fold=fold)


def _predictions(test: pd.DataFrame, model: str, predicted: np.ndarray) -> pd.DataFrame:
    return test[["user_id", "item_id", "rating"]].assign(model=model, prediction=np.asarray(predicted, dtype=float))  # fmt: skip


def collect_histories(**histories: pd.DataFrame) -> pd.DataFrame:
    """Every fold's training histories as one table (protocol and fold columns)."""
    return pd.concat(histories.values(), ignore_index=True)


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
    rating_splits: pd.DataFrame,
    params: RatingParams,
    evaluation: EvaluationParams,
    **fold_predictions: pd.DataFrame,
) -> dict[str, Any]:
    """Per protocol and model: RMSE and MAE with 95% intervals on all users, on users with
    at most `evaluation.sparse_user_max_history` training ratings and by training-history
    length; and paired tests of per-user mean squared error for `params.comparisons`,
    adjusted together for the false discovery rate."""
    history = rating_splits[rating_splits["time_part"] != "test"].groupby("user_id").size()  # fmt: skip
    predictions = pd.concat(fold_predictions.values(), ignore_index=True)
    errors = predictions.assign(
        squared=(predictions["prediction"] - predictions["rating"]) ** 2,
        absolute=(predictions["prediction"] - predictions["rating"]).abs(),
    )
    per_user = errors.groupby(["protocol", "model", "user_id"], sort=True).agg(
        squared=("squared", "sum"), absolute=("absolute", "sum"), ratings=("rating", "size")
    ).reset_index()  # fmt: skip
    per_user["history"] = history.reindex(per_user["user_id"]).fillna(0).to_numpy()
    per_user["bucket"] = history_buckets(
        per_user["history"], evaluation.history_buckets
    )
    sparse_name = f"history<={evaluation.sparse_user_max_history}"
    sparse = per_user["history"] <= evaluation.sparse_user_max_history
    result: dict[str, Any] = {"protocols": {}, "paired_tests": []}
    for protocol, rows in per_user.groupby("protocol", sort=False):
        models = {}
        for model, group in rows.groupby("model", sort=False):
            models[model] = {
                "all": _errors(group, evaluation),
                sparse_name: _errors(group[sparse[group.index]], evaluation),
                "by_history_length": {str(b): _errors(g, evaluation) for b, g in group.groupby("bucket", observed=True)},
            }  # fmt: skip
        result["protocols"][protocol] = models
        mse = rows.assign(mse=rows["squared"] / rows["ratings"]).pivot(index="user_id", columns="model", values="mse")  # fmt: skip
        sparse_users = mse.index.isin(rows.loc[sparse[rows.index], "user_id"])
        groups = {"all": np.ones(len(mse), dtype=bool), sparse_name: sparse_users}
        tests = paired_tests(mse, params.comparisons, groups, "user mse", evaluation)
        result["paired_tests"] += [{"protocol": protocol, **t} for t in tests]
    result["paired_tests"] = with_fdr(result["paired_tests"])
    return result


def plot_rating_errors(rating_metrics: dict[str, Any]) -> go.Figure:
    """RMSE with its 95% interval per model, one group of bars per protocol."""
    figure = go.Figure()
    for protocol, models in rating_metrics["protocols"].items():
        figure.add_trace(bars(protocol, list(models), [m["all"]["rmse"] for m in models.values()]))  # fmt: skip
    figure.update_layout(title="Rating prediction: test RMSE (95% interval over users; lower is better)",
                         yaxis_title="RMSE", barmode="group")  # fmt: skip
    return figure
