"""Each baseline on a tiny case whose answer is known by hand, and its save/load."""

from __future__ import annotations

import numpy as np
import pytest
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
    similarity = model.arrays["similarity"]
    # items 1 and 2: co-occur twice; |U1| = 3, |U2| = 2 -> 2 / (sqrt(6) + 1)
    assert similarity[1, 2] == pytest.approx(2 / (np.sqrt(6) + 1))
    assert similarity[1, 1] == 0.0
    scores = _score(model, [2])  # a new user who watched item 2: item 1 first
    assert np.argmax(scores[1:]) + 1 == 1


def test_item_knn_keeps_only_the_nearest_neighbours(train):
    model = ItemKNN.fit(train, neighbours=1, shrink=0.0)
    assert ((model.arrays["similarity"] > 0).sum(axis=1) <= 1).all()


def test_ease_matches_the_closed_form(train):
    l2 = 0.5
    model = EASE.fit(train, l2=l2)
    gram = (train.T @ train).toarray() + l2 * np.eye(5)
    p = np.linalg.inv(gram)
    expected = -p / np.diag(p)
    np.fill_diagonal(expected, 0.0)
    np.testing.assert_allclose(model.arrays["weights"], expected, rtol=1e-5, atol=1e-6)
    assert np.argmax(_score(model, [3])[1:]) + 1 == 4


def test_mf_fold_in_equals_the_als_user_step(train):
    model = MatrixFactorization.fit(train, factors=2, l2=0.1, iterations=30)
    items = model.arrays["items"]
    context = [3, 4]
    r = np.zeros(5)
    r[context] = 1
    user = r @ items @ np.linalg.inv(items.T @ items + 0.1 * np.eye(2))
    np.testing.assert_allclose(
        _score(model, context), user @ items.T, rtol=1e-4, atol=1e-5
    )
    scores = _score(model, [1])
    assert scores[2] > scores[3]  # item 1's partner is item 2


@pytest.mark.parametrize("fit", [MostPopular.fit, lambda t: ItemKNN.fit(t, 2, 1.0), lambda t: EASE.fit(t, 1.0),
                                 lambda t: MatrixFactorization.fit(t, 2, 1.0, 5)])  # fmt: skip
def test_save_and_load_round_trip(train, fit, tmp_path):
    model = fit(train)
    dataset = ArrayModelDataset(filepath=str(tmp_path / "m"))
    dataset.save(model)
    loaded = dataset.load()
    assert type(loaded) is type(model) and loaded.config == model.config
    np.testing.assert_array_equal(_score(model, [1, 3]), _score(loaded, [1, 3]))


def test_too_large_catalogue_is_refused_before_fitting():
    import pandas as pd

    from maskrec.pipelines.baselines.nodes import fit_ease
    from tests.helpers import params

    items = pd.DataFrame({"item_id": range(1, 31)})
    with pytest.raises(ValueError, match="baselines.max_dense_items is 20"):
        fit_ease(
            pd.DataFrame({"item_ids": [[1, 2]]}),
            pd.DataFrame(),
            items,
            params("baselines", max_dense_items=20),
        )
