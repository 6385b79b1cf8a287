"""Classic baselines, fitted on the training sequences only; grids chosen on validation."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable

import pandas as pd

from maskrec.evaluation import rank_and_recommend
from maskrec.metrics import ranking_metrics
from maskrec.models.baselines import (
    EASE,
    Baseline,
    ItemKNN,
    MatrixFactorization,
    MostPopular,
    interaction_matrix,
)
from maskrec.models.sequence import SequenceRecModel
from maskrec.params import BaselineParams, ModelParams, SASRecParams
from maskrec.training.data import eval_set, training_windows
from maskrec.training.loop import fit
from maskrec.training.objectives import CausalObjective

logger = logging.getLogger(__name__)


def _grid_search(
    name: str,
    fit: Callable[..., Baseline],
    grid: dict[str, list],
    valid_targets: pd.DataFrame,
) -> tuple[Baseline, dict]:
    data = eval_set(valid_targets, length=1)
    trials = []
    best: tuple[float, Baseline | None] = (-1.0, None)
    for values in itertools.product(*grid.values()):
        settings = dict(zip(grid, values, strict=True))
        model = fit(**settings)
        ranks, _ = rank_and_recommend(model, data)
        ndcg = float(ranking_metrics(ranks, 10)["ndcg@10"].mean())
        trials.append({**settings, "valid_ndcg@10": ndcg})
        logger.info("%s %s: valid NDCG@10 %.4f", name, settings, ndcg)
        if ndcg > best[0]:
            best = (ndcg, model)
    return best[1], {
        "model": name,
        "chosen": best[1].config,
        "valid_ndcg@10": best[0],
        "trials": trials,
    }


def _check_size(n_items: int, params: BaselineParams, name: str) -> None:
    if n_items > params.max_dense_items:
        raise ValueError(
            f"{name} needs a {n_items} x {n_items} matrix; baselines.max_dense_items is "
            f"{params.max_dense_items}. Raise it if the memory is there ({n_items**2 * 4 / 2**30:.1f} GiB)."
        )


def _train_matrix(train_sequences: pd.DataFrame, item_features: pd.DataFrame):
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
    _check_size(len(item_features), params, "ItemKNN")
    train = _train_matrix(train_sequences, item_features)
    grid = {"neighbours": params.item_knn_neighbours, "shrink": params.item_knn_shrink}
    return _grid_search(
        "item_knn", lambda **kw: ItemKNN.fit(train, **kw), grid, valid_targets
    )


def fit_ease(
    train_sequences: pd.DataFrame,
    valid_targets: pd.DataFrame,
    item_features: pd.DataFrame,
    params: BaselineParams,
) -> tuple[Baseline, dict]:
    _check_size(len(item_features), params, "EASE")
    train = _train_matrix(train_sequences, item_features)
    return _grid_search(
        "ease",
        lambda **kw: EASE.fit(train, **kw),
        {"l2": params.ease_l2},
        valid_targets,
    )


def fit_matrix_factorization(
    train_sequences: pd.DataFrame,
    valid_targets: pd.DataFrame,
    item_features: pd.DataFrame,
    params: BaselineParams,
) -> tuple[Baseline, dict]:
    train = _train_matrix(train_sequences, item_features)
    grid = {"factors": params.mf_factors, "l2": params.mf_l2}

    def fit(**kw):
        return MatrixFactorization.fit(
            train, iterations=params.mf_iterations, seed=params.seed, **kw
        )

    return _grid_search("mf_als", fit, grid, valid_targets)


def collect_baseline_selection(*selections: dict) -> list[dict]:
    """The grid-search record of every baseline, for the report."""
    return list(selections)


def train_sasrec(
    item_features: pd.DataFrame,
    train_sequences: pd.DataFrame,
    valid_targets: pd.DataFrame,
    model_params: ModelParams,
    params: SASRecParams,
) -> tuple[SequenceRecModel, pd.DataFrame]:
    """SASRec from scratch: the shared architecture made causal, next-item targets at every
    position, early-stopped on validation NDCG@10 like every other model."""
    import torch

    from maskrec.pipelines.pretraining.nodes import history_frame, model_config

    if model_params.hidden_size % params.num_heads:
        raise ValueError(
            f"sasrec.num_heads ({params.num_heads}) must divide model.hidden_size ({model_params.hidden_size})"
        )
    torch.manual_seed(model_params.seed)
    model = SequenceRecModel(model_config(
        item_features, model_params, causal=True, num_heads=params.num_heads,
        hidden_dropout=params.hidden_dropout, attention_dropout=params.attention_dropout,
    ))  # fmt: skip
    length = model.config.max_len
    model, history = fit(
        model, CausalObjective(), training_windows(train_sequences["item_ids"].tolist(), length + 1),
        eval_set(valid_targets, length), params, name="sasrec",
    )  # fmt: skip
    return model, history_frame(history, "sasrec")
