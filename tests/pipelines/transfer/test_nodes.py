"""Source sequences in the target's item ids, and the joint table for SASRec."""

from __future__ import annotations

import pandas as pd
import pytest

from maskrec.pipelines.transfer.nodes import join_sequences, map_source_sequences
from tests.helpers import params

# Source users 0 and 1 (source item ids 1..4); source items 1, 2, 3 are target items 10, 20, 30.
SOURCE = pd.DataFrame(
    {"user_id": [0, 0, 0, 0, 1, 1, 1], "item_id": [1, 4, 2, 3, 4, 1, 4],
     "rating": 4.0, "timestamp": [1, 2, 3, 4, 1, 2, 3]}
)  # fmt: skip
ALIGNMENT = pd.DataFrame({"item_id": [10, 20, 30], "source_item_id": [1, 2, 3], "matched_by": "title"})  # fmt: skip
TRAIN = pd.DataFrame({"user_id": [0, 1], "item_ids": [[10, 40], [20, 30]], "timestamps": [[1, 2], [1, 2]]})  # fmt: skip


def test_source_histories_become_target_sequences_split_leave_one_out():
    sequences, valid, report = map_source_sequences(SOURCE, ALIGNMENT, TRAIN, {"method": "title"}, params("transfer", min_source_events=3))  # fmt: skip
    # user 0: items 1, 4 (not shared: dropped), 2, 3 -> 10, 20, 30; user 1 keeps one event: dropped
    assert sequences["user_id"].tolist() == [0]
    assert sequences["item_ids"].map(list).tolist() == [
        [10, 20]
    ]  # the last one validates
    assert sequences["timestamps"].map(list).tolist() == [[1, 3]]
    assert valid.assign(context=valid["context"].map(list)).to_dict("records") == [
        {"user_id": 0, "context": [10, 20], "target_item": 30}
    ]
    assert report["method"] == "title"  # the alignment counts are carried along
    assert (report["source_events"], report["source_events_on_shared_items"], report["source_events_kept"]) == (7, 4, 3)  # fmt: skip
    assert report["source_users_kept"] == 1
    assert report["target_training_events_on_shared_items"] == pytest.approx(0.75)


def test_joint_sequences_keep_both_sides_with_distinct_users():
    source = pd.DataFrame({"user_id": [0, 1], "item_ids": [[10, 20], [30, 10]], "timestamps": [[5, 6], [7, 8]]})  # fmt: skip
    joint = join_sequences(TRAIN, source)
    assert joint["user_id"].tolist() == [0, 1, 2, 3]
    assert joint["item_ids"].map(list).tolist() == [
        [10, 40],
        [20, 30],
        [10, 20],
        [30, 10],
    ]
