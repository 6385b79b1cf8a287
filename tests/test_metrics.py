from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import ndcg_score

from maskrec.metrics import ranking_metrics
from maskrec.scoring import target_ranks


def test_hand_computed_cases():
    m = ranking_metrics(np.array([0, 1, 4, 10]), k=5)
    assert m["hr@5"].tolist() == [1, 1, 1, 0]
    assert m["ndcg@5"] == pytest.approx([1.0, 1 / np.log2(3), 1 / np.log2(6), 0.0])
    assert m["mrr@5"] == pytest.approx([1.0, 0.5, 0.2, 0.0])


def test_ndcg_matches_sklearn_for_one_relevant_item():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(50, 30))
    targets = rng.integers(1, 30, size=50)
    ranks = target_ranks(
        torch.tensor(scores),
        torch.tensor(targets),
        torch.zeros(0, dtype=torch.long),
        torch.zeros(0, dtype=torch.long),
    ).numpy()
    ours = ranking_metrics(ranks, 10)["ndcg@10"]
    relevance = np.zeros_like(scores)
    relevance[np.arange(50), targets] = 1
    reference = [
        ndcg_score(relevance[i : i + 1, 1:], scores[i : i + 1, 1:], k=10)
        for i in range(50)
    ]
    assert ours == pytest.approx(reference)


def test_ranks_exclude_seen_items_and_padding_but_never_the_target():
    scores = torch.tensor([[9.0, 5.0, 4.0, 3.0, 2.0], [9.0, 1.0, 4.0, 3.0, 2.0]])
    targets = torch.tensor([3, 1])
    seen_rows = torch.tensor([0, 0, 1])
    seen_items = torch.tensor([1, 3, 1])  # user 1 "saw" its own target: it still counts
    ranks = target_ranks(scores, targets, seen_rows, seen_items)
    # user 0: item 2 (4.0) beats 3.0; item 1 is excluded, column 0 is padding
    # user 1: items 2, 3, 4 beat 1.0
    assert ranks.tolist() == [1, 3]
