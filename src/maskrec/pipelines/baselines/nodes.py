"""Classic baselines and SASRec, fitted on the training sequences only; the classic ones'
grids are chosen on validation NDCG@10."""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from maskrec.catalogue import ItemCatalogue, item_counts, trained_on
from maskrec.metrics import mean_metrics
from maskrec.model_input import eval_set, right_aligned
from maskrec.models.baselines import (
    EASE,
    Baseline,
    GenreRecency,
    ItemKNN,
    MatrixFactorization,
    MostPopular,
    NewestFirst,
    RandomScores,
    Skipped,
    dense_skip_reason,
    interaction_matrix,
)
from maskrec.models.new_items import NewItems, simulated_targets
from maskrec.params import BaselineParams, TrainingParams
from maskrec.scoring import rank
from maskrec.training.stages import named, train_sasrec

logger = logging.getLogger(__name__)


def _grid_search(
    name: str,
    candidates: Iterator[tuple[dict, Baseline]],
    valid_targets: pd.DataFrame,
    batch_size: int,
) -> tuple[Baseline, dict]:
    """Keep the best of the (settings, model) candidates by validation NDCG@10. Each
    trial's `fit_seconds` is the time its candidate took to arrive (a baseline that fits
    its whole grid in one pass, ItemKNN, counts it all on its first)."""
    valid = eval_set(valid_targets, length=1)
    trials, best = [], (-1.0, None)
    started = time.perf_counter()
    for settings, model in candidates:
        seconds = time.perf_counter() - started
        ndcg = mean_metrics(rank(model, valid, batch_size).ranks)["ndcg@10"]
        trials.append({**settings, "valid_ndcg@10": ndcg, "fit_seconds": seconds})
        logger.info("%s %s: valid NDCG@10 %.4f (fit %.1f s)", name, settings, ndcg, seconds)  # fmt: skip
        if ndcg > best[0]:
            best = (ndcg, model)
        started = time.perf_counter()
    selection = {"model": name, "chosen": best[1].config, "valid_ndcg@10": best[0], "trials": trials}  # fmt: skip
    return best[1], selection


def _each(fit: Callable[..., Baseline], train: sp.csr_matrix, grid: dict[str, list]) -> Iterator[tuple[dict, Baseline]]:  # fmt: skip
    """Fit every combination of `grid`, one at a time."""
    for values in itertools.product(*grid.values()):
        settings = dict(zip(grid, values, strict=True))
        yield settings, fit(train, **settings)


def _train_matrix(train_sequences: pd.DataFrame, item_features: pd.DataFrame) -> sp.csr_matrix:  # fmt: skip
    """The binary users x items training matrix every classic baseline fits on."""
    return interaction_matrix(train_sequences["item_ids"].tolist(), len(item_features))


def _kept(
    chosen: tuple[Baseline, dict] | Baseline,
    train_sequences: pd.DataFrame,
    item_features: pd.DataFrame,
) -> Any:
    """The model a node keeps (alone or with its grid record), with its own catalogue:
    the items, their training counts, and what data and settings it was fitted on."""
    model = chosen[0] if isinstance(chosen, tuple) else chosen
    items = ItemCatalogue.from_features(item_features)
    model.catalogue = replace(
        items,
        counts=item_counts(train_sequences, len(items.original_ids)),
        trained_on=trained_on(
            items.original_ids,
            train_sequences,
            {"kind": model.kind, **model.config},
            model.kind,
        ),  # fmt: skip
    )
    return chosen


def fit_most_popular(
    train_sequences: pd.DataFrame, item_features: pd.DataFrame
) -> Baseline:
    model = MostPopular.fit(_train_matrix(train_sequences, item_features))
    return _kept(model, train_sequences, item_features)


def fit_item_knn(
    train_sequences: pd.DataFrame,
    valid_targets: pd.DataFrame,
    item_features: pd.DataFrame,
    params: BaselineParams,
    training: TrainingParams,
) -> tuple[Baseline, dict]:
    train = _train_matrix(train_sequences, item_features)

    def candidates() -> Iterator[
        tuple[dict, Baseline]
    ]:  # the grid fits when first asked
        models = ItemKNN.fit_grid(train, params.item_knn_neighbours, params.item_knn_shrink)  # fmt: skip
        for (neighbours, shrink), model in models.items():
            yield {"neighbours": neighbours, "shrink": shrink}, model

    chosen = _grid_search("item_knn", candidates(), valid_targets, training.scoring_batch_size)  # fmt: skip
    return _kept(chosen, train_sequences, item_features)


def fit_ease(
    train_sequences: pd.DataFrame,
    valid_targets: pd.DataFrame,
    item_features: pd.DataFrame,
    params: BaselineParams,
    training: TrainingParams,
) -> tuple[Baseline, dict]:
    reason = dense_skip_reason(len(item_features), params.max_dense_items)
    if reason:
        logger.warning("EASE skipped: %s", reason)
        skipped = Skipped(
            len(item_features), config={"model": "ease", "reason": reason}
        )
        return skipped, {"model": "ease", "skipped": reason}
    train = _train_matrix(train_sequences, item_features)
    chosen = _grid_search("ease", _each(EASE.fit, train, {"l2": params.ease_l2}), valid_targets, training.scoring_batch_size)  # fmt: skip
    return _kept(chosen, train_sequences, item_features)


def fit_matrix_factorization(
    train_sequences: pd.DataFrame,
    valid_targets: pd.DataFrame,
    item_features: pd.DataFrame,
    params: BaselineParams,
    training: TrainingParams,
) -> tuple[Baseline, dict]:
    train = _train_matrix(train_sequences, item_features)
    grid = {"factors": params.mf_factors, "l2": params.mf_l2, "alpha": params.mf_alpha,
            "iterations": [params.mf_iterations], "seed": [params.seed]}  # fmt: skip
    chosen = _grid_search("mf_als", _each(MatrixFactorization.fit, train, grid), valid_targets, training.scoring_batch_size)  # fmt: skip
    return _kept(chosen, train_sequences, item_features)


def _content(item_features: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Release years (N + 1,) and genre flags (N + 1, G) by model item id (row 0: padding)."""
    features = item_features.sort_values("item_id")
    genre_columns = [c for c in features.columns if c.startswith("genre_")]
    years = np.concatenate([[0.0], features["year"].astype("float64").fillna(0).to_numpy()])  # fmt: skip
    genres = np.zeros((len(features) + 1, len(genre_columns)), dtype=np.float32)
    genres[1:] = features[genre_columns].to_numpy(dtype=np.float32)
    return years, genres


def fit_newest_first(
    train_sequences: pd.DataFrame, item_features: pd.DataFrame
) -> Baseline:
    """Newest films first, from their release year alone (no interaction is read)."""
    years, _ = _content(item_features)
    return _kept(NewestFirst.fit(years), train_sequences, item_features)


def fit_genre_recency(
    train_sequences: pd.DataFrame, item_features: pd.DataFrame
) -> Baseline:
    """Genre match with the user's history x newness, from content alone."""
    years, genres = _content(item_features)
    return _kept(GenreRecency.fit(genres, years), train_sequences, item_features)


def fit_random(
    train_sequences: pd.DataFrame, item_features: pd.DataFrame, params: BaselineParams
) -> Baseline:
    """Chance, seeded by `baselines.seed`."""
    return _kept(RandomScores.fit(len(item_features), params.seed), train_sequences, item_features)  # fmt: skip


def fit_new_items(
    train_sequences: pd.DataFrame, item_features: pd.DataFrame, params: BaselineParams
) -> NewItems:
    """The mixture that scores films without training events from content
    (`maskrec.models.new_items`), fitted on a simulated hold-out of the training data.
    Catalogue position is the release's own id order (MovieLens numbers films as it adds
    them), scaled 0..1."""
    years, genres = _content(item_features)
    original = item_features.sort_values("item_id")["original_item_id"].to_numpy()
    position = np.zeros(len(years), dtype=np.float32)
    position[1:] = np.argsort(np.argsort(original, kind="stable")) / max(len(original) - 1, 1)  # fmt: skip
    settings = params.new_items
    sequences = train_sequences["item_ids"].tolist()
    contexts, targets = simulated_targets(sequences, settings.targets_per_user)
    model = NewItems.fit(
        sequences, train_sequences["timestamps"].tolist(),
        right_aligned(contexts, max(settings.recent, settings.profile)), targets,
        years, genres, position, fraction=settings.fraction, recent=settings.recent,
        profile=settings.profile, l2=settings.l2,
        genre_names=[c.removeprefix("genre_") for c in item_features.columns if c.startswith("genre_")],
    )  # fmt: skip
    logger.info(
        "new-film mixture fitted on %d simulated targets (%d of them held-out films)",
        model.config["examples"], model.config["new_targets"],
    )  # fmt: skip
    return _kept(model, train_sequences, item_features)


def collect_baseline_selection(*selections: dict) -> list[dict]:
    """The grid-search record of every baseline, for the report."""
    return list(selections)


train_target_sasrec = named(train_sasrec, "sasrec")
