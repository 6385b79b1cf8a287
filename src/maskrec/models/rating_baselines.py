"""The classic rating predictors, fitted and asked for test ratings: the global mean, user
and item biases, SVD and SVD++.

All but the global mean are scikit-surprise's (Hug, JOSS 2020), the library whose
benchmark table is the usual reference for these numbers (ML-100K 5-fold RMSE: biases
0.944, SVD 0.934, SVD++ 0.919): the same code, so a difference from that table is the
protocol's, not the implementation's. Each model's settings come from the `ratings`
parameter group; Surprise's defaults are its published settings.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

KINDS = ("global_mean", "biases", "svd", "svdpp")


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
