"""Rating prediction: the protocols' splits, the classic models against independent
computations, and RMSE / MAE against scikit-learn's."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import mean_absolute_error, root_mean_squared_error

from maskrec.models.rating_baselines import fit_predict
from maskrec.pipelines.rating_prediction import create_pipeline, nodes
from maskrec.pipelines.rating_prediction.nodes import (
    protocol_splits,
    split_ratings,
)
from tests.helpers import params, quick_parameters, run_pipeline, small_split

QUICK = {"models": ["global_mean", "biases", "svd", "fine_tuned", "scratch"], "svd": {"n_factors": 8, "n_epochs": 10},
         "sequence": {"pretraining_epochs": 1, "epochs": 2, "batch_size": 64, "context_length": 16},
         "comparisons": [["svd", "biases"], ["biases", "global_mean"], ["fine_tuned", "scratch"]]}  # fmt: skip


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


@pytest.fixture(scope="module")
def outputs(interactions) -> dict:
    """The whole pipeline, with every training stage's data recorded on the way."""
    seen = []

    def recording(stage):
        def recorded(model, sequences, valid, *args):
            seen.append((stage.__name__, sequences, valid))
            return stage(model, sequences, valid, *args)

        return recorded

    quick = quick_parameters()
    with pytest.MonkeyPatch.context() as patch:
        for stage in (nodes.pretrain, nodes.fine_tune_ratings):
            patch.setattr(nodes, stage.__name__, recording(stage))
        result = run_pipeline(create_pipeline(), {
            "interactions": interactions, "item_features": small_split()["item_features"],
            "params:ratings": params("ratings", **QUICK), "params:model": quick["params:model"],
            "params:pretraining": quick["params:pretraining"], "params:training": quick["params:training"],
            "params:evaluation": params("evaluation", bootstrap_samples=200, permutation_resamples=199)})  # fmt: skip
    return result | {"seen": seen}


def test_no_test_rating_reaches_any_training_or_validation(outputs, interactions):
    """Per protocol and fold (in `protocol_splits` order): a pretraining, then the two
    fine-tunings; none of their sequences or validation questions holds a test rating."""
    splits = outputs["rating_splits"]
    folds = list(protocol_splits(splits, params("ratings", **QUICK)))
    assert len(outputs["seen"]) == 3 * len(folds)
    for (_, _, _, test), seen in zip(folds, np.split(np.array(outputs["seen"], dtype=object), len(folds)), strict=True):  # fmt: skip
        held = set(zip(test["user_id"], test["item_id"], strict=True))
        for stage, sequences, valid in seen:
            trained = {(u, i) for u, items in zip(sequences["user_id"], sequences["item_ids"], strict=True) for i in items}  # fmt: skip
            assert not trained & held, stage
            if stage == "pretrain":  # next-item validation: targets and contexts
                asked = set(zip(valid["user_id"], valid["target_item"], strict=True))
                context = {(u, i) for u, c in zip(valid["user_id"], valid["context"], strict=True) for i in c}  # fmt: skip
                assert not (asked | context) & held
            else:  # rating questions: the same fitted ratings, plus validation items
                assert len(valid) and not np.isnan(valid.targets.numpy()).any()
        assert seen[1][1] is seen[2][1]  # fine_tuned and scratch train on the same data


def test_errors_are_sklearns_rmse_and_mae_with_intervals_and_paired_tests(
    outputs, interactions
):
    predictions = pd.concat([outputs["classic_rating_predictions"], outputs["sequence_rating_predictions"]])  # fmt: skip
    metrics = outputs["rating_metrics"]
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
    for model in ("svd", "fine_tuned", "scratch"):
        folds = predictions[(predictions["protocol"] == "random_folds") & (predictions["model"] == model)]  # fmt: skip
        assert len(folds) == len(interactions)
        assert folds["prediction"].between(1.0, 5.0).all()
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
    assert ("next_in_time", "fine_tuned", "scratch", "history<=30") in tests
    assert outputs[
        "rating_model"
    ].config.rating_buckets  # next_in_time's fine-tuned head
    assert set(outputs["rating_history"]["protocol"]) == {
        "next_in_time",
        "random_folds",
    }
    assert all(0 <= t["p_adjusted"] <= 1 for t in metrics["paired_tests"] if t["users"])
    assert outputs["rating_errors_plot"].data  # one bar trace per protocol


def test_comparisons_must_name_models_that_run():
    with pytest.raises(ValueError, match="'svdpp' is not among models"):
        params("ratings", models=["svd", "fine_tuned"], comparisons=[["svdpp", "svd"]])
    with pytest.raises(ValueError, match="'fine_tuned' is required"):
        params("ratings", models=["svd", "biases"], comparisons=[])
