"""Rating prediction: the protocols' splits, the classic models against independent
computations, and RMSE / MAE against scikit-learn's."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import mean_absolute_error, root_mean_squared_error

from maskrec.models.rating_baselines import fit_predict
from maskrec.pipelines.rating_prediction import create_pipeline
from maskrec.pipelines.rating_prediction.nodes import (
    protocol_splits,
    split_ratings,
)
from tests.helpers import params, run_pipeline, small_split

QUICK = {"models": ["global_mean", "biases", "svd"], "svd": {"n_factors": 8, "n_epochs": 10},
         "comparisons": [["svd", "biases"], ["biases", "global_mean"]]}  # fmt: skip


@pytest.fixture(scope="module")
def interactions() -> pd.DataFrame:
    return small_split(n_users=120, n_items=200, n_ratings=3000)["interactions"]


def test_each_protocol_holds_out_what_it_says(interactions):
    splits = split_ratings(interactions, params("ratings", folds=5, seed=3))
    assert len(splits) == len(interactions)
    last = splits.groupby("user_id").tail(1)
    assert (last["time_part"] == "test").all() and (splits["time_part"] == "test").sum() == len(last)  # fmt: skip
    before_last = splits.drop(last.index).groupby("user_id").tail(1)
    assert (before_last["time_part"] == "valid").all()
    sizes = splits["fold"].value_counts()
    assert sorted(sizes.index) == [0, 1, 2, 3, 4] and sizes.max() - sizes.min() <= 1
    again = split_ratings(interactions, params("ratings", folds=5, seed=3))
    assert again["fold"].tolist() == splits["fold"].tolist()  # seeded
    folds = list(protocol_splits(splits, params("ratings", folds=5)))
    assert [(p, f) for p, f, *_ in folds] == [("next_in_time", 0)] + [("random_folds", k) for k in range(5)]  # fmt: skip
    for _, _, train, test in folds:
        assert not set(train.index) & set(test.index) and len(train) + len(test) == len(splits)  # fmt: skip


def test_biases_are_surprises_alternating_least_squares(interactions):
    """An independent numpy version of BaselineOnly's ALS: item biases, then user biases,
    each a regularised mean of what the other leaves unexplained."""
    splits = split_ratings(interactions, params("ratings"))
    _, _, train, test = next(protocol_splits(splits, params("ratings")))
    settings = {"n_epochs": 10, "reg_u": 15, "reg_i": 10}
    mu = train["rating"].mean()
    users = {u: i for i, u in enumerate(train["user_id"].unique())}
    items = {v: i for i, v in enumerate(train["item_id"].unique())}
    u, i, r = train["user_id"].map(users).to_numpy(), train["item_id"].map(items).to_numpy(), train["rating"].to_numpy()  # fmt: skip
    bu, bi = np.zeros(len(users)), np.zeros(len(items))
    for _ in range(settings["n_epochs"]):
        bi = np.bincount(i, r - mu - bu[u], len(items)) / (settings["reg_i"] + np.bincount(i, minlength=len(items)))  # fmt: skip
        bu = np.bincount(u, r - mu - bi[i], len(users)) / (settings["reg_u"] + np.bincount(u, minlength=len(users)))  # fmt: skip
    expected = mu + np.array([bu[users[x]] if x in users else 0.0 for x in test["user_id"]]) + \
        np.array([bi[items[x]] if x in items else 0.0 for x in test["item_id"]])  # fmt: skip
    expected = np.clip(expected, train["rating"].min(), train["rating"].max())
    np.testing.assert_allclose(fit_predict("biases", train, test, settings, 0), expected, atol=1e-9)  # fmt: skip
    assert np.allclose(fit_predict("global_mean", train, test, {}, 0), mu)
    with pytest.raises(ValueError, match="unknown rating model 'knn'"):
        fit_predict("knn", train, test, {}, 0)


def test_errors_are_sklearns_rmse_and_mae_with_intervals_and_paired_tests(interactions):
    rating_params = params("ratings", **QUICK)
    outputs = run_pipeline(create_pipeline(), {"interactions": interactions, "params:ratings": rating_params,
                                               "params:evaluation": params("evaluation", bootstrap_samples=200, permutation_resamples=199)})  # fmt: skip
    predictions, metrics = outputs["rating_predictions"], outputs["rating_metrics"]
    for protocol in ("next_in_time", "random_folds"):
        for model in QUICK["models"]:
            mine = predictions[
                (predictions["protocol"] == protocol) & (predictions["model"] == model)
            ]
            entry = metrics["protocols"][protocol][model]["all"]
            assert entry["rmse"]["mean"] == pytest.approx(root_mean_squared_error(mine["rating"], mine["prediction"]))  # fmt: skip
            assert entry["mae"]["mean"] == pytest.approx(mean_absolute_error(mine["rating"], mine["prediction"]))  # fmt: skip
            assert (
                entry["rmse"]["ci_low"]
                <= entry["rmse"]["mean"]
                <= entry["rmse"]["ci_high"]
            )
            assert entry["ratings"] == len(mine)
    # every rating is predicted once per model in the random folds
    folds = predictions[
        (predictions["protocol"] == "random_folds") & (predictions["model"] == "svd")
    ]
    assert len(folds) == len(interactions)
    # ratings follow taste in the generated data: personal models beat the global mean
    rmse = {
        m: metrics["protocols"]["random_folds"][m]["all"]["rmse"]["mean"]
        for m in QUICK["models"]
    }
    assert rmse["biases"] < rmse["global_mean"] and rmse["svd"] < rmse["global_mean"]
    tests = {
        (t["protocol"], t["model"], t["competitor"], t["group"])
        for t in metrics["paired_tests"]
    }
    assert ("random_folds", "biases", "global_mean", "all") in tests
    assert all(0 <= t["p_adjusted"] <= 1 for t in metrics["paired_tests"] if t["users"])
    assert outputs["rating_errors_plot"].data  # one bar trace per protocol


def test_comparisons_must_name_models_that_run():
    with pytest.raises(ValueError, match="'svdpp' is not among models"):
        params("ratings", models=["svd", "biases"], comparisons=[["svdpp", "svd"]])
