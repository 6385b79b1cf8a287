from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from maskrec.catalogue import CatalogueMismatch, ItemCatalogue
from maskrec.datasets import ArrayModelDataset, ModelFolderDataset
from maskrec.datasets.trained_models import SavedModel, TrainedModelsDataset
from maskrec.models.baselines import MostPopular, interaction_matrix
from maskrec.models.sequence import SequenceRecModel
from maskrec.pipelines.inference.nodes import (
    Rater,
    load_chosen_model,
    load_rating_model,
    recommend_for_all_users,
    recommend_for_history,
    recommend_for_requests,
)
from maskrec.registry import BY_NAME, RegisteredModel
from tests.helpers import params
from tests.models.test_sequence import tiny_config

ITEMS = pd.DataFrame(
    {
        "item_id": [1, 2, 3, 4],
        "original_item_id": [10, 20, 30, 40],
        "title": ["A", "B", "C", "D"],
        "year": [2000] * 4,
    }
)
INTERACTIONS = pd.DataFrame(
    {"user_id": [0, 0, 1], "item_id": [1, 2, 1], "rating": 4.0, "timestamp": [1, 2, 3]}
)
USERS = pd.DataFrame({"user_id": [0, 1], "original_user_id": [100, 200]})
POPULAR = MostPopular.fit(interaction_matrix([[1, 2, 3], [1, 2], [1]], n_items=4))
TRAINING = params("training")


def saved_models(folder: Path, **models) -> dict[str, SavedModel]:
    """`models` saved the way the catalog saves them, read back as inference reads them."""
    for name, model in models.items():
        kind = ModelFolderDataset if isinstance(model, SequenceRecModel) else ArrayModelDataset  # fmt: skip
        kind(filepath=str(folder / BY_NAME.get(name, RegisteredModel(name, "", "sequence")).dataset)).save(model)  # fmt: skip
    return TrainedModelsDataset(str(folder)).load()


def popular(item_ids=(10, 20, 30, 40)) -> MostPopular:
    """The most popular baseline with its own catalogue (as the baselines node keeps it)."""
    model = MostPopular.fit(interaction_matrix([[1, 2, 3], [1, 2], [1]], n_items=len(item_ids)))  # fmt: skip
    model.catalogue = ItemCatalogue(list(item_ids), [f"T{i}" for i in item_ids])
    return model


def test_only_the_chosen_model_is_loaded(tmp_path, monkeypatch):
    models = saved_models(tmp_path, ease=popular(), most_popular=popular(), item_knn=popular())  # fmt: skip
    loaded = []
    monkeypatch.setattr(ArrayModelDataset, "load", lambda self: loaded.append(self.path.name) or POPULAR)  # fmt: skip
    stats = {"ease": {"valid_ndcg@10": 0.3}, "most_popular": {"valid_ndcg@10": 0.1}}
    model, name = load_chosen_model(stats, models, ITEMS, params("inference", model="best"))  # fmt: skip
    assert (name, loaded) == ("ease", ["ease_baseline"])  # best on validation
    _, name = load_chosen_model(stats, models, ITEMS, params("inference", model="item_knn"))  # fmt: skip
    assert (name, loaded) == ("item_knn", ["ease_baseline", "item_knn_baseline"])


def test_a_model_of_another_catalogue_stops_inference_before_its_weights_are_read(
    tmp_path, monkeypatch
):
    models = saved_models(tmp_path, ease=popular((10, 20, 30, 99)))
    monkeypatch.setattr(ArrayModelDataset, "load", lambda self: pytest.fail("weights read"))  # fmt: skip
    stats = {"ease": {"valid_ndcg@10": 0.3}}
    with pytest.raises(CatalogueMismatch, match=r"ease .* on another catalogue.*kedro run --pipelines pretraining,fine_tuning,baselines,evaluation") as caught:  # fmt: skip
        load_chosen_model(stats, models, ITEMS, params("inference"))
    assert "maskrec serve" in str(
        caught.value
    )  # the model can still be served as trained
    # same size, other films: caught by the fingerprint, not only by the count
    assert len(popular((10, 20, 30, 99)).catalogue.original_ids) == len(ITEMS)


def test_a_skipped_model_is_never_chosen_and_naming_it_is_explained(tmp_path):
    models = saved_models(tmp_path, ease=popular(), most_popular=popular())
    stats = {"ease": {"kind": "baseline", "skipped": "too large"}, "most_popular": {"valid_ndcg@10": 0.1}}  # fmt: skip
    assert load_chosen_model(stats, models, ITEMS, params("inference", model="best"))[1] == "most_popular"  # fmt: skip
    with pytest.raises(
        ValueError, match="inference.model='ease' was skipped in this run"
    ):
        load_chosen_model(stats, models, ITEMS, params("inference", model="ease"))


def test_recommendations_for_everyone_skip_what_they_have_seen():
    recs = recommend_for_all_users(
        INTERACTIONS,
        ITEMS,
        USERS,
        POPULAR,
        "most_popular",
        Rater(),
        params("inference", top_k=2),
        TRAINING,
    )
    assert recs["predicted_rating"].isna().all()  # no rating model trained
    assert recs[recs["user_id"] == 100]["item_id"].tolist() == [30, 40]
    assert recs[recs["user_id"] == 200]["title"].tolist() == ["B", "C"]
    assert (
        recs["rank"].tolist() == [1, 2, 1, 2]
        and (recs["model"] == "most_popular").all()
    )


def test_recommendations_for_a_given_history():
    recs = recommend_for_history(
        ITEMS,
        POPULAR,
        "most_popular",
        params("inference", top_k=1, history=[10, 30]),
        TRAINING,
    )
    assert recs["item_id"].tolist() == [20]
    assert recommend_for_history(
        ITEMS, POPULAR, "most_popular", params("inference"), TRAINING
    ).empty


def test_unknown_items_and_models_are_named():
    with pytest.raises(ValueError, match=r"item ids \[99\]"):
        recommend_for_history(ITEMS, POPULAR, "most_popular", params("inference", history=[10, 99]), TRAINING)  # fmt: skip
    with pytest.raises(ValueError, match="model='nope' is not 'best' or one of"):
        params("inference", model="nope")


def test_recommendations_for_each_history_of_a_file_by_request():
    requests = pd.DataFrame({"request_id": ["x", "y"], "history": [[10, 30], [20]],
                             "where": ["h.csv, line 2", "h.csv, line 3"]})  # fmt: skip
    recs = recommend_for_requests(requests, ITEMS, POPULAR, "most_popular", params("inference", top_k=2), TRAINING)  # fmt: skip
    assert recs.loc[recs["request_id"] == "x", "item_id"].tolist() == [20, 40]
    assert recs.loc[recs["request_id"] == "y", "item_id"].tolist() == [10, 30]
    assert recs["rank"].tolist() == [1, 2, 1, 2]
    empty = requests.iloc[:0]
    assert recommend_for_requests(empty, ITEMS, POPULAR, "most_popular", params("inference"), TRAINING).empty  # fmt: skip
    bad = requests.assign(history=[[10], [20, 77]])
    with pytest.raises(ValueError, match=r"h.csv, line 3: item ids \[77\]"):
        recommend_for_requests(
            bad, ITEMS, POPULAR, "most_popular", params("inference"), TRAINING
        )


def rating_model(item_ids: list[int]) -> SequenceRecModel:
    """A rating head whose predictions depend on the item (item biases 0.1 x id)."""
    torch.manual_seed(0)
    config = tiny_config(n_items=len(item_ids), hidden_size=8, intermediate_size=16, max_len=4, item_ids=item_ids)  # fmt: skip
    model = SequenceRecModel(config).with_rating_head(3.0, (1.0, 5.0)).eval()
    with torch.no_grad():
        model.rating_item_bias.weight[:, 0] = 0.1 * torch.arange(len(item_ids) + 2)
    return model


def test_each_recommendation_carries_the_rating_models_prediction(tmp_path):
    rater = load_rating_model(saved_models(tmp_path, rating=rating_model([10, 20, 30, 40])), ITEMS)  # fmt: skip
    recs = recommend_for_all_users(INTERACTIONS, ITEMS, USERS, POPULAR, "most_popular", rater, params("inference", top_k=2), TRAINING)  # fmt: skip
    # the head's last layer starts at zero: 3.0 + the item's bias
    expected = 3.0 + 0.1 * recs["item_id"].map({10: 1, 20: 2, 30: 3, 40: 4})
    np.testing.assert_allclose(recs["predicted_rating"], expected, atol=1e-6)


def test_a_rating_model_of_another_catalogue_or_none_is_not_used(tmp_path, caplog):
    other = saved_models(tmp_path / "other", rating=rating_model([10, 20, 30, 99]))
    assert load_rating_model(other, ITEMS).model is None
    assert "another catalogue" in caplog.text
    assert load_rating_model(saved_models(tmp_path / "none"), ITEMS).model is None
