"""The rating blend's least squares against numpy's, and its refusals."""

from __future__ import annotations

import numpy as np
import pytest

from maskrec.models.rating_blend import blend, fit_blend


def test_the_weights_are_the_least_squares_solution():
    rng = np.random.default_rng(0)
    members = {name: rng.uniform(1, 5, 400) for name in ("head", "svd", "biases")}
    exact = 0.3 + 0.5 * members["head"] + 0.4 * members["svd"] - 0.1 * members["biases"]
    weights = fit_blend(members, exact)
    assert weights["intercept"] == pytest.approx(0.3)
    assert weights["weights"] == pytest.approx(
        {"head": 0.5, "svd": 0.4, "biases": -0.1}
    )
    noisy = exact + rng.normal(0, 0.5, 400)
    design = np.column_stack([np.ones(400), *members.values()])
    solution = np.linalg.lstsq(design, noisy, rcond=None)[0]
    weights = fit_blend(members, noisy)
    assert [weights["intercept"], *weights["weights"].values()] == pytest.approx(solution.tolist())  # fmt: skip
    np.testing.assert_allclose(blend(weights, members, (1.0, 5.0)), np.clip(design @ solution, 1.0, 5.0))  # fmt: skip


def test_predictions_are_clipped_to_the_scale_and_members_must_answer():
    weights = {"intercept": 1.0, "weights": {"a": 1.0, "b": 1.0}}
    predicted = blend(weights, {"a": np.array([0.5, 3.0]), "b": np.array([0.0, 2.0])}, (1.0, 5.0))  # fmt: skip
    np.testing.assert_allclose(predicted, [1.5, 5.0])
    with pytest.raises(ValueError, match="member 'b' has no predictions"):
        blend(weights, {"a": np.ones(2)}, (1.0, 5.0))
    with pytest.raises(ValueError, match="two members or more"):
        fit_blend({"a": np.ones(5)}, np.ones(5))
    with pytest.raises(
        ValueError, match="3 held-out ratings cannot fit a blend of 2 models"
    ):
        fit_blend({"a": np.ones(3), "b": np.ones(3)}, np.ones(3))
