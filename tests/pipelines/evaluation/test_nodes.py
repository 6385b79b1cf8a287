from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from maskrec.model_input import eval_set
from maskrec.models.baselines import MostPopular, interaction_matrix
from maskrec.pipelines.evaluation.nodes import evaluate_models, summarise_evaluation
from maskrec.scoring import rank, recommend
from tests.helpers import params


def test_one_scoring_pass_ranks_with_and_without_seen_items_and_lists_unseen():
    model = MostPopular.fit(
        interaction_matrix([[1, 2, 3], [1, 2], [1]], n_items=4)
    )  # popularity 1 > 2 > 3 > 4
    data = eval_set(
        pd.DataFrame({"user_id": [0], "context": [[1, 2]], "target_item": [3]}), 4
    )
    ranking = rank(model, data, 512, top_k=2)
    assert ranking.ranks.tolist() == [0] and ranking.top_items.tolist() == [[3, 4]]
    assert ranking.ranks_seen_included.tolist() == [2]
    items, scores = recommend(model, [[1, 2], [], [4]], 2, 512)  # histories directly
    assert items.tolist() == [[3, 4], [1, 2], [1, 2]]
    assert (np.diff(scores, axis=1) <= 0).all()


def _per_user(rng, models, users=200, cold=20):
    rows = []
    for model, level in models.items():
        ranks = rng.geometric(level, size=users) - 1
        rows.append(pd.DataFrame({
            "model": model, "user_id": np.arange(users), "is_cold": np.arange(users) < cold,
            "history_length": np.where(np.arange(users) < cold, 0, rng.integers(1, 300, size=users)),
            "rank": ranks, "ndcg@10": np.where(ranks < 10, 1 / np.log2(ranks + 2), 0.0), "hr@10": (ranks < 10).astype(float),
            "mrr@10": np.where(ranks < 10, 1 / (ranks + 1), 0.0), "ndcg@5": np.where(ranks < 5, 1 / np.log2(ranks + 2), 0.0),
            "diversity@10": rng.random(users), "novelty@10": rng.gamma(4.0, size=users),
        }))  # fmt: skip
    return pd.concat(rows, ignore_index=True)


@pytest.fixture
def summary():
    per_user = _per_user(
        np.random.default_rng(0),
        {"fine_tuned": 0.3, "scratch": 0.1, "ease": 0.15, "most_popular": 0.05},
    )
    stats = {m: {"kind": "baseline" if m in {"ease", "most_popular"} else "sequence", "valid_ndcg@10": v, "coverage@10": 0.5,
                 "personalises_new_users": m != "most_popular"}
             for m, v in {"fine_tuned": 0.3, "scratch": 0.1, "ease": 0.2, "most_popular": 0.05}.items()}  # fmt: skip
    settings = params(
        "evaluation",
        bootstrap_samples=200,
        permutation_resamples=199,
        comparisons=[("fine_tuned", "scratch"), ("fine_tuned", "best_baseline")],
    )
    return per_user, summarise_evaluation(per_user, stats, settings)


def test_summary_means_buckets_and_tests(summary):
    per_user, result = summary
    fine = result["models"]["fine_tuned"]
    expected = per_user.loc[per_user["model"] == "fine_tuned", "ndcg@10"].mean()
    assert fine["all"]["ndcg@10"]["mean"] == pytest.approx(expected)
    assert (
        fine["all"]["ndcg@10"]["ci_low"] < expected < fine["all"]["ndcg@10"]["ci_high"]
    )
    assert fine["cold"]["users"] == 20 and fine["warm"]["users"] == 180
    assert sum(b["users"] for b in fine["by_history_length"].values()) == 180
    assert (
        result["best_baseline_by_validation"] == "ease"
        and result["best_model_by_validation"] == "fine_tuned"
    )
    groups = {(t["competitor"], t["group"]) for t in result["paired_tests"]}
    assert groups == {
        (c, g) for c in ("scratch", "ease") for g in ("all", "history<=30", "cold")
    }
    vs_scratch = next(
        t
        for t in result["paired_tests"]
        if t["competitor"] == "scratch" and t["group"] == "all"
    )
    assert (
        vs_scratch["mean_difference"] > 0 and vs_scratch["p_value"] <= 0.01
    )  # the floor at 199 resamples
    # One FDR adjustment across every row: never below the row's own p, in order.
    tests = result["paired_tests"]
    assert all(t["p_adjusted"] >= t["p_value"] for t in tests)
    order = sorted(tests, key=lambda t: t["p_value"])
    assert [t["p_adjusted"] for t in order] == sorted(t["p_adjusted"] for t in order)
    # Intervals where asked for, means everywhere.
    assert set(fine["all"]["hr@10"]) == {"mean", "ci_low", "ci_high"}
    assert set(fine["all"]["ndcg@5"]) == {"mean"}


def test_evaluate_models_on_real_pipeline_outputs():
    from tests.helpers import small_split

    data = small_split()
    n_items = len(data["item_features"])
    popular = MostPopular.fit(
        interaction_matrix(data["train"]["item_ids"].tolist(), n_items)
    )
    per_user, stats = evaluate_models(
        data["test"],
        data["valid"],
        data["train"],
        data["item_features"],
        params("evaluation"),
        params("training", device="cpu"),
        most_popular=popular,
    )
    assert len(per_user) == len(data["test"])
    assert {
        "rank",
        "hr@5",
        "ndcg@10",
        "mrr@20",
        "recall@10",
        "is_cold",
        "history_length",
    } <= set(per_user.columns)
    assert (per_user["hr@10"] == per_user["recall@10"]).all()
    # The same popular items for everyone (shifted only by what each user has seen):
    distinct = stats["most_popular"]["coverage@10"] * n_items
    assert 10 <= distinct < 0.1 * len(per_user) * 10
    cold = per_user["is_cold"]
    assert (per_user.loc[cold, "history_length"] == 0).all()
    assert (per_user["rank"] >= 0).all()
    # beyond accuracy, per user: the most popular films are the least novel of the catalogue;
    # excluding what a user has seen can only bring less popular films into the list
    counts = np.bincount(np.concatenate(data["train"]["item_ids"].tolist()), minlength=n_items + 1)  # fmt: skip
    bits = -np.log2(np.maximum(counts[1:], 1) / len(data["train"]))
    assert per_user["novelty@10"].max() <= np.sort(bits)[::-1][: n_items - 10].mean()
    top10 = np.argsort(-counts[1:], kind="stable")[:10] + 1
    assert per_user["novelty@10"].min() >= bits[top10 - 1].mean() - 1e-9
    assert per_user["diversity@10"].between(0, 1).all()
    low, high = stats["most_popular"]["coverage@10_ci"]
    assert low <= high <= stats["most_popular"]["coverage@10"] + 1e-12


def test_a_future_window_scores_every_later_item_of_a_user():
    from maskrec.metrics import window_metrics
    from tests.helpers import small_split

    data = small_split(strategy="future_window", common_period=True)
    test = data["test"]
    assert (test["target_items"].map(len) >= 1).all() and (test["target_items"].map(len) > 1).any()  # fmt: skip
    n_items = len(data["item_features"])
    popular = MostPopular.fit(interaction_matrix(data["train"]["item_ids"].tolist(), n_items))  # fmt: skip
    settings = params("evaluation", bootstrap_samples=100, permutation_resamples=99)
    per_user, stats = evaluate_models(
        test, data["valid"], data["train"], data["item_features"], settings,
        params("training", device="cpu"), most_popular=popular,
    )  # fmt: skip
    # independently: the model's own ranked lists, seen items excluded, scored by formula
    top = recommend(popular, test["context"].tolist(), 20, 64)[0]
    expected = window_metrics(top, test["target_items"].tolist(), 10)
    for name in ("recall@10", "ndcg@10", "map@10", "hr@10"):
        assert per_user[name].to_numpy() == pytest.approx(expected[name])
    assert (per_user["recall@10"] <= per_user["hr@10"]).all()
    summary = summarise_evaluation(per_user, stats, settings)
    assert "future window" in summary["protocol"]
    assert "ci_low" in summary["models"]["most_popular"]["all"]["ndcg@10"]
    from maskrec.pipelines.reporting.nodes import build_summary

    rows, markdown = build_summary(summary, {})
    assert "| test Recall@10 [95% CI] | test MAP@10 [95% CI] |" in markdown
    assert rows[0]["map@10"] == pytest.approx(per_user["map@10"].mean())
