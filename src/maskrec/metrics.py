"""Ranking metrics from target ranks, and the batched full-catalogue ranking that feeds them.

A rank is 0-based: the number of items scored strictly higher than the target after the
user's already-seen items are excluded (ties resolved in the target's favour, as RecBole
and most peers do; models with continuous scores almost never tie).
"""

from __future__ import annotations

import numpy as np
import torch

KS = (5, 10, 20)


def ranking_metrics(ranks: np.ndarray, k: int) -> dict[str, np.ndarray]:
    """Per-user HR@k, NDCG@k, MRR@k for one target per user (Recall@k equals HR@k then)."""
    ranks = np.asarray(ranks)
    hit = ranks < k
    return {
        f"hr@{k}": hit.astype(float),
        f"ndcg@{k}": np.where(hit, 1.0 / np.log2(ranks + 2.0), 0.0),
        f"mrr@{k}": np.where(hit, 1.0 / (ranks + 1.0), 0.0),
    }


def target_ranks(
    scores: torch.Tensor,
    targets: torch.Tensor,
    seen_rows: torch.Tensor,
    seen_items: torch.Tensor,
) -> torch.Tensor:
    """Ranks of `targets` in `scores` (B, N + 1) with seen items excluded.

    The target itself is never excluded, even if it occurs in the context (possible with
    repeated consumption), so every user keeps a well-defined rank.
    """
    scores = scores.clone()
    target_scores = scores.gather(1, targets[:, None])
    scores[seen_rows, seen_items] = -torch.inf
    scores[:, 0] = -torch.inf
    scores.scatter_(1, targets[:, None], target_scores)
    return (scores > target_scores).sum(dim=1)


def bootstrap_interval(
    values: np.ndarray, samples: int, confidence: float, seed: int
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean (resampling users)."""
    values = np.asarray(values, dtype=float)
    if len(values) == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(samples, len(values)))].mean(
        axis=1
    )
    tail = (1 - confidence) / 2
    return float(np.quantile(means, tail)), float(np.quantile(means, 1 - tail))


def paired_test(
    a: np.ndarray, b: np.ndarray, samples: int, confidence: float, seed: int
) -> dict[str, float]:
    """Mean difference a - b over the same users, its bootstrap interval, a two-sided
    paired bootstrap p-value and the Wilcoxon signed-rank p-value."""
    from scipy.stats import wilcoxon

    diff = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    if len(diff) == 0:
        return {"users": 0, "mean_difference": float("nan"), "ci_low": float("nan"), "ci_high": float("nan"),
                "p_bootstrap": float("nan"), "p_wilcoxon": float("nan")}  # fmt: skip
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, len(diff), size=(samples, len(diff)))].mean(axis=1)
    tail = (1 - confidence) / 2
    # Two-sided: how often the resampled mean falls on the other side of zero.
    p_boot = min(1.0, 2 * min((means <= 0).mean(), (means >= 0).mean()))
    p_wilcoxon = float(wilcoxon(diff).pvalue) if np.any(diff != 0) else 1.0
    return {
        "users": int(len(diff)),
        "mean_difference": float(diff.mean()),
        "ci_low": float(np.quantile(means, tail)),
        "ci_high": float(np.quantile(means, 1 - tail)),
        "p_bootstrap": float(p_boot),
        "p_wilcoxon": p_wilcoxon,
    }
