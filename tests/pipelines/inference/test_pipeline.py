"""The inference pipeline on an in-memory catalog, reading saved models lazily."""

from __future__ import annotations

import pandas as pd

from maskrec.datasets import NewFilmsDataset, TrainedModelsDataset
from tests.helpers import quick_parameters, run_pipeline, small_split


def test_recommendations_come_from_the_model_best_on_validation(
    models_folder, trained, caplog
):
    data = small_split()
    known = data["item_features"]["original_item_id"].tolist()
    stats = {"ease": {"valid_ndcg@10": 0.2}, "sasrec": {"valid_ndcg@10": 0.3}, "most_popular": {"valid_ndcg@10": 0.1}}  # fmt: skip
    inputs = {"interactions": data["interactions"], "item_features": data["item_features"], "user_map": data["user_map"],
              "model_stats": stats, "trained_models": TrainedModelsDataset(path=str(models_folder)).load(),
              "new_films": NewFilmsDataset().load(), "new_films_model": trained["new_films_model"],
              "history_requests": pd.DataFrame({"request_id": ["a", "b"], "where": ["f, line 2", "f, line 3"],
                                                "history": [known[:3], known[3:4]]}),
              "params:inference": quick_parameters()["params:inference"], "params:training": quick_parameters()["params:training"]}  # fmt: skip
    from maskrec.pipelines.inference import create_pipeline

    out = run_pipeline(create_pipeline(), inputs, caplog)
    recs, mine = out["recommendations"], out["history_recommendations"]
    assert (recs["model"] == "sasrec").all() and (mine["model"] == "sasrec").all()
    assert recs["predicted_rating"].isna().all()  # no rating model in the folder
    assert not recs["new_film"].any()  # no film added after training
    assert recs["user_id"].nunique() == data["interactions"]["user_id"].nunique()
    assert len(mine) == 10 and not set(mine["item_id"]) & set(quick_parameters()["params:inference"].history)  # fmt: skip
    requests = out["request_recommendations"]
    assert requests.groupby("request_id").size().to_dict() == {"a": 10, "b": 10}
    assert not set(requests.loc[requests["request_id"] == "a", "item_id"]) & set(
        known[:3]
    )


def test_films_added_after_training_are_recommended_from_content_without_retraining(models_folder, trained, tmp_path, caplog):  # fmt: skip
    """Two films appended to the catalogue after training (`--params new_films=<csv>`):
    every user can be recommended them, scored by the mixture from content alone, flagged
    `new_film`, without a predicted rating; a history naming one is refused (no model
    has read it), and the films a model trained on keep their order."""
    from maskrec.pipelines.inference import create_pipeline

    data = small_split()
    items = data["item_features"]
    genres = [c.removeprefix("genre_") for c in items.columns if c.startswith("genre_")]
    file = tmp_path / "new_films.csv"
    new_ids = [int(items["original_item_id"].max()) + 1, int(items["original_item_id"].max()) + 7]  # fmt: skip
    file.write_text(f"movieId,title,genres\n{new_ids[0]},Brand New (2031),{genres[0]}|{genres[1]}\n"
                    f"{new_ids[1]},\"Another, Newer (2032)\",{genres[2]}\n")  # fmt: skip
    everything = len(items) + 2
    stats = {"sasrec": {"valid_ndcg@10": 0.3, "temperature": 1.0}}
    inputs = {"interactions": data["interactions"], "item_features": items, "user_map": data["user_map"],
              "model_stats": stats, "trained_models": TrainedModelsDataset(path=str(models_folder)).load(),
              "new_films": NewFilmsDataset(file=str(file)).load(), "new_films_model": trained["new_films_model"],
              "history_requests": NewFilmsDataset().load().iloc[:0].assign(request_id=[], history=[]),
              "params:inference": quick_parameters()["params:inference"].model_copy(update={"top_k": everything}),
              "params:training": quick_parameters()["params:training"]}  # fmt: skip
    out = run_pipeline(create_pipeline(), inputs, caplog)
    recs = out["recommendations"]
    new = recs[recs["new_film"]]
    assert set(new["item_id"]) == set(new_ids)
    assert new.groupby("user_id").size().eq(2).all()  # every user, both films
    assert recs.groupby("user_id").size().add(data["interactions"].groupby("user_id").size().to_numpy()).eq(everything).all()  # fmt: skip
    assert (
        new["predicted_rating"].isna().all() and new["score"].map(float).gt(-1e30).all()
    )
    assert set(new["title"]) == {"Brand New", "Another, Newer"}
    assert "2 films added after training scored from content" in caplog.text
    # films with training events keep the model's own order (the others in the catalogue,
    # e.g. rated only in validation, are scored from content like the new ones)
    inputs["new_films"] = NewFilmsDataset().load()
    plain = run_pipeline(create_pipeline(), inputs)["recommendations"]
    trained_ids = set(items.loc[trained["new_films_model"].arrays["trained"][1:] == 1, "original_item_id"])  # fmt: skip

    def order(frame: pd.DataFrame, user: int) -> list[int]:
        return [
            i
            for i in frame.loc[frame["user_id"] == user, "item_id"]
            if i in trained_ids
        ]

    for user in recs["user_id"].unique()[:5]:
        assert order(recs, user) == order(plain, user)
