"""The classic rating predictors, fitted and asked for test ratings: the global mean, user
and item biases, SVD and SVD++.

All but the global mean are scikit-surprise's (Hug, JOSS 2020), the library whose
benchmark table is the usual reference for these numbers (ML-100K 5-fold RMSE: biases
0.944, SVD 0.934, SVD++ 0.919): the same code, so a difference from that table is the
protocol's, not the implementation's. Each model's settings come from the `ratings`
parameter group; Surprise's defaults are its published settings.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import pandas as pd

KINDS = ("global_mean", "biases", "svd", "svdpp")
# Surprise's arguments this project sets itself (the seed) or that change nothing measured
_NOT_SETTINGS = {"self", "random_state", "verbose", "cache_ratings"}


def check_settings(kind: str, settings: dict[str, Any], where: str) -> None:
    """Refuse an argument Surprise's `kind` model does not take, naming the parameter
    (`where`: its place in the parameters), before anything is fitted."""
    from surprise import SVD, SVDpp

    algorithm = {"svd": SVD, "svdpp": SVDpp}.get(kind)
    if algorithm is None:
        return
    known = set(inspect.signature(algorithm.__init__).parameters) - _NOT_SETTINGS
    unknown = sorted(set(settings) - known)
    if unknown:
        raise ValueError(f"{where}.{unknown[0]}: not an argument of Surprise's {algorithm.__name__} (one of {', '.join(sorted(known))})")  # fmt: skip


def fit_predict(
    kind: str,
    train: pd.DataFrame,
    test: pd.DataFrame,
    settings: dict[str, Any],
    seed: int,
) -> np.ndarray:
    """Fit `kind` on `train` (user_id, item_id, rating) and predict `test`'s ratings,
    clipped to the training ratings' range as Surprise does."""
    if kind not in KINDS:
        raise ValueError(f"unknown rating model {kind!r}; known: {list(KINDS)}")
    scale = (float(train["rating"].min()), float(train["rating"].max()))
    if kind == "global_mean":
        return np.full(len(test), float(train["rating"].mean()))
    from surprise import SVD, BaselineOnly, Dataset, Reader, SVDpp

    algorithm = {
        "biases": lambda: BaselineOnly(
            bsl_options={"method": "als", **settings}, verbose=False
        ),  # fmt: skip
        "svd": lambda: SVD(random_state=seed, **settings),
        "svdpp": lambda: SVDpp(random_state=seed, **settings),
    }[kind]()
    data = Dataset.load_from_df(train[["user_id", "item_id", "rating"]], Reader(rating_scale=scale))  # fmt: skip
    algorithm.fit(data.build_full_trainset())
    return np.fromiter(
        (algorithm.predict(u, i).est for u, i in zip(test["user_id"], test["item_id"], strict=True)),
        dtype=float, count=len(test),
    )  # fmt: skip
