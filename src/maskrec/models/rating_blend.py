"""A linear blend of rating predictors, its weights fitted on held-out ratings.

The Netflix Prize's lesson (Koren, "The BellKor Solution to the Netflix Grand Prize",
2009; Töscher et al., "The BigChaos Solution", 2009): models of different kinds err
differently, and a linear combination of their predictions, fitted by least squares on
ratings none of them trained on (the "probe" set), errs less than any of them. The members
are then used as trained on all their data; only the weights come from the probe fits.
Here the probe is each fold's validation ratings (what the rating heads stop on). The
members' predictions are nearly collinear and a probe can be small (the next rating's 943),
so the least squares carry a ridge penalty, chosen per blend among the given ones by
leave-one-out error on the probe itself (scikit-learn's RidgeCV, its closed-form
leave-one-out): as the BellKor and BigChaos blends regularised theirs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.linear_model import RidgeCV


def fit_blend(
    predictions: dict[str, np.ndarray],
    ratings: np.ndarray,
    penalties: list[float],
) -> dict[str, Any]:
    """An intercept and one weight per member (the keys of `predictions`, each member's
    predictions of the same held-out `ratings`): ridge regression, its penalty the one of
    `penalties` with the lowest leave-one-out squared error on `ratings` (one value: that
    penalty). The intercept is not penalised."""
    names = list(predictions)
    if len(names) < 2:
        raise ValueError(f"a blend needs two members or more, got {names}")
    columns = np.column_stack([np.asarray(predictions[n], dtype=float) for n in names])
    if len(ratings) <= len(names) + 1:
        raise ValueError(f"{len(ratings)} held-out ratings cannot fit a blend of {len(names)} models and an intercept")  # fmt: skip
    fitted = RidgeCV(alphas=np.asarray(penalties, dtype=float)).fit(columns, np.asarray(ratings, dtype=float))  # fmt: skip
    return {"intercept": float(fitted.intercept_), "penalty": float(fitted.alpha_),
            "weights": {n: float(w) for n, w in zip(names, fitted.coef_, strict=True)}}  # fmt: skip


def blend(weights: dict[str, Any], predictions: dict[str, np.ndarray], scale: tuple[float, float]) -> np.ndarray:  # fmt: skip
    """The blend's predictions from its members' (`predictions`, every member of
    `weights` present), clipped to the rating `scale` as the members' are."""
    missing = sorted(set(weights["weights"]) - set(predictions))
    if missing:
        raise ValueError(f"the blend's member {missing[0]!r} has no predictions")
    total = weights["intercept"] + sum(w * np.asarray(predictions[n], dtype=float) for n, w in weights["weights"].items())  # fmt: skip
    return np.clip(total, *scale)
