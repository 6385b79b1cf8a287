"""The rating blend's ridge regression against numpy's closed form, its penalty's choice
against leave-one-out refits done by hand, and its refusals."""

from __future__ import annotations

import numpy as np
import pytest

from maskrec.models.rating_blend import blend, fit_blend


def _ridge(columns: np.ndarray, ratings: np.ndarray, penalty: float) -> np.ndarray:
    """Intercept and weights of ridge regression with an unpenalised intercept, by the
    normal equations on centred data."""
    x, y = columns - columns.mean(0), ratings - ratings.mean()
    weights = np.linalg.solve(x.T @ x + penalty * np.eye(x.shape[1]), x.T @ y)
    return np.array([ratings.mean() - columns.mean(0) @ weights, *weights])


def test_a_tiny_penalty_gives_the_least_squares_solution():
    rng = np.random.default_rng(0)
    members = {name: rng.uniform(1, 5, 400) for name in ("head", "svd", "biases")}
    exact = 0.3 + 0.5 * members["head"] + 0.4 * members["svd"] - 0.1 * members["biases"]
    weights = fit_blend(members, exact, [1e-9])
    assert weights["intercept"] == pytest.approx(0.3) and weights["penalty"] == 1e-9
    assert weights["weights"] == pytest.approx(
        {"head": 0.5, "svd": 0.4, "biases": -0.1}
    )
    noisy = exact + rng.normal(0, 0.5, 400)
    design = np.column_stack([np.ones(400), *members.values()])
    solution = np.linalg.lstsq(design, noisy, rcond=None)[0]
    weights = fit_blend(members, noisy, [1e-9])
    assert [weights["intercept"], *weights["weights"].values()] == pytest.approx(solution.tolist())  # fmt: skip
    np.testing.assert_allclose(blend(weights, members, (1.0, 5.0)), np.clip(design @ solution, 1.0, 5.0))  # fmt: skip


def test_the_penalty_is_the_one_with_the_lowest_leave_one_out_error():
    """Nearly collinear members and few ratings (a blend's usual probe): the chosen
    penalty is the one whose n refits, each without one rating, predict the left-out
    ratings best; the weights are that penalty's ridge solution on all ratings."""
    rng = np.random.default_rng(1)
    truth = rng.uniform(1, 5, 60)
    members = {f"m{k}": truth + rng.normal(0, 0.6, 60) for k in range(5)}
    ratings = truth + rng.normal(0, 0.3, 60)
    columns = np.column_stack(list(members.values()))
    penalties = [0.01, 1.0, 10.0, 100.0, 1000.0]

    def left_out_error(penalty: float) -> float:
        errors = []
        for n in range(len(ratings)):
            keep = np.arange(len(ratings)) != n
            solution = _ridge(columns[keep], ratings[keep], penalty)
            errors.append(ratings[n] - solution[0] - columns[n] @ solution[1:])
        return float(np.mean(np.square(errors)))

    errors = {p: left_out_error(p) for p in penalties}
    best = min(errors, key=errors.get)
    assert 0.01 < best < 1000.0  # the test means something: neither end wins
    weights = fit_blend(members, ratings, penalties)
    assert weights["penalty"] == best
    expected = _ridge(columns, ratings, best)
    assert [weights["intercept"], *weights["weights"].values()] == pytest.approx(expected.tolist())  # fmt: skip


def test_predictions_are_clipped_to_the_scale_and_members_must_answer():
    weights = {"intercept": 1.0, "weights": {"a": 1.0, "b": 1.0}}
    predicted = blend(weights, {"a": np.array([0.5, 3.0]), "b": np.array([0.0, 2.0])}, (1.0, 5.0))  # fmt: skip
    np.testing.assert_allclose(predicted, [1.5, 5.0])
    with pytest.raises(ValueError, match="member 'b' has no predictions"):
        blend(weights, {"a": np.ones(2)}, (1.0, 5.0))
    with pytest.raises(ValueError, match="two members or more"):
        fit_blend({"a": np.ones(5)}, np.ones(5), [1.0])
    with pytest.raises(
        ValueError, match="3 held-out ratings cannot fit a blend of 2 models"
    ):
        fit_blend({"a": np.ones(3), "b": np.ones(3)}, np.ones(3), [1.0])
