"""Top-K recommendations with titles, for every user and for a given history, from one
model: the best by validation NDCG@10 or the one `inference.model` names; beside each of
a user's recommendations, the rating the rating model predicts the user would give it."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from maskrec.catalogue import CatalogueMismatch, check_catalogue, original_ids
from maskrec.datasets.trained_models import SavedModel
from maskrec.model_input import rating_set
from maskrec.models.new_items import NewItems
from maskrec.models.sequence import SequenceRecModel
from maskrec.params import InferenceParams, TrainingParams
from maskrec.registry import RATING_MODEL, chosen
from maskrec.scoring import Model, WithNewFilms, rate, recommend

logger = logging.getLogger(__name__)


# where the item map inference scores against comes from (for what a mismatch names)
ITEM_FEATURES = "item_features (data/04_feature/item_features.parquet)"


def load_chosen_model(
    model_stats: dict[str, Any],
    trained_models: dict[str, SavedModel],
    item_features: pd.DataFrame,
    params: InferenceParams,
) -> tuple[Model, str]:
    """Load only the model inference uses (chosen on validation, never on test), after
    checking that it was trained on the item map of the data on disk (the users'
    histories are in that map's ids)."""
    name = chosen(model_stats, params.model)
    saved = trained_models[name]
    check_catalogue(f"{name} ({saved.path})", saved.catalogue(), item_features, ITEM_FEATURES)  # fmt: skip
    logger.info("recommending with %s", name)
    return saved(), name


def add_new_films(
    new_films: pd.DataFrame,
    item_features: pd.DataFrame,
    new_films_model: NewItems,
    chosen_model: Model,
    chosen_model_name: str,
    model_stats: dict[str, Any],
) -> tuple[Model, pd.DataFrame]:
    """The model inference scores with, and the films it may recommend (item_features'
    columns plus `new_film`). With films added after training (`new_films`, a file named
    by `--params new_films=<csv>`), they get the ids after the catalogue's and the chosen
    sequence model is mixed with `new_films_model`, which scores them from content alone
    (at the model's softmax temperature chosen on validation), with no retraining. A film
    already in the catalogue or a genre the models never saw is refused, naming the file,
    line and column, before anything is scored."""
    items = item_features.assign(new_film=False)
    if new_films.empty:
        return chosen_model, items
    if not isinstance(chosen_model, SequenceRecModel):
        raise ValueError(
            f"new films are scored by mixing them into a sequence model's ranking; the chosen "
            f"model {chosen_model_name!r} is a baseline: name a sequence model with --params inference.model=<name>"
        )  # fmt: skip
    if any(
        isinstance(i, str)
        for i in original_ids(item_features["original_item_id"].head(1))
    ):
        raise ValueError(
            "new_films: films added after training are read from a MovieLens movies.csv (integer "
            "movieId); this run's items have text ids (a log of one's own), which that file cannot name"
        )  # fmt: skip
    check_catalogue("new_films_model", new_films_model.catalogue, item_features, ITEM_FEATURES)  # fmt: skip
    mixture, added = new_films_model.add_films(new_films, set(item_features["original_item_id"].tolist()))  # fmt: skip
    temperature = float(model_stats.get(chosen_model_name, {}).get("temperature", 1.0))
    logger.info("%d films added after training scored from content, mixed into %s (temperature %.3g)", len(new_films), chosen_model_name, temperature)  # fmt: skip
    return WithNewFilms(chosen_model, mixture, temperature), pd.concat([items, added.assign(new_film=True)], ignore_index=True)  # fmt: skip


@dataclass
class Rater:
    """The rating model inference predicts ratings with, or none (Kedro datasets cannot
    hold a bare None)."""

    model: SequenceRecModel | None = None


def load_rating_model(
    trained_models: dict[str, SavedModel], item_features: pd.DataFrame
) -> Rater:
    """The rating head `kedro run --pipelines rating_prediction` saved, if it was trained
    on this catalogue; otherwise none, and recommendations carry no predicted rating."""
    saved = trained_models[RATING_MODEL]
    if not saved.dataset.exists():
        logger.info("no rating model (kedro run --pipelines rating_prediction trains one): recommendations carry no predicted rating")  # fmt: skip
        return Rater()
    try:
        check_catalogue("the rating model", saved.catalogue(), item_features, ITEM_FEATURES)  # fmt: skip
    except CatalogueMismatch as mismatch:
        logger.warning("%s; recommendations carry no predicted rating (kedro run --pipelines rating_prediction retrains it)", mismatch)  # fmt: skip
        return Rater()
    return Rater(saved())


def predicted_ratings(
    rater: Rater, interactions: pd.DataFrame, questions: pd.DataFrame, batch_size: int
) -> np.ndarray:
    """The stars each (user_id, item_id) question's user would give its item next, read
    from the user's rated `interactions`; NaN without a rating model."""
    if rater.model is None:
        return np.full(len(questions), np.nan)
    after = interactions["timestamp"].max() + 1  # each question comes after the history
    asked = rating_set(interactions, questions.assign(timestamp=after), rater.model.config.max_len)  # fmt: skip
    return rate(rater.model, asked, batch_size).astype(float)


def _frame(
    owners: np.ndarray,
    items: np.ndarray,
    scores: np.ndarray,
    item_features: pd.DataFrame,
    model: str,
) -> pd.DataFrame:
    """One row per recommendation; a user with fewer unseen films than K gets fewer rows
    (top-k then fills up with excluded films, scored -inf)."""
    lookup = item_features.set_index("item_id")
    owners = np.repeat(owners, items.shape[1])
    ranks = np.tile(np.arange(1, items.shape[1] + 1), len(items))
    flat, values = items.ravel(), scores.ravel().astype(float)
    real = np.isfinite(values)
    flat, values, owners, ranks = flat[real], values[real], owners[real], ranks[real]
    return pd.DataFrame({
        "user_id": owners,
        "rank": ranks,
        "item_id": lookup.loc[flat, "original_item_id"].to_numpy(),
        "title": lookup.loc[flat, "title"].to_numpy(),
        "year": lookup.loc[flat, "year"].to_numpy(),
        "score": values,
        "model": model,
        "new_film": lookup.loc[flat, "new_film"].to_numpy(dtype=bool) if "new_film" in lookup else False,
    })  # fmt: skip


def recommend_for_all_users(
    interactions: pd.DataFrame,
    item_features: pd.DataFrame,
    user_map: pd.DataFrame,
    chosen_model: Model,
    chosen_model_name: str,
    rater: Rater,
    params: InferenceParams,
    training: TrainingParams,
) -> pd.DataFrame:
    """Every user's top-K unseen items from their whole known history (original ids),
    with the rating the rating model predicts for each (`predicted_rating`); scored in
    batches of `training.scoring_batch_size`."""
    histories = interactions.groupby("user_id", sort=True)["item_id"].agg(list)
    items, scores = recommend(chosen_model, histories.tolist(), params.top_k, training.scoring_batch_size)  # fmt: skip
    users = user_map.set_index("user_id").loc[histories.index, "original_user_id"]
    frame = _frame(users.to_numpy(), items, scores, item_features, chosen_model_name)
    questions = pd.DataFrame({"user_id": np.repeat(histories.index.to_numpy(), items.shape[1]), "item_id": items.ravel()})  # fmt: skip
    questions = questions[np.isfinite(scores.ravel())]  # the rows `_frame` kept
    rated = ~frame[
        "new_film"
    ].to_numpy()  # a film added after training has no rating yet
    ratings = np.full(len(frame), np.nan)
    ratings[rated] = predicted_ratings(rater, interactions, questions[rated], training.scoring_batch_size)  # fmt: skip
    return frame.assign(predicted_rating=ratings)


def recommend_for_history(
    item_features: pd.DataFrame,
    chosen_model: Model,
    chosen_model_name: str,
    params: InferenceParams,
    training: TrainingParams,
) -> pd.DataFrame:
    """Top-K for the history in `inference.history` (original item ids, oldest first)."""
    requests = pd.DataFrame({"request_id": ["0"], "history": [params.history], "where": ["inference.history"]})  # fmt: skip
    frame = _recommend_histories(requests[: 1 if params.history else 0], item_features, chosen_model, chosen_model_name, params, training)  # fmt: skip
    return frame.rename(columns={"request_id": "user_id"}).assign(user_id=0)


def recommend_for_requests(
    history_requests: pd.DataFrame,
    item_features: pd.DataFrame,
    chosen_model: Model,
    chosen_model_name: str,
    params: InferenceParams,
    training: TrainingParams,
) -> pd.DataFrame:
    """Top-K for every history of the file `inference_histories` names (one per row;
    `HistoriesDataset`), by request_id; empty when no file is given."""
    return _recommend_histories(history_requests, item_features, chosen_model, chosen_model_name, params, training)  # fmt: skip


def _recommend_histories(
    requests: pd.DataFrame,
    item_features: pd.DataFrame,
    chosen_model: Model,
    chosen_model_name: str,
    params: InferenceParams,
    training: TrainingParams,
) -> pd.DataFrame:
    """Histories of original ids (request_id, history, where) -> top-K frame; an id the
    catalogue lacks is an error naming its request, before anything is scored."""
    trained = item_features[~item_features["new_film"]] if "new_film" in item_features else item_features  # fmt: skip
    known = dict(zip(trained["original_item_id"], trained["item_id"], strict=True))
    for where, history in zip(requests["where"], requests["history"], strict=True):
        unknown = [i for i in history if i not in known]
        if unknown:
            raise ValueError(
                f"{where}: item ids {unknown[:10]} are not in the catalogue the models were trained on"
            )
    histories = [[known[i] for i in history] for history in requests["history"]]
    items, scores = recommend(
        chosen_model, histories, params.top_k, training.scoring_batch_size
    )
    frame = _frame(requests["request_id"].to_numpy(), items, scores, item_features, chosen_model_name)  # fmt: skip
    return frame.rename(columns={"user_id": "request_id"})
