"""Ranking metrics from target ranks, and the statistics that compare models on them
(rating errors use the same statistics).

A rank is 0-based: the number of items scored strictly higher than the target once the
user's already-seen items are excluded (`scoring.target_ranks`).

Statistics are scipy's, with memory bounded by the number of users:
- intervals: percentile bootstrap of the mean, resampling users (`scipy.stats.bootstrap`),
  several metrics at once with the same resamples;
- p-values: a paired sign-flip permutation test of "zero mean difference"
  (`scipy.stats.permutation_test`), two-sided;
- multiple comparisons: Benjamini-Hochberg false-discovery-rate adjustment across the
  comparisons reported together (`scipy.stats.false_discovery_control`).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse, stats

KS = (5, 10, 20)
# Resamples are drawn in batches of at most this many values (8 MiB of float64; scipy
# makes a few arrays of that size per batch), so the memory of an interval or a test grows
# with the number of users, not with users x resamples (200,000 users x 1,000 resamples
# would be 1.6 GB at once). 2^20 was faster than 2^22 and 2^18 for 1,000 users.
BATCH_ELEMENTS = 1 << 20


def ranking_metrics(ranks: np.ndarray, k: int) -> dict[str, np.ndarray]:
    """Per-user HR@k, NDCG@k, MRR@k for one target per user (Recall@k equals HR@k then)."""
    ranks = np.asarray(ranks)
    hit = ranks < k
    return {
        f"hr@{k}": hit.astype(float),
        f"ndcg@{k}": np.where(hit, 1.0 / np.log2(ranks + 2.0), 0.0),
        f"mrr@{k}": np.where(hit, 1.0 / (ranks + 1.0), 0.0),
    }


def window_metrics(top: np.ndarray, targets: list[np.ndarray], k: int) -> dict[str, np.ndarray]:  # fmt: skip
    """Per-user metrics when every later event is a target (the future-window protocol):
    `top` holds each user's ranked list (users x at least k item ids, seen items already
    excluded), `targets` each user's set of relevant items (at least one). Binary relevance:
    Recall@k = hits / |T|; NDCG@k = DCG / the DCG of min(|T|, k) hits first; MAP@k = the
    mean over the first k positions of precision at each hit, over min(|T|, k) (RecBole's
    and RePlay's normalisation); HR@k: any hit; MRR@k: 1 / the first hit's position."""
    sizes = np.fromiter(map(len, targets), dtype=np.int64, count=len(targets))
    # one membership test for every user: (user, item) pairs as single integer keys
    span = int(max(top.max(initial=0), max((t.max() for t in targets if len(t)), default=0))) + 1  # fmt: skip
    users = np.arange(len(top), dtype=np.int64)
    wanted = np.concatenate([*targets, np.zeros(0, np.int64)]).astype(np.int64) + np.repeat(users, sizes) * span  # fmt: skip
    relevant = np.zeros((len(top), k), dtype=bool)
    listed = top[:, :k]  # (a catalogue under k items lists fewer)
    relevant[:, : listed.shape[1]] = np.isin(listed.astype(np.int64) + users[:, None] * span, wanted)  # fmt: skip
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = np.cumsum(discounts)[np.minimum(sizes, k).astype(int) - 1]
    hits = relevant.cumsum(axis=1)
    first = np.where(relevant.any(axis=1), relevant.argmax(axis=1), -1)
    return {
        f"hr@{k}": relevant.any(axis=1).astype(float),
        f"recall@{k}": hits[:, -1] / sizes,
        f"ndcg@{k}": (relevant * discounts).sum(axis=1) / ideal,
        f"map@{k}": (relevant * hits / np.arange(1, k + 1)).sum(axis=1)
        / np.minimum(sizes, k),  # fmt: skip
        f"mrr@{k}": np.where(first >= 0, 1.0 / (first + 1.0), 0.0),
    }


def mean_metrics(ranks: np.ndarray, k: int = 10) -> dict[str, float]:
    """The mean of each `ranking_metrics` column (what validation reports per epoch)."""
    return {name: float(v.mean()) for name, v in ranking_metrics(ranks, k).items()}


def intra_list_diversity(top: np.ndarray, features: np.ndarray) -> np.ndarray:
    """Per user, the mean cosine distance between the content vectors (genre multi-hot
    rows of `features`, indexed by item id) of every pair of items in the user's list
    (`top`: users x k item ids). An item without any genre is at distance 1 from every
    other: nothing says they are alike. 0: every item has the same genres."""
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    unit = np.divide(
        features, norms, out=np.zeros_like(features, dtype=float), where=norms > 0
    )
    k = top.shape[1]
    if k < 2:
        return np.full(len(top), np.nan)
    out = np.empty(len(top))
    for start in range(
        0, len(top), 4096
    ):  # users x k x k similarities, bounded in memory
        vectors = unit[top[start : start + 4096]]
        similarity = np.einsum("ukg,ulg->ukl", vectors, vectors)
        off_diagonal = similarity.sum(axis=(1, 2)) - np.einsum("ukk->u", similarity)
        out[start : start + 4096] = 1.0 - off_diagonal / (k * (k - 1))
    return out


def novelty(top: np.ndarray, counts: np.ndarray, users: int) -> np.ndarray:
    """Per user, the mean self-information -log2(p) of the items in the list (`top`: users
    x k item ids), p being the share of the `users` training users who interacted with the
    item (`counts` by item id); an item no training user has is counted as one, the rarest
    an item can be (Microsoft Recommenders' and RePlay's definition, which leave it out)."""
    share = np.maximum(np.asarray(counts, dtype=float), 1.0) / max(users, 1)
    return (-np.log2(share))[top].mean(axis=1)


def coverage_interval(
    top: np.ndarray, n_items: int, samples: int, confidence: float, seed: int
) -> tuple[float, float]:
    """Percentile-bootstrap interval of catalogue coverage (distinct items in the users'
    lists over `n_items`), resampling users. Coverage of a resample can only lose items its
    users lack, so the interval sits at or below the full sample's coverage: it says how
    much coverage depends on which users were evaluated."""
    users = len(top)
    if users < 2:
        value = len(np.unique(top)) / n_items if users else float("nan")
        return value, value
    # items x users: which users list each item (sparse; a product with it is cheap)
    listed_by = sparse.csr_matrix(
        (np.ones(top.size), (top.ravel(), np.repeat(np.arange(users), top.shape[1]))),
        shape=(int(top.max()) + 1, users),
    )
    rng = np.random.default_rng(seed)
    values = np.empty(samples)
    batch = max(
        1, BATCH_ELEMENTS // max(users, listed_by.shape[0])
    )  # picks and product
    for start in range(0, samples, batch):
        size = min(batch, samples - start)
        picks = rng.multinomial(users, np.full(users, 1.0 / users), size=size)
        reached = ((listed_by @ picks.T.astype(np.float64)) > 0).sum(axis=0)
        values[start : start + size] = reached / n_items
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(values, [alpha, 1.0 - alpha])
    return float(low), float(high)


def error_metrics(errors: np.ndarray) -> dict[str, float]:
    """RMSE and MAE of prediction errors (predicted - true), as rating validation and the
    rating protocols report them."""
    errors = np.asarray(errors, dtype=float)
    return {"rmse": float(np.sqrt(np.mean(errors**2))), "mae": float(np.mean(np.abs(errors)))}  # fmt: skip


def bucket_labels(edges: list[int]) -> list[str]:
    """Labels of the history-length buckets whose left edges are `edges`: "1-9", ..., "200+"."""
    return [f"{lo}-{hi - 1}" for lo, hi in zip(edges[:-1], edges[1:], strict=True)] + [f"{edges[-1]}+"]  # fmt: skip


def history_buckets(lengths: pd.Series, edges: list[int]) -> pd.Series:
    """Each user's history-length bucket (`bucket_labels`), the breakdown every summary
    reports (ranking and rating alike)."""
    return pd.cut(lengths, bins=[*edges, np.inf], right=False, labels=bucket_labels(edges))  # fmt: skip


def user_groups(users: pd.DataFrame, sparse_max_history: int) -> dict[str, np.ndarray]:
    """The groups of test users every paired test is reported for (masks over `users`' rows,
    one row per user with is_cold, history_length and, where the split has it, is_cold_item):
    all, sparse warm users, cold-start users, users whose target is a held-out new item."""
    sparse = ~users["is_cold"] & (users["history_length"] <= sparse_max_history)
    return {
        "all": np.ones(len(users), dtype=bool),
        f"history<={sparse_max_history}": sparse.to_numpy(),
        "cold": users["is_cold"].to_numpy(),
        "cold_items": users.get("is_cold_item", pd.Series(False, index=users.index)).to_numpy(),
    }  # fmt: skip


def paired_tests(
    wide: pd.DataFrame,
    pairs: list[tuple[str, str]],
    groups: Mapping[str, np.ndarray],
    metric: str,
    settings: Any,
) -> list[dict[str, Any]]:
    """Each (model, competitor) of `pairs` compared on the same users (`wide`: one row per
    user, one column per model, values of `metric`), within each group of users (boolean
    masks over `wide`'s rows; an empty group is left out), by `paired_comparison`. The
    p-values are not adjusted yet: `with_fdr` adjusts every row reported together. Pairs
    naming a model `wide` lacks are left out. `settings`: bootstrap_samples, permutation_resamples,
    confidence and seed (`params.EvaluationParams`)."""
    tests = []
    for model, competitor in pairs:
        if model not in wide or competitor not in wide:
            continue
        for group, mask in groups.items():
            both = wide.loc[np.asarray(mask, dtype=bool), [model, competitor]].dropna()
            if not len(both):  # e.g. no cold-start users or items in this split
                continue
            result = paired_comparison(
                both[model].to_numpy(), both[competitor].to_numpy(), settings.bootstrap_samples,
                settings.permutation_resamples, settings.confidence, settings.seed,
            )  # fmt: skip
            tests.append({"model": model, "competitor": competitor, "group": group, "metric": metric, **result})  # fmt: skip
    return tests


def per_user_tests(per_user: pd.DataFrame, pairs: list[tuple[str, str]], settings: Any, metric: str = "ndcg@10") -> list[dict[str, Any]]:  # fmt: skip
    """`paired_tests` of `metric` from an evaluation's per-user table (one row per model and
    user), within each of `user_groups`; `settings` also gives sparse_user_max_history."""
    wide = per_user.pivot(index="user_id", columns="model", values=metric)
    users = per_user.drop_duplicates("user_id").set_index("user_id").loc[wide.index]
    groups = user_groups(users, settings.sparse_user_max_history)
    return paired_tests(wide, pairs, groups, metric, settings)


def with_fdr(tests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`tests` with `p_adjusted`: Benjamini-Hochberg over every row given together."""
    adjusted = fdr_adjust([t["p_value"] for t in tests])
    return [{**t, "p_adjusted": p} for t, p in zip(tests, adjusted, strict=True)]


def _batch(rows: int) -> int:
    return max(1, BATCH_ELEMENTS // max(rows, 1))


def bootstrap_intervals(
    values: np.ndarray, samples: int, confidence: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile-bootstrap intervals of the mean of each row of `values` (metrics x
    users), every row resampled with the same users. Rows with fewer than two users get
    (mean, mean) for one user and NaN for none: there is nothing to resample."""
    values = np.atleast_2d(np.asarray(values, dtype=float))
    metrics, users = values.shape
    if users < 2:
        mean = values.mean(axis=1) if users else np.full(metrics, np.nan)
        return mean, mean.copy()
    with warnings.catch_warnings():
        # A metric that is constant over users (e.g. no hit at all) has a degenerate
        # interval; scipy warns, the percentile interval is still the right answer.
        warnings.simplefilter("ignore", stats.DegenerateDataWarning)
        result = stats.bootstrap(
            (values,),
            np.mean,
            n_resamples=samples,
            confidence_level=confidence,
            method="percentile",
            axis=-1,
            vectorized=True,
            batch=_batch(metrics * users),
            rng=np.random.default_rng(seed),
        )
    return result.confidence_interval.low, result.confidence_interval.high


def ratio_intervals(
    numerators: np.ndarray,
    denominators: np.ndarray,
    samples: int,
    confidence: float,
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile-bootstrap intervals of sum(numerators) / sum(denominators) for each row
    (metrics x users), resampling users: a mean over ratings when users hold different
    numbers of them (each user's squared errors summed, over each user's count)."""
    numerators = np.atleast_2d(np.asarray(numerators, dtype=float))
    denominators = np.broadcast_to(
        np.asarray(denominators, dtype=float), numerators.shape
    )
    users = numerators.shape[1]
    if users < 2:
        value = numerators.sum(axis=1) / denominators.sum(axis=1) if users else np.full(len(numerators), np.nan)  # fmt: skip
        return value, value.copy()

    def ratio(top: np.ndarray, bottom: np.ndarray, axis: int = -1) -> np.ndarray:
        return top.sum(axis=axis) / bottom.sum(axis=axis)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stats.DegenerateDataWarning)
        result = stats.bootstrap(
            (numerators, np.ascontiguousarray(denominators)),
            ratio,
            n_resamples=samples,
            confidence_level=confidence,
            method="percentile",
            axis=-1,
            paired=True,
            vectorized=True,
            batch=_batch(numerators.size),
            rng=np.random.default_rng(seed),
        )
    return result.confidence_interval.low, result.confidence_interval.high


def sign_flip_p_value(differences: np.ndarray, resamples: int, seed: int) -> float:
    """Two-sided p-value of "the mean paired difference is zero": each user's difference
    keeps its size and gets a random sign (`permutation_type='samples'` on one sample).
    With at most log2(resamples) users scipy enumerates every sign pattern (exact)."""
    differences = np.asarray(differences, dtype=float)
    if not len(differences):
        return float("nan")
    if not np.any(differences):
        return 1.0
    result = stats.permutation_test(
        (differences,),
        np.mean,
        permutation_type="samples",
        n_resamples=resamples,
        alternative="two-sided",
        vectorized=True,
        batch=_batch(len(differences)),
        rng=np.random.default_rng(seed),
    )
    return float(result.pvalue)


def paired_comparison(
    a: np.ndarray,
    b: np.ndarray,
    samples: int,
    resamples: int,
    confidence: float,
    seed: int,
) -> dict[str, float]:
    """Mean of a - b over the same users, its bootstrap interval and the sign-flip
    permutation p-value (not yet adjusted for multiple comparisons)."""
    diff = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    low, high = bootstrap_intervals(diff, samples, confidence, seed)
    return {
        "users": int(len(diff)),
        "mean_difference": float(diff.mean()) if len(diff) else float("nan"),
        "ci_low": float(low[0]),
        "ci_high": float(high[0]),
        "p_value": sign_flip_p_value(diff, resamples, seed),
    }


def t_interval(values: list[float], confidence: float = 0.95) -> list[float] | None:
    """Student's t interval of the mean of `values` (one per seed: seeds, not users, are
    the replicates); None for a single value."""
    if len(values) < 2:
        return None
    mean = float(np.mean(values))
    half = float(stats.t.ppf((1 + confidence) / 2, len(values) - 1) * np.std(values, ddof=1) / np.sqrt(len(values)))  # fmt: skip
    return [mean - half, mean + half]


def fdr_adjust(p_values: list[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values; NaN (a comparison with no users) stays NaN
    and does not count as a comparison."""
    p = np.asarray(p_values, dtype=float)
    adjusted = np.full_like(p, np.nan)
    finite = np.isfinite(p)
    if finite.any():
        adjusted[finite] = stats.false_discovery_control(p[finite], method="bh")
    return adjusted.tolist()
