"""Rating prediction: the protocols' splits, the classic models against independent
computations, RMSE / MAE against scikit-learn's, and each fold a namespace a stopped run
resumes at."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import mean_absolute_error, root_mean_squared_error

from maskrec.models import rating_baselines
from maskrec.models.rating_baselines import fit_predict, fit_predict_many
from maskrec.models.sequence import SequenceRecModel
from maskrec.pipelines.rating_prediction import create_pipeline, nodes
from maskrec.pipelines.rating_prediction.nodes import select_fold, split_ratings
from maskrec.pipelines.rating_prediction.pipeline import FOLDS
from tests.helpers import QUICK, configured, params, run_pipeline, small_split
from tests.models.test_sequence import tiny_config

RATINGS = {"classic_models": ["global_mean", "biases", "svd"], "svd": {"n_factors": 8, "n_epochs": 10},
           "model": {"max_len": 16}, "pretraining": {"schedule": {"epochs": 1}},
           "head": {"schedule": {"epochs": 2, "batch_size": 64}},
           "blend": ["fine_tuned", "scratch", "svd", "biases"], "classic_jobs": 1,  # in this process: the fits are recorded
           "comparisons": [["svd", "biases"], ["biases", "global_mean"], ["fine_tuned", "scratch"], ["blend", "fine_tuned"]]}  # fmt: skip
MODELS = ["global_mean", "biases", "svd", "fine_tuned", "scratch", "blend"]


@pytest.fixture(scope="module")
def interactions() -> pd.DataFrame:
    return small_split(n_users=120, n_items=200, n_ratings=3000)["interactions"]


def test_each_protocol_holds_out_what_it_says(interactions):
    splits = split_ratings(interactions, params("ratings", seed=3))
    assert len(splits) == len(interactions)
    last = splits.groupby("user_id").tail(1)
    assert (last["time_part"] == "test").all() and (splits["time_part"] == "test").sum() == len(last)  # fmt: skip
    before_last = splits.drop(last.index).groupby("user_id").tail(1)
    assert (before_last["time_part"] == "valid").all()
    sizes = splits["fold"].value_counts()
    assert sorted(sizes.index) == [0, 1, 2, 3, 4] and sizes.max() - sizes.min() <= 1
    again = split_ratings(interactions, params("ratings", seed=3))
    assert again["fold"].tolist() == splits["fold"].tolist()  # seeded
    assert list(FOLDS.values()) == [("next_in_time", 0)] + [("random_folds", k) for k in range(5)]  # fmt: skip
    for protocol, fold in FOLDS.values():
        train, test = select_fold(splits, protocol, fold)
        assert not set(train.index) & set(test.index) and len(train) + len(test) == len(splits)  # fmt: skip


def test_biases_are_surprises_alternating_least_squares(interactions):
    """An independent numpy version of BaselineOnly's ALS: item biases, then user biases,
    each a regularised mean of what the other leaves unexplained."""
    splits = split_ratings(interactions, params("ratings"))
    train, test = select_fold(splits, "next_in_time", 0)
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


def test_fits_side_by_side_predict_what_one_process_predicts(interactions):
    """`fit_predict_many` in two processes returns each fit's predictions in the order
    asked, equal to fitting them one after another here (each fit is seeded)."""
    splits = split_ratings(interactions, params("ratings"))
    train, test = select_fold(splits, "random_folds", 1)
    fitted, held = train.iloc[: len(train) // 2], train.iloc[len(train) // 2 :]
    fits = [("svd", train, test, {"n_factors": 4, "n_epochs": 3}), ("global_mean", fitted, held, {}),
            ("biases", train, test, {"n_epochs": 2}), ("svdpp", fitted, held, {"n_factors": 4, "n_epochs": 2})]  # fmt: skip
    apart = fit_predict_many(fits, 7, jobs=2)
    assert [len(p) for p in apart] == [len(test), len(held), len(test), len(held)]
    for (kind, ratings, asked, settings), mine in zip(fits, apart, strict=True):
        np.testing.assert_array_equal(mine, fit_predict(kind, ratings, asked, settings, 7))  # fmt: skip


def test_the_knn_baseline_reads_neighbours_and_refuses_what_would_not_fit(interactions, monkeypatch):  # fmt: skip
    """Item-item and user-user k-NN baselines both beat the global mean on generated
    taste and differ from each other; a similarity matrix beyond the memory limit stops
    the pipeline at its first node, naming the parameter; settings Surprise does not
    know are refused by name."""
    from maskrec.models import rating_baselines

    splits = split_ratings(interactions, params("ratings"))
    train, test = select_fold(splits, "random_folds", 0)
    errors = {}
    for based in (False, True):
        settings = {
            "k": 20,
            "sim_options": {"name": "pearson_baseline", "user_based": based},
        }
        predicted = fit_predict("knn_baseline", train, test, settings, 0)
        errors[based] = root_mean_squared_error(test["rating"], predicted)
        assert predicted.min() >= 1.0 and predicted.max() <= 5.0
    mean = root_mean_squared_error(test["rating"], fit_predict("global_mean", train, test, {}, 0))  # fmt: skip
    assert max(errors.values()) < mean and errors[False] != errors[True]
    items = interactions["item_id"].nunique()
    monkeypatch.setattr(rating_baselines, "SIMILARITY_LIMIT_BYTES", items**2 * 8 - 1)
    with pytest.raises(ValueError, match=rf"ratings.knn_baseline: .* over {items} items .* leave knn_baseline out"):  # fmt: skip
        split_ratings(interactions, params("ratings"))
    for bad, message in (({"neighbours": 5}, r"knn_baseline.neighbours: not an argument of Surprise's KNNBaseline"),
                         ({"sim_options": {"name": "jaccard"}}, r"sim_options.name: 'jaccard' is not one"),
                         ({"sim_options": {"shrink": 5}}, r"sim_options.shrink: not one of Surprise's similarity options")):  # fmt: skip
        with pytest.raises(ValueError, match=message):
            rating_baselines.check_settings("knn_baseline", bad, "ratings.knn_baseline")


def quick_ratings() -> dict:
    return configured(**QUICK, ratings=RATINGS)


@pytest.fixture(scope="module")
def outputs(interactions) -> dict:
    """The whole pipeline, with every training stage's data recorded on the way."""
    seen = []

    def recording(stage):
        def recorded(model, sequences, valid, *args):
            seen.append(
                (args[-1], stage.__name__, sequences, valid)
            )  # (fit's name, ...)
            return stage(model, sequences, valid, *args)

        return recorded

    classic_fits = []  # (model, the ratings it was fitted on, the ratings it was asked)

    def fit_predict_recorded(kind, train, test, *args):
        classic_fits.append((kind, train, test))
        return fit_predict(kind, train, test, *args)

    groups = quick_ratings()
    with pytest.MonkeyPatch.context() as patch:
        for stage in (nodes.pretrain, nodes.fine_tune_ratings):
            patch.setattr(nodes, stage.__name__, recording(stage))
        patch.setattr(rating_baselines, "fit_predict", fit_predict_recorded)
        result = run_pipeline(create_pipeline(), {
            "interactions": interactions, "item_features": small_split()["item_features"],
            "params:ratings": groups["ratings"], "params:training": groups["training"],
            "params:evaluation": params("evaluation", bootstrap_samples=200, permutation_resamples=199)})  # fmt: skip
    return result | {"seen": seen, "classic_fits": classic_fits}


def test_no_test_rating_reaches_any_training_or_validation(outputs, interactions):
    """Per protocol and fold (a namespace each): a pretraining, then the two
    fine-tunings; none of their sequences or validation questions holds a test rating."""
    splits = outputs["rating_splits"]
    assert len(outputs["seen"]) == 3 * len(FOLDS)
    for namespace, (protocol, fold) in FOLDS.items():
        _, test = select_fold(splits, protocol, fold)
        held = set(zip(test["user_id"], test["item_id"], strict=True))
        seen = [s for s in outputs["seen"] if s[0].startswith(namespace + "_")]
        assert [s[1] for s in seen] == ["pretrain", "fine_tune_ratings", "fine_tune_ratings"]  # fmt: skip
        for _, stage, sequences, valid in seen:
            trained = {(u, i) for u, items in zip(sequences["user_id"], sequences["item_ids"], strict=True) for i in items}  # fmt: skip
            assert not trained & held, stage
            if stage == "pretrain":  # next-item validation: targets and contexts
                asked = set(zip(valid["user_id"], valid["target_item"], strict=True))
                context = {(u, i) for u, c in zip(valid["user_id"], valid["context"], strict=True) for i in c}  # fmt: skip
                assert not (asked | context) & held
            else:  # rating questions: the same fitted ratings, plus validation items
                assert len(valid) and not np.isnan(valid.targets.numpy()).any()
        assert seen[1][2] is seen[2][2]  # fine_tuned and scratch train on the same data


def test_errors_are_sklearns_rmse_and_mae_with_intervals_and_paired_tests(
    outputs, interactions
):
    predictions = pd.concat([outputs[f"{ns}.rating_predictions"] for ns in FOLDS])
    metrics = outputs["rating_metrics"]
    for protocol in ("next_in_time", "random_folds"):
        for model in MODELS:
            mine = predictions[(predictions["protocol"] == protocol) & (predictions["model"] == model)]  # fmt: skip
            entry = metrics["protocols"][protocol][model]["all"]
            assert entry["rmse"]["mean"] == pytest.approx(root_mean_squared_error(mine["rating"], mine["prediction"]))  # fmt: skip
            assert entry["mae"]["mean"] == pytest.approx(mean_absolute_error(mine["rating"], mine["prediction"]))  # fmt: skip
            assert entry["rmse"]["ci_low"] <= entry["rmse"]["mean"] <= entry["rmse"]["ci_high"]  # fmt: skip
            assert entry["ratings"] == len(mine)
    # every rating is predicted once per model in the random folds
    for model in ("svd", "fine_tuned", "scratch"):
        folds = predictions[(predictions["protocol"] == "random_folds") & (predictions["model"] == model)]  # fmt: skip
        assert len(folds) == len(interactions)
        assert folds["prediction"].between(1.0, 5.0).all()
    # ratings follow taste in the generated data: personal models beat the global mean
    rmse = {m: metrics["protocols"]["random_folds"][m]["all"]["rmse"]["mean"] for m in MODELS}  # fmt: skip
    assert rmse["biases"] < rmse["global_mean"] and rmse["svd"] < rmse["global_mean"]
    tests = {(t["protocol"], t["model"], t["competitor"], t["group"]) for t in metrics["paired_tests"]}  # fmt: skip
    assert ("random_folds", "biases", "global_mean", "all") in tests
    assert ("next_in_time", "fine_tuned", "scratch", "history<=30") in tests
    assert outputs[
        "rating_model"
    ].config.rating_buckets  # next_in_time's fine-tuned head
    history = outputs["rating_history"]
    assert set(history["protocol"]) == {"next_in_time", "random_folds"}
    assert set(history["model"]) == {f"{ns}_{kind}" for ns in FOLDS for kind in ("pretrained", "fine_tuned", "scratch")}  # fmt: skip
    assert all(0 <= t["p_adjusted"] <= 1 for t in metrics["paired_tests"] if t["users"])
    assert outputs["rating_errors_plot"].data  # one bar trace per protocol


def _pairs(frame: pd.DataFrame) -> set:
    return set(zip(frame["user_id"], frame["item_id"], strict=True))


def test_the_blend_is_weighed_on_validation_ratings_its_members_did_not_fit(outputs):
    """Per fold: the blend's weights come from the validation ratings (those the heads
    stop on), its classic members refitted without them for that; its test predictions
    are its weights applied to the members' test predictions (each member as trained
    for its own row), clipped to the stars; no test rating is fitted or weighed on."""
    splits = outputs["rating_splits"]
    for namespace, (protocol, fold) in FOLDS.items():
        train, test = select_fold(splits, protocol, fold)
        weights = outputs[f"{namespace}.rating_blend"]
        assert weights["members"] == RATINGS["blend"]
        held = [f for f in outputs["classic_fits"] if _pairs(f[2]) < _pairs(train)]
        # the blend's classic members, refitted on this fold's training ratings minus
        # the validation ratings they are then asked
        mine = [f for f in held if _pairs(f[1]) | _pairs(f[2]) == _pairs(train)]
        assert sorted(f[0] for f in mine) == ["biases", "svd"]
        valid = mine[0][2]
        assert weights["validation_ratings"] == len(valid) > 0
        if protocol == "next_in_time":
            assert (valid["time_part"] == "valid").all()
        assert not _pairs(valid) & _pairs(test) and not _pairs(mine[0][1]) & _pairs(
            valid
        )
        predictions = outputs[f"{namespace}.rating_predictions"]
        members = {m: predictions[predictions["model"] == m].reset_index(drop=True) for m in weights["members"]}  # fmt: skip
        mixed = predictions[predictions["model"] == "blend"].reset_index(drop=True)
        assert _pairs(mixed) == _pairs(test) and len(mixed) == len(test)
        expected = weights["intercept"] + sum(w * members[m]["prediction"].to_numpy() for m, w in weights["weights"].items())  # fmt: skip
        np.testing.assert_allclose(mixed["prediction"], np.clip(expected, 1.0, 5.0))
        assert weights["validation_rmse"]["blend"] <= min(weights["validation_rmse"][m] for m in weights["members"]) + 1e-9  # fmt: skip


def test_a_blend_of_classic_models_reads_their_validation_predictions_in_order(interactions):  # fmt: skip
    """A blend of classic members alone: `predict_with_classic_models` gives it their
    refits' predictions of the validation ratings, and a table whose rows are not those
    ratings in order (another run's) is refused rather than weighed."""
    settings = params("ratings", classic_models=["global_mean", "biases", "svd"], blend=["svd", "biases"],
                      svd={"n_factors": 4, "n_epochs": 3}, classic_jobs=1, comparisons=[])  # fmt: skip
    train, test = select_fold(split_ratings(interactions, settings), "random_folds", 2)
    fitted, held = nodes.hold_out_validation(train, settings, "random_folds")
    on_test, on_valid = nodes.predict_with_classic_models(train, fitted, held, test, settings)  # fmt: skip
    assert sorted(on_test["model"].unique()) == ["biases", "global_mean", "svd"]
    assert sorted(on_valid["model"].unique()) == ["biases", "svd"] and len(on_valid) == 2 * len(held)  # fmt: skip
    np.testing.assert_array_equal(on_valid.loc[on_valid["model"] == "svd", "prediction"],
                                  fit_predict("svd", fitted, held, {"n_factors": 4, "n_epochs": 3}, settings.seed))  # fmt: skip
    scale = {"range": (1.0, 5.0)}
    weights = nodes.fit_rating_blend(held, None, scale, on_valid, None, None, settings, params("training"))  # fmt: skip
    assert weights["members"] == ["svd", "biases"] and weights["validation_ratings"] == len(held)  # fmt: skip
    shuffled = on_valid.sample(frac=1.0, random_state=0)
    with pytest.raises(ValueError, match="'svd' predicts other ratings than the fold's validation ratings"):  # fmt: skip
        nodes.fit_rating_blend(held, None, scale, shuffled, None, None, settings, params("training"))  # fmt: skip


def test_a_blend_names_models_that_run():
    with pytest.raises(ValueError, match="blend: 'svdpp' is not among the models"):
        params("ratings", classic_models=["svd"], blend=["fine_tuned", "svdpp"], comparisons=[])  # fmt: skip
    with pytest.raises(ValueError, match="blend: two different models or more"):
        params("ratings", blend=["fine_tuned"])
    with pytest.raises(ValueError, match="'blend' is not among the models"):
        params("ratings", blend=[], comparisons=[["blend", "svd"]])
    with pytest.raises(ValueError, match="blend_penalties"):
        params("ratings", blend_penalties=[0.0, 1.0])
    with pytest.raises(ValueError, match="classic_jobs: a number of processes"):
        params("ratings", classic_jobs=0)


def test_comparisons_must_name_models_that_run():
    with pytest.raises(ValueError, match="'svdpp' is not among the models"):
        params(
            "ratings", classic_models=["svd"], blend=[], comparisons=[["svdpp", "svd"]]
        )


def test_the_head_a_fold_adds_is_the_kind_ratings_head_trains():
    """`add_rating_head` gives the pretrained and the scratch model the head that
    `ratings.head.rating_loss` names, the same draw for both; an unknown kind stops the
    run when the parameters are read."""
    scale = {"mean": 3.5, "range": (1.0, 5.0)}
    chosen = params("ratings", head={"rating_loss": "distribution"})
    first, second = (nodes.add_rating_head(SequenceRecModel(tiny_config()), scale, chosen) for _ in range(2))  # fmt: skip
    assert first.config.rating_loss == "distribution"
    assert first.rating_head[-1].out_features == 9  # the half stars 1, 1.5, ..., 5
    assert torch.equal(first.rating_head[0].weight, second.rating_head[0].weight)
    assert nodes.add_rating_head(SequenceRecModel(tiny_config()), scale, params("ratings")).config.rating_loss == "squared"  # fmt: skip
    ordinal = nodes.add_rating_head(SequenceRecModel(tiny_config()), scale, params("ratings", head={"rating_loss": "ordinal"}))  # fmt: skip
    assert ordinal.rating_head[-1].out_features == 1 and ordinal.rating_cutpoints.shape == (8,)  # fmt: skip
    with pytest.raises(ValueError, match="rating_loss"):
        params("ratings", head={"rating_loss": "hinge"})
