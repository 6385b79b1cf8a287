"""Each baseline on a tiny case whose answer is known by hand, and its save/load."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from maskrec.datasets import ArrayModelDataset
from maskrec.models.baselines import (
    EASE,
    ItemKNN,
    MatrixFactorization,
    MostPopular,
    interaction_matrix,
)

# Four users over items 1..4: items 1 and 2 always together, 3 and 4 always together.
SEQUENCES = [[1, 2], [1, 2], [3, 4], [3, 4, 1]]


def _score(model, context):
    rows = torch.zeros(len(context), dtype=torch.long)
    return model.score(rows, torch.tensor(context), 1)[0].numpy()


@pytest.fixture
def train():
    return interaction_matrix(SEQUENCES, n_items=4)


def test_interaction_matrix_is_binary_with_an_empty_padding_column(train):
    dense = train.toarray()
    assert dense.shape == (4, 5) and (dense[:, 0] == 0).all()
    assert dense.sum() == 9 and set(np.unique(dense)) == {0.0, 1.0}


def test_most_popular_ranks_by_count(train):
    scores = _score(MostPopular.fit(train), [2])
    assert np.argsort(-scores[1:])[0] + 1 == 1  # item 1 is rated 3 times
    assert MostPopular.personalises_new_users is False


def test_item_knn_matches_cosine_with_shrinkage(train):
    model = ItemKNN.fit(train, neighbours=10, shrink=1.0)
    similarity = model.similarity.toarray()
    # items 1 and 2: co-occur twice; |U1| = 3, |U2| = 2 -> 2 / (sqrt(6) + 1)
    assert similarity[1, 2] == pytest.approx(2 / (np.sqrt(6) + 1))
    assert similarity[1, 1] == 0.0
    scores = _score(model, [2])  # a new user who watched item 2: item 1 first
    assert np.argmax(scores[1:]) + 1 == 1


def test_item_knn_without_shrinkage_is_sklearns_cosine_similarity():
    from sklearn.metrics.pairwise import cosine_similarity

    matrix = random_interactions()
    similarity = ItemKNN.fit(sp.csr_matrix(matrix.astype(np.float32)), neighbours=100, shrink=0.0).similarity.toarray()  # fmt: skip
    expected = cosine_similarity(matrix.T)
    np.fill_diagonal(expected, 0.0)
    np.testing.assert_allclose(similarity, expected, atol=1e-5)


def test_item_knn_keeps_only_the_nearest_neighbours(train):
    model = ItemKNN.fit(train, neighbours=1, shrink=0.0)
    assert ((model.similarity.toarray() > 0).sum(axis=1) <= 1).all()


def test_item_knn_fitted_in_blocks_keeps_each_rows_best_and_scores_like_dense():
    """A catalogue several blocks long: each row keeps exactly its `neighbours` largest
    shrunk cosines (reference: the dense matrix, sorted), and scores equal context @ the
    dense matrix cut to those neighbours."""
    matrix = random_interactions(users=60, items=40, seed=3)
    co = matrix.T @ matrix
    norms = np.sqrt(np.diag(co))
    dense = co / (np.outer(norms, norms) + 2.0 + 1e-12)
    np.fill_diagonal(dense, 0.0)
    model = ItemKNN.fit(sp.csr_matrix(matrix.astype(np.float32)), 5, 2.0, block=7)
    kept = model.similarity.toarray()
    for i in range(1, dense.shape[0]):
        assert np.count_nonzero(kept[i]) == 5
        np.testing.assert_allclose(np.sort(kept[i])[-5:], np.sort(dense[i])[-5:], rtol=1e-5)  # fmt: skip
    cut = np.where(kept > 0, dense, 0.0)
    context = sp.csr_matrix(matrix[:7].astype(np.float32))
    np.testing.assert_allclose(model.score_contexts(context), context.toarray() @ cut, rtol=1e-5)  # fmt: skip


def test_item_knn_grid_in_one_pass_gives_each_settings_own_neighbours():
    """One pass over the co-occurrence blocks for the whole grid: each (neighbours,
    shrink) model keeps its own rows' `neighbours` largest shrunk cosines (dense
    reference), not the widest model's or another shrink's."""
    matrix = random_interactions(users=60, items=40, seed=4)
    co = matrix.T @ matrix
    norms = np.sqrt(np.diag(co))
    models = ItemKNN.fit_grid(sp.csr_matrix(matrix.astype(np.float32)), [2, 6], [0.0, 5.0], block=9)  # fmt: skip
    assert sorted(models) == [(2, 0.0), (2, 5.0), (6, 0.0), (6, 5.0)]
    for (k, shrink), model in models.items():
        dense = co / (np.outer(norms, norms) + shrink + 1e-12)
        np.fill_diagonal(dense, 0.0)
        kept = model.similarity.toarray()
        assert model.config == {"neighbours": k, "shrink": shrink}
        for i in range(1, dense.shape[0]):
            assert np.count_nonzero(kept[i]) == k
            np.testing.assert_allclose(np.sort(kept[i])[-k:], np.sort(dense[i])[-k:], rtol=1e-5)  # fmt: skip
            np.testing.assert_allclose(kept[i][kept[i] > 0], dense[i][kept[i] > 0], rtol=1e-5)  # fmt: skip


def random_interactions(users: int = 40, items: int = 12, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    matrix = (rng.random((users, items + 1)) < 0.3).astype(np.float64)
    matrix[:, 0] = 0.0  # the padding column
    return matrix


def test_ease_solves_each_items_constrained_least_squares():
    """Independent reference: for every item j, ridge regression of column j on the other
    columns (w_jj = 0), solved directly with lstsq - not the inverse-Gram identity."""
    matrix, l2 = random_interactions(), 3.0
    weights = EASE.fit(sp.csr_matrix(matrix), l2=l2).arrays["weights"]
    n = matrix.shape[1]
    for j in range(n):
        others = [i for i in range(n) if i != j]
        system = np.vstack([matrix[:, others], np.sqrt(l2) * np.eye(n - 1)])
        target = np.concatenate([matrix[:, j], np.zeros(n - 1)])
        expected = np.linalg.lstsq(system, target, rcond=None)[0]
        np.testing.assert_allclose(weights[others, j], expected, atol=1e-5)
        assert weights[j, j] == 0.0


def test_ease_ranks_the_partner_item_first(train):
    assert np.argmax(_score(EASE.fit(train, l2=0.5), [3])[1:]) + 1 == 4


@pytest.mark.parametrize(("factors", "l2"), [(3, 0.5), (4, 2.0)])
def test_uniform_als_reaches_the_optimum_of_the_regularised_factorisation(factors, l2):
    """Independent reference: min ||R - U V^T||^2 + l2 (||U||^2 + ||V||^2) over rank-k
    factors is R's truncated SVD with singular values shrunk by l2 (soft-thresholding).
    Converged ALS with alpha=1 (every cell weighted alike), scoring the training rows by
    fold-in, must give that matrix."""
    matrix = random_interactions()
    model = MatrixFactorization.fit(sp.csr_matrix(matrix.astype(np.float32)), factors=factors, l2=l2, alpha=1.0, iterations=2000)  # fmt: skip
    u, sigma, vt = np.linalg.svd(matrix, full_matrices=False)
    optimum = (u[:, :factors] * np.maximum(sigma[:factors] - l2, 0.0)) @ vt[:factors]
    scores = model.score_contexts(sp.csr_matrix(matrix.astype(np.float32)))
    np.testing.assert_allclose(scores, optimum, atol=1e-4)


@pytest.mark.parametrize("alpha", [1.0, 4.0, 40.0])
def test_als_fold_in_solves_the_confidence_weighted_normal_equations(alpha):
    """Hu, Koren & Volinsky's user step, written out in numpy: with confidence alpha on
    seen items and 1 elsewhere, x_u = (YᵀC_uY + l2 I)⁻¹ YᵀC_u p_u. Fold-in of any history,
    seen in training or not, must be that vector."""
    train = sp.csr_matrix(random_interactions().astype(np.float32))
    model = MatrixFactorization.fit(train, factors=4, l2=0.7, alpha=alpha, iterations=5)
    y = model.arrays["items"].astype(np.float64)
    histories = sp.csr_matrix(random_interactions(seed=5)[:6].astype(np.float32))
    for user, x in zip(histories.toarray(), model.fold_in(histories), strict=True):
        confidence = np.where(user > 0, alpha, 1.0)
        a = y.T @ (confidence[:, None] * y) + 0.7 * np.eye(4)
        expected = np.linalg.solve(a, y.T @ (confidence * user))
        np.testing.assert_allclose(x, expected, rtol=1e-3, atol=1e-5)


def test_als_confidence_changes_the_model_and_the_same_seed_repeats_it():
    train = sp.csr_matrix(random_interactions().astype(np.float32))

    def fit(alpha: float) -> np.ndarray:
        return MatrixFactorization.fit(train, factors=4, l2=1.0, alpha=alpha, iterations=5, seed=3).arrays["items"]  # fmt: skip

    np.testing.assert_array_equal(fit(10.0), fit(10.0))
    assert not np.allclose(fit(10.0), fit(1.0), atol=1e-3)


def test_als_saved_before_confidence_weighting_scores_as_it_did():
    """A model saved by the earlier uniform solver (no `alpha`, a `projection` array)
    still loads and scores as that solver did: ((ctx Y)(YᵀY + l2 I)⁻¹) Yᵀ."""
    rng = np.random.default_rng(2)
    items = rng.normal(0, 0.3, size=(13, 3)).astype(np.float32)
    projection = np.linalg.inv(items.T @ items + 2.0 * np.eye(3)).astype(np.float32)
    old = MatrixFactorization(n_items=12, config={"factors": 3, "l2": 2.0, "iterations": 15, "seed": 0},
                              arrays={"items": items, "projection": projection})  # fmt: skip
    contexts = sp.csr_matrix(random_interactions(seed=7)[:5].astype(np.float32))
    expected = (contexts @ items) @ projection @ items.T
    np.testing.assert_allclose(
        old.score_contexts(contexts), expected, rtol=1e-4, atol=1e-5
    )


def test_mf_scores_a_new_user_by_folding_in_their_history(train):
    model = MatrixFactorization.fit(train, factors=2, l2=0.1, alpha=5.0, iterations=30)
    scores = _score(model, [1])
    assert scores[2] > scores[3]  # item 1's partner is item 2


@pytest.mark.parametrize("fit", [MostPopular.fit, lambda t: ItemKNN.fit(t, 2, 1.0), lambda t: EASE.fit(t, 1.0),
                                 lambda t: MatrixFactorization.fit(t, 2, 1.0, 5.0, 5)])  # fmt: skip
def test_save_and_load_round_trip(train, fit, tmp_path):
    model = fit(train)
    dataset = ArrayModelDataset(filepath=str(tmp_path / "m"))
    dataset.save(model)
    loaded = dataset.load()
    assert type(loaded) is type(model) and loaded.config == model.config
    np.testing.assert_array_equal(_score(model, [1, 3]), _score(loaded, [1, 3]))


def test_ease_on_a_too_large_catalogue_is_skipped_with_the_reason_and_saved_as_such(tmp_path):  # fmt: skip
    import pandas as pd

    from maskrec.models.baselines import Skipped
    from maskrec.pipelines.baselines.nodes import fit_ease
    from tests.helpers import params

    items = pd.DataFrame({"item_id": range(1, 31)})
    model, selection = fit_ease(
        pd.DataFrame({"item_ids": [[1, 2]]}),
        pd.DataFrame(),  # no validation needed: nothing is fitted
        items,
        params("baselines", max_dense_items=20),
        params("training"),
    )
    assert isinstance(model, Skipped) and selection["model"] == "ease"
    assert "30 items, above baselines.max_dense_items=20" in selection["skipped"]
    dataset = ArrayModelDataset(filepath=str(tmp_path / "ease"))
    dataset.save(model)
    assert dataset.load().config == model.config
    with pytest.raises(RuntimeError, match="ease skipped: the catalogue has 30 items"):
        _score(dataset.load(), [1])
