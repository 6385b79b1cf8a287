"""Split invariants, checked on random interaction tables (hypothesis)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from maskrec.pipelines.data_split.nodes import split_interactions
from tests.helpers import no_given_targets, params


def split(frame: pd.DataFrame, **settings):
    """The split node with the configured parameters, without cold users unless asked."""
    settings = {"cold_user_fraction": 0.0, **settings}
    unused = pd.DataFrame()  # the id maps matter only for strategy 'given'
    try:
        return split_interactions(
            frame, unused, unused, no_given_targets(), params("data_split", **settings)
        )[:4]  # the new-item hold-out (fifth output) has tests of its own
    except (
        ValueError
    ) as exc:  # a table no user of which can be tested: refused, by design
        assume("left no test target" not in str(exc))
        raise


@st.composite
def interaction_tables(draw):
    """Users with 1-12 distinct items each; timestamps with frequent ties."""
    rows = []
    for user in range(draw(st.integers(1, 15))):
        items = draw(st.lists(st.integers(1, 40), min_size=1, max_size=12, unique=True))
        times = draw(
            st.lists(st.integers(0, 6), min_size=len(items), max_size=len(items))
        )
        rows += [(user, item, 4.0, t) for item, t in zip(items, times, strict=True)]
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])
    # data_processing hands over a table sorted by (user, time), ties in file order
    return frame.sort_values(["user_id", "timestamp"], kind="stable").reset_index(
        drop=True
    )


def _events(frame):
    return {u: g["item_id"].tolist() for u, g in frame.groupby("user_id")}


def _check_common(frame, train, valid, test, cold):
    events = _events(frame)
    cold_ids = set(cold["user_id"])
    trained = {
        u: list(items)
        for u, items in zip(train["user_id"], train["item_ids"], strict=True)
    }

    # Cold users never reach training or validation.
    assert not cold_ids & set(trained)
    assert not cold_ids & set(valid["user_id"])
    assert set(test.loc[test["is_cold"], "user_id"]) <= cold_ids

    for user, items in trained.items():
        # Training keeps each user's time order (a subsequence of their history).
        history = events[user]
        positions = [history.index(i) for i in items]
        assert positions == sorted(positions)
    for table in (valid, test):
        for user, context, target in zip(
            table["user_id"], table["context"], table["target_item"], strict=True
        ):
            # No validation or test target is in anything training sees.
            assert target not in trained.get(user, [])
            assert target not in context
            assert len(context) > 0
            assert set(context) <= set(events[user])
    # Valid and test targets are disjoint per user.
    pairs_v = set(zip(valid["user_id"], valid["target_item"], strict=True))
    pairs_t = set(zip(test["user_id"], test["target_item"], strict=True))
    assert not pairs_v & pairs_t
    # Timestamps in the sequences are ordered.
    for stamps in train["timestamps"]:
        assert list(stamps) == sorted(stamps)
    return events, trained


@settings(max_examples=80, deadline=None)
@given(
    frame=interaction_tables(),
    cold_fraction=st.sampled_from([0.0, 0.3]),
    seed=st.integers(0, 3),
)
def test_leave_one_out_invariants(frame, cold_fraction, seed):
    train, valid, test, cold = split(frame, cold_user_fraction=cold_fraction, seed=seed)
    events, trained = _check_common(frame, train, valid, test, cold)

    for user, history in events.items():
        if user in set(cold["user_id"]):
            row = test[test["user_id"] == user].iloc[0]
            assert (
                row["target_item"] == history[-1]
                and list(row["context"]) == history[:-1]
            )
        elif len(history) >= 3:
            assert trained[user] == history[:-2]
            v = valid[valid["user_id"] == user].iloc[0]
            t = test[test["user_id"] == user].iloc[0]
            assert (v["target_item"], list(v["context"])) == (history[-2], history[:-2])
            assert (t["target_item"], list(t["context"])) == (history[-1], history[:-1])
        else:  # too short to hold out anything: all of it trains, no targets
            assert trained[user] == history
            assert user not in set(valid["user_id"]) | set(test["user_id"])
    # Every event is in exactly one place.
    warm_events = sum(
        len(h) for u, h in events.items() if u not in set(cold["user_id"])
    )
    warm_targets = len(valid) + int((~test["is_cold"]).sum())
    assert sum(map(len, train["item_ids"])) + warm_targets == warm_events


@settings(max_examples=60, deadline=None)
@given(frame=interaction_tables(), seed=st.integers(0, 3))
def test_temporal_split_never_trains_on_the_future(frame, seed):
    train, valid, test, cold = split(
        frame,
        strategy="temporal",
        seed=seed,
        temporal_valid_quantile=0.5,
        temporal_test_quantile=0.75,
    )
    _check_common(frame, train, valid, test, cold)
    times = dict(
        zip(
            zip(frame["user_id"], frame["item_id"], strict=True),
            frame["timestamp"],
            strict=True,
        )
    )
    last_train = max((t for stamps in train["timestamps"] for t in stamps), default=-1)
    for table in (valid, test):
        for user, target in zip(table["user_id"], table["target_item"], strict=True):
            assert times[(user, target)] > last_train
    # Each user has at most one target per split.
    assert valid["user_id"].is_unique and test["user_id"].is_unique


@settings(max_examples=60, deadline=None)
@given(frame=interaction_tables(), seed=st.integers(0, 3))
def test_future_window_holds_every_later_unseen_event_and_trains_on_none(frame, seed):
    common = {
        "seed": seed,
        "temporal_valid_quantile": 0.5,
        "temporal_test_quantile": 0.75,
    }
    train, valid, test, cold = split(frame, strategy="future_window", **common)
    _check_common(frame, train, valid, test, cold)
    # the same training data, validation and first test targets as the temporal split
    temporal = split(frame, strategy="temporal", **common)
    pd.testing.assert_frame_equal(train, temporal[0])
    assert test["target_item"].tolist() == temporal[2]["target_item"].tolist()
    cut = np.quantile(frame["timestamp"], 0.75)
    for user, context, first, window in zip(test["user_id"], test["context"], test["target_item"], test["target_items"], strict=True):  # fmt: skip
        later = frame[(frame["user_id"] == user) & (frame["timestamp"] >= cut)]
        expected = [i for i in later.sort_values("timestamp", kind="stable")["item_id"] if i not in set(context)]  # fmt: skip
        assert window.tolist() == expected and window[0] == first
    trained = {(u, i) for u, items in zip(train["user_id"], train["item_ids"], strict=True) for i in items}  # fmt: skip
    assert not trained & {(u, i) for u, w in zip(test["user_id"], test["target_items"], strict=True) for i in w}  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(frame=interaction_tables(), seed=st.integers(0, 3))
def test_random_split_counts(frame, seed):
    train, valid, test, cold = split(
        frame,
        strategy="random",
        seed=seed,
        random_valid_ratio=0.2,
        random_test_ratio=0.2,
    )
    events, trained = _check_common(frame, train, valid, test, cold)
    for user, history in events.items():
        held = valid["user_id"].eq(user).sum() + test["user_id"].eq(user).sum()
        if len(history) >= 3:
            assert held >= 2 and len(trained[user]) >= 1
            assert len(trained[user]) + held == len(history)


def test_splits_are_deterministic_and_seeded():
    frame = pd.DataFrame(
        [(u, i, 4.0, i % 3) for u in range(40) for i in range(1, 8)],
        columns=["user_id", "item_id", "rating", "timestamp"],
    )
    first = split(frame, cold_user_fraction=0.25, seed=7)
    second = split(frame, cold_user_fraction=0.25, seed=7)
    for a, b in zip(first, second, strict=True):
        pd.testing.assert_frame_equal(a, b)
    other = split(frame, cold_user_fraction=0.25, seed=8)
    assert len(first[3]) == 10
    assert first[3]["user_id"].tolist() != other[3]["user_id"].tolist()


def test_timestamp_ties_follow_incoming_order():
    # Three events at the same second: the last line is the test target.
    frame = pd.DataFrame(
        [(0, 5, 4.0, 9), (0, 6, 4.0, 9), (0, 4, 4.0, 9)],
        columns=["user_id", "item_id", "rating", "timestamp"],
    )
    train, valid, test, _ = split(frame)
    assert train["item_ids"].tolist() == [[5]]
    assert valid["target_item"].tolist() == [6] and test["target_item"].tolist() == [4]


def test_invalid_split_parameters_name_the_field():
    with pytest.raises(ValueError, match="temporal_valid_quantile must be below"):
        params("data_split", temporal_valid_quantile=0.9, temporal_test_quantile=0.5)
    with pytest.raises(ValueError, match="cold_user_fraction"):
        params("data_split", cold_user_fraction=1.5)
    with pytest.raises(
        ValueError, match="cold_user_fraction must be 0 with strategy 'given'"
    ):
        params("data_split", strategy="given", cold_user_fraction=0.1)


def test_split_with_given_targets_uses_exactly_those_items():
    from maskrec.pipelines.data_split.nodes import split_with_given_targets

    interactions = pd.DataFrame(
        [
            (0, 1, 4.0, 1),
            (0, 2, 4.0, 2),
            (0, 3, 4.0, 2),
            (0, 4, 4.0, 3),
            (1, 2, 4.0, 1),
            (1, 4, 4.0, 2),
            (1, 1, 4.0, 3),
        ],
        columns=["user_id", "item_id", "rating", "timestamp"],
    )
    user_map = pd.DataFrame({"user_id": [0, 1], "original_user_id": [10, 11]})
    item_map = pd.DataFrame(
        {"item_id": [1, 2, 3, 4], "original_item_id": [101, 102, 103, 104]}
    )
    # user 10's targets disagree with a plain stable sort on the tie at t=2 (102 vs 103)
    targets = pd.DataFrame(
        {"user_id": [10, 11], "valid_item": [102, 104], "test_item": [104, 101]}
    )
    train, valid, test = split_with_given_targets(
        interactions, targets, user_map, item_map
    )
    assert train["item_ids"].map(list).tolist() == [[1, 3], [2]]
    assert valid["target_item"].tolist() == [2, 4] and valid["context"].map(
        list
    ).tolist() == [[1, 3], [2]]
    assert test["target_item"].tolist() == [4, 1] and test["context"].tolist() == [
        [1, 3, 2],
        [2, 4],
    ]

    # Through the pipeline's node, as `data_split.strategy: given` runs it.
    through_node = split_interactions(
        interactions, user_map, item_map, targets,
        params("data_split", strategy="given", cold_user_fraction=0.0),
    )  # fmt: skip
    pd.testing.assert_frame_equal(
        through_node[2].drop(columns=["is_cold", "is_cold_item"]),
        test.drop(columns="is_cold"),
    )
    assert not through_node[2]["is_cold"].any() and through_node[3].empty
    with pytest.raises(ValueError, match="strategy=given needs the targets"):
        split_interactions(
            interactions, user_map, item_map, no_given_targets(),
            params("data_split", strategy="given", cold_user_fraction=0.0),
        )  # fmt: skip

    bad = targets.assign(test_item=[104, 999])
    with pytest.raises(ValueError, match=r"targets, row 3, column 'test_item': id 999"):
        split_with_given_targets(interactions, bad, user_map, item_map)


def test_given_targets_name_text_ids_and_integer_ids_alike():
    """A log with text ids takes targets in its own ids; integer targets match ids a
    text catalogue holds as digits ("17")."""
    from maskrec.pipelines.data_split.nodes import split_with_given_targets

    interactions = pd.DataFrame(
        [(0, 1, np.nan, 1), (0, 2, np.nan, 2), (0, 3, np.nan, 3), (1, 3, np.nan, 1), (1, 1, np.nan, 2), (1, 2, np.nan, 3)],
        columns=["user_id", "item_id", "rating", "timestamp"],
    )  # fmt: skip
    user_map = pd.DataFrame({"user_id": [0, 1], "original_user_id": ["anna", "ben"]})
    item_map = pd.DataFrame({"item_id": [1, 2, 3], "original_item_id": ["sku-1", "17", "sku-3"]})  # fmt: skip
    targets = pd.DataFrame({"user_id": ["anna", "ben"], "valid_item": ["sku-1", "sku-3"], "test_item": ["sku-3", 17]})  # fmt: skip
    train, valid, test = split_with_given_targets(interactions, targets, user_map, item_map)  # fmt: skip
    assert train["item_ids"].map(list).tolist() == [[2], [1]]
    assert valid["target_item"].tolist() == [1, 3] and test["target_item"].tolist() == [3, 2]  # fmt: skip
    with pytest.raises(ValueError, match=r"row 2, column 'user_id': id carl is not in the data"):  # fmt: skip
        split_with_given_targets(interactions, targets.assign(user_id=["carl", "ben"]), user_map, item_map)  # fmt: skip


def test_given_targets_file_reads_text_ids_and_names_a_bad_cell(tmp_path):
    from kedro.io import DatasetError

    from maskrec.datasets.split_targets import SplitTargetsDataset

    path = tmp_path / "targets.csv"
    path.write_text("user_id,valid_item,test_item\nanna,sku-1, sku-3\nben,sku-3,17\n")
    table = SplitTargetsDataset(file=str(path)).load()
    assert table.to_dict("list") == {"user_id": ["anna", "ben"], "valid_item": ["sku-1", "sku-3"], "test_item": ["sku-3", "17"]}  # fmt: skip
    path.write_text("user_id,valid_item,test_item\n1,10,11\n2,12,13.0\n")
    assert SplitTargetsDataset(file=str(path)).load()["test_item"].tolist() == [11, 13]
    path.write_text("user_id,valid_item,test_item\n1,10,11\n2,,13\n")
    with pytest.raises(DatasetError, match=r"targets.csv, line 3, column 'valid_item': missing value"):  # fmt: skip
        SplitTargetsDataset(file=str(path)).load()


def test_the_newest_items_are_held_out_of_training_and_flagged_in_test():
    # Items 1..10, first rated at time = item id; the newest 20% are items 9 and 10.
    rows = [(u, i, 4.0, i + 10 * u) for u in range(6) for i in range(1, 11)]
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])
    train, valid, test, _, cold_items = split_interactions(
        frame, pd.DataFrame(), pd.DataFrame(), no_given_targets(),
        params("data_split", cold_user_fraction=0.0, cold_item_fraction=0.2),
    )  # fmt: skip
    assert cold_items["item_id"].tolist() == [9, 10]
    trained = {i for seq in train["item_ids"] for i in seq}
    assert trained.isdisjoint({9, 10}) and {1, 2, 3} <= trained
    assert all(len(a) == len(b) for a, b in zip(train["item_ids"], train["timestamps"], strict=True))  # fmt: skip
    assert not valid["target_item"].isin([9, 10]).any()  # their validation rows go
    assert test["is_cold_item"].tolist() == test["target_item"].isin([9, 10]).tolist()
    assert test["is_cold_item"].all()  # leave-one-out: every last item is item 10 here
    assert 9 in set(test["context"].iloc[0])  # contexts keep them (read by content)
    none = split_interactions(frame, pd.DataFrame(), pd.DataFrame(), no_given_targets(), params("data_split", cold_user_fraction=0.0))  # fmt: skip
    assert none[4].empty and not none[2]["is_cold_item"].any()


def test_a_split_that_leaves_no_test_target_is_refused_with_a_hint():
    bursts = (
        pd.DataFrame(  # each user active once, at their own time: no one spans a cut
            [(u, i, 4.0, 100 * u + i) for u in range(10) for i in range(1, 5)],
            columns=["user_id", "item_id", "rating", "timestamp"],
        )
    )
    with pytest.raises(ValueError, match=r"future_window left no test target.*lower data_split.temporal_valid_quantile \(0.8\)"):  # fmt: skip
        split_interactions(bursts, pd.DataFrame(), pd.DataFrame(), no_given_targets(), params("data_split", strategy="future_window"))  # fmt: skip
