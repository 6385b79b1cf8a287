"""A log of one's own (`source=<file or folder>`): default and mapped column names, text
ids, implicit feedback, Parquet, an item table with categories, and every malformed variant
refused with file, line (or Parquet row) and column."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from kedro.io import DatasetError

from maskrec.datasets.movielens import MovieLensDataset
from maskrec.sample import SampleSpec, write_event_log

HEADER = "user_id,item_id,timestamp,rating\n"
SHOP = {"user": "visitor", "item": "sku", "timestamp": "event_time", "title": "name"}


def _dataset(
    source: Path, items: Path | None = None, **columns: str
) -> MovieLensDataset:
    return MovieLensDataset(source=str(source), items=str(items) if items else None, columns=columns)  # fmt: skip


def _write_csv(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_a_csv_with_the_default_column_names_needs_no_other_parameter(tmp_path):
    log = _write_csv(
        tmp_path / "log.csv",
        "user_id,item_id,timestamp,rating\n7,100,1000,4.5\n7,101,1001,2\n8,100,999,7\n",
    )
    dataset = _dataset(log)
    loaded = dataset.load()
    interactions, items = loaded["interactions"], loaded["items"]
    assert interactions.dtypes.astype(str).tolist() == ["int64", "int64", "float64", "int64"]  # fmt: skip
    assert interactions["rating"].tolist() == [
        4.5,
        2.0,
        7.0,
    ]  # any finite rating: no 0.5-5 range
    assert sorted(items["item_id"]) == [100, 101] and (items["genres"] == "").all()
    assert loaded["source"] == {"source": str(log), "layout": "interaction-log", "file": str(log), "items_file": None, "ratings": True}  # fmt: skip
    assert dataset.has_ratings() and dataset.catalogue_size() is None


def test_a_shop_log_with_text_ids_no_ratings_and_categories(tmp_path):
    events, products = write_event_log(SampleSpec(n_users=40, n_items=60, n_ratings=600), tmp_path / "shop")  # fmt: skip
    dataset = _dataset(events, products, **SHOP)
    loaded = dataset.load()
    interactions, items = loaded["interactions"], loaded["items"]
    raw = pd.read_parquet(events)
    assert (
        interactions["user_id"].tolist() == raw["visitor"].tolist()
    )  # text ids, as given
    assert interactions["item_id"].iloc[0].startswith("sku-")
    assert interactions["rating"].isna().all() and not loaded["source"]["ratings"]
    assert not dataset.has_ratings()
    expected = (raw["event_time"] - pd.Timestamp(0)) // pd.Timedelta(seconds=1)
    assert (
        interactions["timestamp"].tolist() == expected.tolist()
    )  # a Parquet timestamp
    first = pd.read_csv(products).iloc[0]
    row = items.set_index("item_id").loc[first["sku"]]
    assert row["title"] == first["name"] and row["genres"] == first["categories"]


def test_numeric_item_features_are_read_by_name_and_refused_with_line_and_column(tmp_path):  # fmt: skip
    log = _write_csv(tmp_path / "log.csv", HEADER + "1,1,3,4\n1,2,4,4\n")
    items = _write_csv(tmp_path / "items.csv", "item_id,price,weight\n1,9.5,\n2,12,0.25\n")  # fmt: skip
    loaded = _dataset(log, items, features="price; weight").load()["items"].set_index("item_id")  # fmt: skip
    assert loaded["feature_price"].tolist() == [9.5, 12.0]
    assert np.isnan(loaded.loc[1, "feature_weight"]) and loaded.loc[2, "feature_weight"] == 0.25  # fmt: skip
    with pytest.raises(DatasetError, match=r"items\.csv: missing column 'size' \(named in columns.features\)"):  # fmt: skip
        _dataset(log, items, features="size").load()
    bad = _write_csv(tmp_path / "bad.csv", "item_id,price\n1,9.5\n2,cheap\n")
    with pytest.raises(DatasetError, match=r"bad\.csv, line 3, column 'price': 'cheap' is not a finite number"):  # fmt: skip
        _dataset(log, bad, features="price").load()


def test_a_folder_holds_interactions_and_items(tmp_path):
    folder = tmp_path / "log"
    folder.mkdir()
    pd.DataFrame({"user_id": ["a", "a", "b"], "item_id": [3, 4, 3], "timestamp": ["2020-01-01", "2020-01-02", "2020-01-03"]}).to_parquet(folder / "interactions.parquet")  # fmt: skip
    _write_csv(folder / "items.csv", "item_id,title,categories,year\n3,Kettle,Kitchen|Home,2019\n4,Drill,Tools,\n")  # fmt: skip
    loaded = _dataset(folder).load()
    assert loaded["interactions"]["item_id"].tolist() == [
        3,
        4,
        3,
    ]  # whole numbers: integers
    items = loaded["items"].set_index("item_id")
    assert items.loc[3, "genres"] == "Kitchen|Home" and items.loc[3, "year"] == 2019
    assert pd.isna(items.loc[4, "year"])
    assert loaded["source"]["items_file"] == str(folder / "items.csv")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("1,2,3,4\n,5,6,7\n", r"log\.csv, line 3, column 'user_id': missing value"),
        ("1,2,3,4\n1, ,6,7\n", r"log\.csv, line 3, column 'item_id': empty id"),
        (
            "1,2,3,4\n1,5,yesterday,7\n",
            r"log\.csv, line 3, column 'timestamp': cannot parse 'yesterday'",
        ),  # fmt: skip
        (
            "1,2,3,4\n1,5,6,inf\n",
            r"log\.csv, line 3, column 'rating': rating 'inf' is not finite",
        ),  # fmt: skip
        (
            "1,2,3,4\n1,5,6,good\n",
            r"log\.csv, line 3, column 'rating': rating 'good' is not a number",
        ),  # fmt: skip
    ],
)
def test_each_bad_cell_names_file_line_and_column(tmp_path, body, message):
    log = _write_csv(tmp_path / "log.csv", HEADER + body)
    with pytest.raises(DatasetError, match=message):
        _dataset(log).load()


def test_a_missing_column_says_how_to_name_it(tmp_path):
    log = _write_csv(tmp_path / "log.csv", "visitor,item_id,timestamp\n1,2,3\n")
    with pytest.raises(DatasetError, match=r"log\.csv: missing column\(s\) \['user_id'\].*columns\.user="):  # fmt: skip
        _dataset(log).load()
    assert len(_dataset(log, user="visitor").load()["interactions"]) == 1


def test_parquet_errors_name_the_row(tmp_path):
    path = tmp_path / "log.parquet"
    pd.DataFrame({"user_id": ["a", "b", None], "item_id": [1, 2, 3], "timestamp": [1, 2, 3]}).to_parquet(path)  # fmt: skip
    with pytest.raises(DatasetError, match=r"log\.parquet, row 3, column 'user_id': missing value"):  # fmt: skip
        _dataset(path).load()


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (
            "item_id,year\n1,1999\n2,soon\n",
            r"items\.csv, line 3, column 'year': year 'soon' is not a whole number",
        ),  # fmt: skip
        (
            "item_id,title\n1,Kettle\nx,Drill\n",
            r"items\.csv, line 3, column 'item_id': id 'x' is not an integer",
        ),  # fmt: skip
        ("title\nKettle\n", r"items\.csv: missing column 'item_id'"),
    ],
)
def test_a_bad_item_table_names_file_line_and_column(tmp_path, items, message):
    log = _write_csv(tmp_path / "log.csv", HEADER + "1,1,3,4\n")
    with pytest.raises(DatasetError, match=message):
        _dataset(log, _write_csv(tmp_path / "items.csv", items)).load()


def test_ambiguous_folders_and_misplaced_item_tables_are_refused(tmp_path):
    folder = tmp_path / "log"
    folder.mkdir()
    _write_csv(folder / "interactions.csv", HEADER + "1,1,3,4\n")
    pd.DataFrame({"user_id": [1], "item_id": [1], "timestamp": [3]}).to_parquet(folder / "interactions.parquet")  # fmt: skip
    with pytest.raises(DatasetError, match="both interactions.csv and interactions.parquet"):  # fmt: skip
        _dataset(folder).load()
    with pytest.raises(DatasetError, match="items=.* is read only with a log"):
        MovieLensDataset(source="sample", items=str(folder / "interactions.csv"), cache_dir=str(tmp_path)).log_files()  # fmt: skip
    with pytest.raises(DatasetError, match="columns: .*known: user, item"):
        MovieLensDataset(source="sample", columns={"customer": "c"})
    with pytest.raises(DatasetError, match="columns: columns.separator is empty"):
        MovieLensDataset(source="sample", columns={"separator": ""})


def test_an_implicit_source_refuses_what_needs_ratings_at_run_start():
    from maskrec.hooks import check_ratings
    from tests.helpers import params

    check_ratings("log.csv", True, {"tuning": params("tuning")}, predicts_ratings=True)
    check_ratings("log.csv", False, {"data_processing": params("data_processing")}, predicts_ratings=False)  # fmt: skip
    with pytest.raises(ValueError, match=r"'log.csv' has no ratings .* the rating_prediction pipeline"):  # fmt: skip
        check_ratings("log.csv", False, {}, predicts_ratings=True)
    with pytest.raises(ValueError, match=r"positive_threshold=4.0 keeps ratings"):
        check_ratings("log.csv", False, {"data_processing": params("data_processing", positive_threshold=4.0)}, False)  # fmt: skip
    with pytest.raises(
        ValueError, match=r"tuning.models names rating studies \['svd'\]"
    ):
        check_ratings("log.csv", False, {"tuning": params("tuning", models=["sasrec", "svd"])}, False)  # fmt: skip


def test_text_ids_keep_their_fingerprint_apart_from_integer_ids():
    from maskrec.catalogue import items_key, original_ids

    assert original_ids(np.array([3, 1])) == [3, 1]
    assert original_ids(pd.Series(["sku-3", "sku-1"])) == ["sku-3", "sku-1"]
    assert original_ids([3, 1]) == [3, 1]  # a config.json's list
    assert items_key([3, 1]) == items_key(np.array([3, 1], dtype=np.int64))
    assert items_key(["3", "1"]) != items_key([3, 1])
