"""Rated events as tokens: how the rating head reads a history of (item, rating) pairs."""

from __future__ import annotations

import numpy as np
import torch

# A rated event is one integer, item x RATING_CODES + rating bucket, so that rating windows
# are one LongTensor like item windows: `training_windows`, batching, distributed sharing
# and checkpoint fingerprints then serve the rating objective unchanged.
# Bucket = round(2 x rating): 1..10 for MovieLens' 0.5..5 stars; 0 = no rating shown
# (padding, or a rating the model must predict).
RATING_CODES = 16


def rating_buckets(ratings: np.ndarray) -> np.ndarray:
    """Stars (0.5..5, in halves) as buckets 1..10."""
    buckets = np.rint(np.asarray(ratings, dtype=np.float64) * 2).astype(np.int64)
    if buckets.size and (buckets.min() < 1 or buckets.max() >= RATING_CODES):
        raise ValueError(
            f"ratings must lie in 0.5..{(RATING_CODES - 1) / 2}; got {float(np.min(ratings))}"
            f"..{float(np.max(ratings))}"
        )
    return buckets


def rated_tokens(items: np.ndarray, ratings: np.ndarray) -> np.ndarray:
    """Items (model ids) with their ratings, each as one integer (`RATING_CODES`)."""
    return np.asarray(items, dtype=np.int64) * RATING_CODES + rating_buckets(ratings)


def split_tokens(tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Rated tokens back to (items, rating buckets); padding stays (0, 0)."""
    return tokens // RATING_CODES, tokens % RATING_CODES
