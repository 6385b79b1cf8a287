"""Classic baselines and SASRec, fitted on the training sequences only; the classic ones'
grids are chosen on validation NDCG@10."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable

import pandas as pd
import scipy.sparse as sp

from maskrec.evaluation import rank
from maskrec.metrics import mean_metrics
from maskrec.models.baselines import (
    EASE,
    Baseline,
    ItemKNN,
    MatrixFactorization,
    MostPopular,
    Skipped,
    interaction_matrix,
)
from maskrec.params import BaselineParams
from maskrec.training.data import eval_set
from maskrec.training.stages import named, train_sasrec

logger = logging.getLogger(__name__)


def _grid_search(
    name: str,
    fit: Callable[..., Baseline],
    train: sp.csr_matrix,
    grid: dict[str, list],
    valid_targets: pd.DataFrame,
) -> tuple[Baseline, dict]:
    """Fit every combination of `grid` and keep the best by validation NDCG@10."""
    valid = eval_set(valid_targets, length=1)
    trials, best = [], (-1.0, None)
    for values in itertools.product(*grid.values()):
        settings = dict(zip(grid, values, strict=True))
        model = fit(train, **settings)
        ndcg = mean_metrics(rank(model, valid).ranks)["ndcg@10"]
        trials.append({**settings, "valid_ndcg@10": ndcg})
        logger.info("%s %s: valid NDCG@10 %.4f", name, settings, ndcg)
        if ndcg > best[0]:
            best = (ndcg, model)
    selection = {"model": name, "chosen": best[1].config, "valid_ndcg@10": best[0], "trials": trials}  # fmt: skip
    return best[1], selection


def dense_skip_reason(n_items: int, params: BaselineParams) -> str | None:
    """Why a model with a dense items x items matrix (EASE) is skipped for a catalogue of
    `n_items`, or None when it fits under `baselines.max_dense_items`. The run-start hook
    asks the same question of the raw catalogue, so the skip is announced before any work."""
    if n_items <= params.max_dense_items:
        return None
    gib = 3 * (n_items + 1) ** 2 * 8 / 2**30  # Gram, inverse and weights in float64
    return (
        f"the catalogue has {n_items:,} items, above baselines.max_dense_items="
        f"{params.max_dense_items:,} (its items x items solve needs about {gib:,.0f} GiB); "
        "raise baselines.max_dense_items if the memory is there"
    )


def _train_matrix(train_sequences: pd.DataFrame, item_features: pd.DataFrame) -> sp.csr_matrix:  # fmt: skip
    """The binary users x items training matrix every classic baseline fits on."""
    return interaction_matrix(train_sequences["item_ids"].tolist(), len(item_features))


def fit_most_popular(
    train_sequences: pd.DataFrame, item_features: pd.DataFrame
) -> Baseline:
    return MostPopular.fit(_train_matrix(train_sequences, item_features))


def fit_item_knn(
    train_sequences: pd.DataFrame,
    valid_targets: pd.DataFrame,
    item_features: pd.DataFrame,
    params: BaselineParams,
) -> tuple[Baseline, dict]:
    train = _train_matrix(train_sequences, item_features)
    grid = {"neighbours": params.item_knn_neighbours, "shrink": params.item_knn_shrink}
    return _grid_search("item_knn", ItemKNN.fit, train, grid, valid_targets)


def fit_ease(
    train_sequences: pd.DataFrame,
    valid_targets: pd.DataFrame,
    item_features: pd.DataFrame,
    params: BaselineParams,
) -> tuple[Baseline, dict]:
    reason = dense_skip_reason(len(item_features), params)
    if reason:
        logger.warning("EASE skipped: %s", reason)
        skipped = Skipped(
            len(item_features), config={"model": "ease", "reason": reason}
        )
        return skipped, {"model": "ease", "skipped": reason}
    train = _train_matrix(train_sequences, item_features)
    return _grid_search("ease", EASE.fit, train, {"l2": params.ease_l2}, valid_targets)


def fit_matrix_factorization(
    train_sequences: pd.DataFrame,
    valid_targets: pd.DataFrame,
    item_features: pd.DataFrame,
    params: BaselineParams,
) -> tuple[Baseline, dict]:
    train = _train_matrix(train_sequences, item_features)
    grid = {"factors": params.mf_factors, "l2": params.mf_l2,
            "iterations": [params.mf_iterations], "seed": [params.seed]}  # fmt: skip
    return _grid_search("mf_als", MatrixFactorization.fit, train, grid, valid_targets)


def collect_baseline_selection(*selections: dict) -> list[dict]:
    """The grid-search record of every baseline, for the report."""
    return list(selections)


train_target_sasrec = named(train_sasrec, "sasrec")
