"""The classic rating predictors, fitted and asked for test ratings: the global mean, user
and item biases, SVD, SVD++ and the k-NN baseline (a neighbourhood model on the biases'
residuals, Koren 2010: item-item with Pearson-baseline similarity as configured).

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

KINDS = ("global_mean", "biases", "svd", "svdpp", "knn_baseline")
# the order `fit_predict_many` starts fits in, the slowest first (ML-100K, one fold of
# 80,000 ratings: SVD++ 12 s, k-NN baseline 3.4 s, SVD 0.9 s, biases 0.3 s), so that no
# core is left with a long fit after the others are done
_SLOWEST_FIRST = ("svdpp", "knn_baseline", "svd", "biases", "global_mean")
# the k-NN baseline keeps a dense similarity matrix over users or items (8 bytes a pair):
# refused above this, before it is fitted, rather than taking the machine's memory
SIMILARITY_LIMIT_BYTES = 4 * 2**30
# Surprise's arguments this project sets itself (the seed) or that change nothing measured
_NOT_SETTINGS = {"self", "random_state", "verbose", "cache_ratings"}
_SIM_OPTIONS = ("name", "user_based", "min_support", "shrinkage")
_SIMILARITIES = ("cosine", "msd", "pearson", "pearson_baseline")


def check_settings(kind: str, settings: dict[str, Any], where: str) -> None:
    """Refuse an argument Surprise's `kind` model does not take, naming the parameter
    (`where`: its place in the parameters), before anything is fitted."""
    from surprise import SVD, KNNBaseline, SVDpp

    algorithm = {"svd": SVD, "svdpp": SVDpp, "knn_baseline": KNNBaseline}.get(kind)
    if algorithm is None:
        return
    arguments = set(inspect.signature(algorithm.__init__).parameters)
    known = arguments - _NOT_SETTINGS - {"kwargs"}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise ValueError(f"{where}.{unknown[0]}: not an argument of Surprise's {algorithm.__name__} (one of {', '.join(sorted(known))})")  # fmt: skip
    similarity = settings.get("sim_options", {})
    unknown = sorted(set(similarity) - set(_SIM_OPTIONS))
    if unknown:
        raise ValueError(f"{where}.sim_options.{unknown[0]}: not one of Surprise's similarity options ({', '.join(_SIM_OPTIONS)})")  # fmt: skip
    if similarity.get("name", "msd") not in _SIMILARITIES:
        raise ValueError(f"{where}.sim_options.name: {similarity['name']!r} is not one of Surprise's similarities ({', '.join(_SIMILARITIES)})")  # fmt: skip


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
    from surprise import SVD, BaselineOnly, Dataset, KNNBaseline, Reader, SVDpp

    if kind == "knn_baseline":
        check_similarity_size(train, settings)
    algorithm = {
        "biases": lambda: BaselineOnly(
            bsl_options={"method": "als", **settings}, verbose=False
        ),  # fmt: skip
        "svd": lambda: SVD(random_state=seed, **settings),
        "svdpp": lambda: SVDpp(random_state=seed, **settings),
        "knn_baseline": lambda: KNNBaseline(verbose=False, **settings),
    }[kind]()
    data = Dataset.load_from_df(train[["user_id", "item_id", "rating"]], Reader(rating_scale=scale))  # fmt: skip
    algorithm.fit(data.build_full_trainset())
    return np.fromiter(
        (algorithm.predict(u, i).est for u, i in zip(test["user_id"], test["item_id"], strict=True)),
        dtype=float, count=len(test),
    )  # fmt: skip


def fit_predict_many(
    fits: list[tuple[str, pd.DataFrame, pd.DataFrame, dict[str, Any]]],
    seed: int,
    jobs: int,
) -> list[np.ndarray]:
    """`fit_predict` for each (kind, train, test, settings) of `fits`, in `jobs` processes
    (joblib; -1: one per core), the results in `fits`' order. Surprise fits one model on
    one core, so a fold's fits run side by side; each is seeded, so the predictions do not
    depend on `jobs`."""
    from joblib import Parallel, delayed

    order = sorted(range(len(fits)), key=lambda n: _SLOWEST_FIRST.index(fits[n][0]) if fits[n][0] in _SLOWEST_FIRST else -1)  # fmt: skip
    done = Parallel(n_jobs=jobs, batch_size=1)(
        delayed(fit_predict)(*fits[n], seed) for n in order
    )
    results: list[np.ndarray] = [np.empty(0)] * len(fits)
    for n, predicted in zip(order, done, strict=True):
        results[n] = predicted
    return results


def check_similarity_size(train: pd.DataFrame, settings: dict[str, Any]) -> None:
    """Refuse a k-NN baseline (`settings`) whose similarity matrix over `train`'s users or
    items would not fit in memory."""
    kind = "user" if settings.get("sim_options", {}).get("user_based", True) else "item"
    count = train[f"{kind}_id"].nunique()
    size = count**2 * 8
    if size > SIMILARITY_LIMIT_BYTES:
        raise ValueError(
            f"ratings.knn_baseline: a {kind}-{kind} similarity matrix over {count:,} {kind}s takes "
            f"{size / 2**30:.1f} GiB (limit {SIMILARITY_LIMIT_BYTES / 2**30:.0f} GiB): leave knn_baseline "
            "out of ratings.classic_models and ratings.blend on data this large"
        )
