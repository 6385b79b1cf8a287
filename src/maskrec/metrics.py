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
