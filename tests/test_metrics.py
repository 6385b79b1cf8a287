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


def test_diversity_on_a_hand_made_case_and_against_sklearn_cosine_distances():
    from sklearn.metrics.pairwise import cosine_distances

    from maskrec.metrics import intra_list_diversity

    genres = np.array(
        [[0, 0, 0], [1, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0], [0, 0, 0]], dtype=float
    )  # row 0: padding; item 5 has no genre
    same, apart = np.array([[1, 2]]), np.array([[1, 3]])
    assert intra_list_diversity(same, genres) == pytest.approx([0.0])
    assert intra_list_diversity(apart, genres) == pytest.approx([1.0])
    # items 1, 3, 4: distances 1 (1-3), 1 - 1/sqrt2 (1-4, 3-4) -> mean over the 3 pairs
    mixed = np.array([[1, 3, 4]])
    expected = (1 + 2 * (1 - 1 / np.sqrt(2))) / 3
    assert intra_list_diversity(mixed, genres) == pytest.approx([expected])
    assert intra_list_diversity(np.array([[1, 5]]), genres) == pytest.approx([1.0])

    rng = np.random.default_rng(0)
    features = (rng.random((40, 6)) < 0.4).astype(float)
    features[1:, 0] = 1.0  # no all-zero rows: sklearn's convention for them differs
    top = np.stack([rng.choice(np.arange(1, 40), 10, replace=False) for _ in range(25)])
    reference = [
        cosine_distances(features[row])[~np.eye(10, dtype=bool)].mean() for row in top
    ]
    assert intra_list_diversity(top, features) == pytest.approx(reference)


def test_novelty_is_mean_self_information_of_training_popularity():
    from maskrec.metrics import novelty

    counts = np.array([0, 50, 25, 1, 0])  # by item id; item 4: no training user
    top = np.array([[1, 2], [3, 4]])
    # 100 training users: -log2(0.5)=1, -log2(0.25)=2; -log2(0.01) twice (item 4 counts as one)
    assert novelty(top, counts, 100) == pytest.approx([1.5, -np.log2(0.01)])


def test_coverage_interval_brackets_resampled_coverage():
    from maskrec.metrics import coverage_interval

    every_user_same = np.tile(np.arange(1, 11), (30, 1))
    low, high = coverage_interval(every_user_same, 100, 200, 0.95, 0)
    assert (low, high) == pytest.approx((0.1, 0.1))
    distinct = np.arange(1, 301).reshape(
        30, 10
    )  # each user lists 10 items no one else has
    low, high = coverage_interval(distinct, 300, 500, 0.95, 0)
    # a resample of 30 users keeps about 1 - 1/e of the distinct users
    assert 0.45 < low < 0.632 < high <= 0.8
    assert coverage_interval(distinct, 300, 500, 0.95, 0) == (low, high)  # seeded


def test_window_metrics_on_a_hand_made_case():
    from maskrec.metrics import window_metrics

    top = np.array([[5, 1, 7, 2], [9, 8, 6, 4]])
    targets = [np.array([1, 2, 3]), np.array([9])]
    m = window_metrics(top, targets, 4)
    # user 0: hits at positions 2 and 4 of 3 relevant; user 1: a hit at position 1 of 1
    assert m["hr@4"].tolist() == [1.0, 1.0]
    assert m["recall@4"] == pytest.approx([2 / 3, 1.0])
    ideal = 1 + 1 / np.log2(3) + 1 / np.log2(4)
    assert m["ndcg@4"] == pytest.approx([(1 / np.log2(3) + 1 / np.log2(5)) / ideal, 1.0])  # fmt: skip
    assert m["map@4"] == pytest.approx([(1 / 2 + 2 / 4) / 3, 1.0])
    assert m["mrr@4"] == pytest.approx([0.5, 1.0])
    # one target per user: the window's metrics are the one-target metrics of its rank
    one = window_metrics(top, [np.array([7]), np.array([4])], 4)
    reference = ranking_metrics(np.array([2, 3]), 4)
    for name in ("hr@4", "ndcg@4", "mrr@4"):
        assert one[name] == pytest.approx(reference[name])
    assert one["map@4"] == pytest.approx(reference["mrr@4"])


def test_window_ndcg_matches_sklearn_with_several_relevant_items():
    rng = np.random.default_rng(1)
    scores = rng.normal(size=(30, 40))
    top = np.argsort(-scores, axis=1)
    targets = [
        rng.choice(40, size=rng.integers(1, 8), replace=False) for _ in range(30)
    ]
    from maskrec.metrics import window_metrics

    ours = window_metrics(top, targets, 10)["ndcg@10"]
    relevance = np.zeros_like(scores)
    for user, wanted in enumerate(targets):
        relevance[user, wanted] = 1
    reference = [ndcg_score(relevance[u : u + 1], scores[u : u + 1], k=10) for u in range(30)]  # fmt: skip
    assert ours == pytest.approx(reference)
