"""New films (issue 27): the content baselines, and the evaluation of targets without
training interactions — over the whole catalogue, among such items only, and what they
cost users whose target is a known film — checked against hand-computed ranks."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import scipy.sparse as sp

from maskrec.catalogue import ItemCatalogue
from maskrec.models.baselines import GenreRecency, NewestFirst, RandomScores
from maskrec.pipelines.evaluation.nodes import evaluate_models, summarise_evaluation
from maskrec.pipelines.reporting.nodes import build_summary, plot_new_items
from tests.helpers import params

N = 14
YEARS = np.array([0, *range(1981, 1981 + N)], dtype=float)  # item i released 1980 + i
UNTRAINED = {2, 13}  # no training interaction


def context(*items: int, size: int = N + 1) -> sp.csr_matrix:
    matrix = np.zeros((1, size), dtype=np.float32)
    matrix[0, list(items)] = 1
    return sp.csr_matrix(matrix)


def test_newest_first_ranks_by_release_year_and_unknown_years_last():
    years = np.array([0, 1990, 0, 2005, 1999], dtype=float)
    scores = NewestFirst.fit(years).score_contexts(context(1, size=5))[0]
    assert np.argsort(-scores[1:]).tolist() == [2, 3, 0, 1]  # 2005, 1999, 1990, unknown


def test_genre_recency_is_the_share_of_the_history_in_the_films_genres_times_newness():
    genres = np.array([[0, 0], [1, 0], [0, 1], [1, 1]], dtype=float)  # items 1..3
    years = np.array([0, 2000, 2000, 2010], dtype=float)
    model = GenreRecency.fit(genres, years, floor=0.05)
    scores = model.score_contexts(context(1, size=4))[0]
    # history: one film of genre 0. Item 2 (genre 1): match 0; item 3 (both): (1 + 0) / 2
    newness = [0.0, 0.0, 1.0]
    expected = [(m + 0.05) * (n + 0.05) for m, n in zip([1.0, 0.0, 0.5], newness, strict=True)]  # fmt: skip
    np.testing.assert_allclose(scores[1:], expected, atol=1e-5)


def test_random_scores_are_the_same_for_a_history_and_differ_between_histories():
    model = RandomScores.fit(N, seed=3)
    first, again = (
        model.score_contexts(context(1, 2)),
        model.score_contexts(context(2, 1)),
    )
    assert np.array_equal(first, again)
    assert not np.array_equal(first, model.score_contexts(context(3)))
    assert not np.array_equal(first, RandomScores.fit(N, seed=4).score_contexts(context(1, 2)))  # fmt: skip


def tables() -> dict[str, pd.DataFrame]:
    trained = [i for i in range(1, N + 1) if i not in UNTRAINED]
    train = pd.DataFrame({"user_id": [0, 1], "item_ids": [trained[:6], trained[6:]]})
    test = pd.DataFrame({
        "user_id": [0, 1, 2], "context": [[3, 4], [5], [6]], "target_item": [2, 13, 7],
        "is_cold": False, "is_cold_item": [True, True, False],
    })  # fmt: skip
    valid = test.assign(target_item=[8, 9, 10])
    features = pd.DataFrame({"item_id": range(1, N + 1), "original_item_id": range(101, 101 + N),
                             "title": [f"F{i}" for i in range(N)], "year": YEARS[1:]})  # fmt: skip
    return {"train": train, "test": test, "valid": valid, "features": features}


def test_targets_without_training_interactions_are_ranked_over_the_catalogue_and_among_themselves():
    data = tables()
    newest = NewestFirst.fit(YEARS)
    newest.catalogue = ItemCatalogue.from_features(data["features"])
    per_user, stats = evaluate_models(
        data["test"], data["valid"], data["train"], data["features"],
        params("evaluation", bootstrap_samples=100, permutation_resamples=99), params("training", device="cpu"),
        newest_first=newest,
    )  # fmt: skip
    rows = per_user.set_index("user_id")
    # user 0, target 2 (1982), seen 3, 4: ten unseen films are newer -> rank 10, a miss;
    # among the untrained films {2, 13}, 13 is newer -> rank 1
    assert rows.at[0, "hr@10"] == 0.0
    assert rows.at[0, "among_untrained_hr10"] == 1.0
    assert math.isclose(rows.at[0, "among_untrained_ndcg10"], 1 / math.log2(3))
    # user 1, target 13: only 14 is newer (rank 1); among untrained it comes first
    assert math.isclose(rows.at[1, "ndcg@10"], 1 / math.log2(3))
    assert rows.at[1, "among_untrained_ndcg10"] == 1.0
    # user 2's target has interactions: no among-untrained metric
    assert np.isnan(rows.at[2, "among_untrained_hr10"])
    # newest first: the top 10 of user 2 (seen 6) is 14..5 without 6, holding 13 of {2, 13}
    assert rows.at[2, "untrained_in_top10"] == 1

    summary = summarise_evaluation(per_user, stats, params("evaluation", bootstrap_samples=100, permutation_resamples=99))  # fmt: skip
    among = summary["models"]["newest_first"]["cold_items"]["among_untrained"]
    assert among["users"] == 2 and among["hr@10"]["mean"] == 1.0
    assert among["catalogue"]["hr@10"]["mean"] == 0.5
    assert (
        summary["models"]["newest_first"]["untrained_in_top10"]["trained_targets"]
        == 1.0
    )
    _, markdown = build_summary(summary, {})
    assert "New films: the 2 test targets without training interactions" in markdown
    assert len(plot_new_items(summary).data) == 3


def test_ties_among_new_items_count_against_the_target():
    """An id-only model scores every film it never trained on alike: among those films,
    its target must rank behind all of them, not first by the protocol's tie rule."""
    import torch

    from maskrec.scoring import ranks_among, target_ranks

    # id 0 is padding; 2..5 are new films, scored alike
    scores = torch.tensor([[0.0, 5.0, 1.0, 1.0, 1.0, 1.0]])
    among = torch.tensor([False, False, True, True, True, True])
    none = torch.zeros(0, dtype=torch.long)
    target = torch.tensor([3])
    # the protocol's rule: ties go to the target
    assert int(target_ranks(scores, target, none, none)) == 1
    assert int(ranks_among(scores, target, none, none, among)) == 3  # behind the 3 tied
    # a film in the context does not count
    seen_rows, seen_items = torch.tensor([0]), torch.tensor([4])
    assert int(ranks_among(scores, target, seen_rows, seen_items, among)) == 2
    scores[0, 3] = 2.0
    assert int(ranks_among(scores, target, none, none, among)) == 0


def test_each_sequence_model_is_also_scored_with_new_films_mixed_in():
    """`<model>+new_films`: known films keep the model's order (a known target can only
    move down, by the new films put above it), the temperature is one validation chose,
    and the mixture is never the model inference picks."""
    import torch

    from maskrec.model_input import right_aligned
    from maskrec.models.new_items import NewItems, simulated_targets
    from maskrec.models.sequence import SequenceRecModel
    from maskrec.registry import chosen
    from maskrec.scoring import TEMPERATURES
    from tests.models.test_sequence import tiny_config

    data = tables()
    torch.manual_seed(0)
    model = SequenceRecModel(tiny_config(n_items=N)).eval()
    model.config.item_ids = data["features"]["original_item_id"].tolist()
    sequences = data["train"]["item_ids"].tolist()
    contexts, targets = simulated_targets(sequences, 3)
    genres = np.zeros((N + 1, 1), dtype=np.float32)
    new_items = NewItems.fit(sequences, [list(range(len(s))) for s in sequences],
                             right_aligned(contexts, 50), targets, YEARS, genres,
                             np.arange(N + 1) / N, fraction=0.2)  # fmt: skip
    evaluation = params("evaluation", bootstrap_samples=100, permutation_resamples=99)
    score = lambda **kw: evaluate_models(  # noqa: E731
        data["test"], data["valid"], data["train"], data["features"], evaluation,
        params("training", device="cpu"), **kw,
    )  # fmt: skip
    per_user, stats = score(new_items=new_items, sasrec=model)
    assert set(stats) == {"sasrec", "sasrec+new_films"}
    mixed = stats["sasrec+new_films"]
    assert mixed["kind"] == "new_films_mixture" and mixed["mixes"] == "sasrec"
    assert min(abs(mixed["temperature"] - t) for t in TEMPERATURES) < 1e-6
    assert mixed["new_films_ordered_by_model"] == 0  # it did not record what it met
    # a model that met film 13 in other data (a transfer model's source) orders it itself
    elsewhere = SequenceRecModel(
        tiny_config(n_items=N, records_trained_items=True)
    ).eval()
    elsewhere.config.item_ids = model.config.item_ids
    elsewhere.mark_known([*np.concatenate(sequences), 13])
    assert score(new_items=new_items, transfer=elsewhere)[1]["transfer+new_films"]["new_films_ordered_by_model"] == 1  # fmt: skip
    # among the known films every user's target keeps its rank
    from maskrec.model_input import eval_set
    from maskrec.scoring import WithNewFilms, rank

    known = torch.ones(N + 1, dtype=torch.bool)
    known[[0, *UNTRAINED]] = False
    test = eval_set(data["test"].assign(target_item=[1, 7, 12]), 50)
    entry = WithNewFilms(model, new_items, mixed["temperature"])
    assert np.array_equal(rank(entry, test, 2, among=known).ranks_among, rank(model, test, 2, among=known).ranks_among)  # fmt: skip
    assert chosen(stats) == "sasrec"
    summary = summarise_evaluation(per_user, stats, evaluation)
    assert summary["best_model_by_validation"] == "sasrec"
    assert "among_untrained" in summary["models"]["sasrec+new_films"]["cold_items"]
    # nothing mixed without the mixture, when asked not to, or without a new-film target
    assert set(score(sasrec=model)[1]) == {"sasrec"}
    off = params(
        "evaluation", bootstrap_samples=100, permutation_resamples=99, new_films=False
    )
    assert set(evaluate_models(data["test"], data["valid"], data["train"], data["features"], off,
                               params("training", device="cpu"), new_items=new_items, sasrec=model)[1]) == {"sasrec"}  # fmt: skip
    known = data["test"].assign(target_item=[7, 8, 9], is_cold_item=False)
    assert set(evaluate_models(known, data["valid"], data["train"], data["features"], evaluation,
                               params("training", device="cpu"), new_items=new_items, sasrec=model)[1]) == {"sasrec"}  # fmt: skip
