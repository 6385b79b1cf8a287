from __future__ import annotations

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from maskrec.pipelines.data_processing import nodes
from tests.helpers import params


def _raw(rows, items=None):
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])
    items = (
        items
        if items is not None
        else pd.DataFrame(
            {
                "item_id": sorted(frame["item_id"].unique()),
                "title": "t",
                "year": 2000,
                "genres": "Drama",
            }
        )
    )
    return {"interactions": frame, "items": items, "source": {"source": "test"}}


def test_cleaning_drops_exact_duplicates_and_keeps_latest_rating():
    raw = _raw([
        (1, 10, 4.0, 100), (1, 10, 4.0, 100),  # exact duplicate
        (1, 20, 2.0, 300), (1, 20, 5.0, 200),  # repeated pair: the later (t=300) wins
        (2, 10, 3.0, 50), (2, 10, 1.0, 50),    # same time: the later line wins
    ])  # fmt: skip
    cleaned, counts = nodes.clean_interactions(raw, params("data_processing"))
    assert counts == {
        "rows_in": 6,
        "dropped_exact_duplicates": 1,
        "dropped_repeated_user_item": 2,
        "dropped_below_threshold": 0,
    }
    kept = cleaned.set_index(["user_id", "item_id"])["rating"].to_dict()
    assert kept == {(1, 10): 4.0, (1, 20): 2.0, (2, 10): 1.0}


def test_positive_threshold():
    raw = _raw([(1, 10, 4.0, 1), (1, 20, 3.5, 2), (1, 30, 3.0, 3)])
    cleaned, counts = nodes.clean_interactions(
        raw, params("data_processing", positive_threshold=3.5)
    )
    assert cleaned["item_id"].tolist() == [10, 20]
    assert counts["dropped_below_threshold"] == 1


def test_k_core_needs_more_than_one_pass():
    # Item 99 has one rating; dropping it leaves user 3 with one rating, which must go too,
    # which in turn leaves item 40 with one rating.
    rows = [(u, i, 4.0, t) for t, (u, i) in enumerate(
        [(1, 10), (1, 20), (2, 10), (2, 20), (3, 99), (3, 40), (4, 40), (4, 10), (4, 20)]
    )]  # fmt: skip
    rules = params("data_processing", min_user_interactions=2, min_item_interactions=2)
    frame, stats = nodes.filter_k_core(
        pd.DataFrame(rows, columns=nodes.INTERACTION_COLUMNS), rules
    )
    assert sorted(frame["user_id"].unique()) == [1, 2, 4]
    assert sorted(frame["item_id"].unique()) == [10, 20]
    assert stats["k_core_rounds"] >= 2


@settings(max_examples=60, deadline=None)
@given(
    pairs=st.lists(
        st.tuples(st.integers(0, 12), st.integers(0, 15)),
        min_size=1,
        max_size=120,
        unique=True,
    ),
    min_user=st.integers(1, 4),
    min_item=st.integers(1, 4),
)
def test_k_core_reaches_the_largest_fixed_point(pairs, min_user, min_item):
    frame = pd.DataFrame(
        [(u, i, 3.0, n) for n, (u, i) in enumerate(pairs)],
        columns=nodes.INTERACTION_COLUMNS,
    )
    rules = params(
        "data_processing",
        min_user_interactions=min_user,
        min_item_interactions=min_item,
    )
    try:
        result, _ = nodes.filter_k_core(frame, rules)
    except ValueError:
        result = frame.iloc[0:0]
    if len(result):
        assert result.groupby("user_id").size().min() >= min_user
        assert result.groupby("item_id").size().min() >= min_item
    # Maximality: the k-core is unique; peeling by brute force gives the same set.
    kept = set(pairs)
    changed = True
    while changed:
        users = (
            pd.Series([u for u, _ in kept]).value_counts()
            if kept
            else pd.Series(dtype=int)
        )
        items = (
            pd.Series([i for _, i in kept]).value_counts()
            if kept
            else pd.Series(dtype=int)
        )
        new = {(u, i) for u, i in kept if users[u] >= min_user and items[i] >= min_item}
        changed, kept = new != kept, new
    assert set(zip(result["user_id"], result["item_id"], strict=True)) == kept


def test_remap_ids_is_contiguous_and_sorted_by_user_then_time():
    frame = pd.DataFrame(
        [(50, 7, 4.0, 30), (50, 3, 4.0, 10), (9, 7, 2.0, 5), (50, 9, 1.0, 10)],
        columns=nodes.INTERACTION_COLUMNS,
    )
    remapped, user_map, item_map = nodes.remap_ids(frame)
    assert user_map.to_dict("list") == {"user_id": [0, 1], "original_user_id": [9, 50]}
    assert item_map.to_dict("list") == {
        "item_id": [1, 2, 3],
        "original_item_id": [3, 7, 9],
    }
    # user 50 -> 1; its two t=10 events keep their incoming order (item 3 then 9)
    assert remapped[["user_id", "item_id", "timestamp"]].values.tolist() == [
        [0, 2, 5], [1, 1, 10], [1, 3, 10], [1, 2, 30]
    ]  # fmt: skip


def test_item_features_multi_hot_and_report():
    items = pd.DataFrame(
        {
            "item_id": [3, 7],
            "title": ["A", "B"],
            "year": pd.array([1999, None], dtype="Int64"),
            "genres": ["Drama|War", ""],
        }
    )
    raw = _raw([(1, 3, 4.0, 1), (1, 7, 4.0, 2), (1, 8, 4.0, 3)], items=items)
    _, _, item_map = nodes.remap_ids(raw["interactions"])
    features = nodes.build_item_features(raw, item_map)
    assert features["genre_Drama"].tolist() == [1, 0, 0]
    assert features["genre_War"].tolist() == [1, 0, 0]
    assert features["title"].tolist() == [
        "A",
        "B",
        "",
    ]  # item 8 is not in the movies file

    cleaned, c1 = nodes.clean_interactions(raw, params("data_processing"))
    kcore, c2 = nodes.filter_k_core(
        cleaned, params("data_processing", min_user_interactions=1)
    )
    remapped, _, _ = nodes.remap_ids(kcore)
    report = nodes.build_data_quality_report(raw, c1, c2, remapped)
    assert report["read"] == {
        "rows": 3,
        "users": 1,
        "items": 3,
        "items_in_catalogue_file": 2,
    }
    assert report["kept"]["density"] == 1.0
