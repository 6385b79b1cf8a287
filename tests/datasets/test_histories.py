"""Histories from a file for the inference pipeline: CSV, JSON and JSON Lines, and an error
naming file, line and column for every malformed row."""

from __future__ import annotations

import json

import pytest
from kedro.io import DatasetError

from maskrec.datasets import HistoriesDataset


def load(path) -> list[tuple]:
    frame = HistoriesDataset(file=str(path)).load()
    return list(zip(frame["request_id"], frame["history"], strict=True))


def test_csv_json_and_json_lines_give_the_same_requests(tmp_path):
    (tmp_path / "h.csv").write_text('request_id,history\nalice,1 50 172\nbob,"7|8"\n')
    (tmp_path / "h.json").write_text(json.dumps([{"request_id": "alice", "history": [1, 50, 172]}, {"request_id": "bob", "history": ["7", 8]}]))  # fmt: skip
    (tmp_path / "h.jsonl").write_text('{"request_id": "alice", "history": [1, 50, 172]}\n\n{"request_id": "bob", "history": [7, 8]}\n')  # fmt: skip
    expected = [("alice", [1, 50, 172]), ("bob", [7, 8])]
    for name in ("h.csv", "h.json", "h.jsonl"):
        assert load(tmp_path / name) == expected, name


def test_request_ids_default_to_the_place_in_the_file(tmp_path):
    (tmp_path / "h.csv").write_text("history\n1 2\n3\n")
    assert load(tmp_path / "h.csv") == [("2", [1, 2]), ("3", [3])]
    (tmp_path / "h.json").write_text("[[1, 2], [3]]")
    assert load(tmp_path / "h.json") == [("0", [1, 2]), ("1", [3])]


def test_no_file_loads_an_empty_table():
    frame = HistoriesDataset().load()
    assert frame.empty and list(frame.columns) == ["request_id", "history", "where"]


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("h.csv", "history\n1 2\n3 x\n", r"h.csv, line 3, column 'history': 'x' is not a movie id"),
        ("h.csv", "history\n1 2\n\n", None),  # a blank line is no row
        ("h.csv", "items\n1 2\n", r"h.csv: no 'history' column"),
        ("h.csv", 'request_id,history\na,1\na,2\n', r"h.csv, line 3: request_id 'a' appears twice"),
        ("h.csv", "history\n1 2\n\"\"\n", r"h.csv, line 3, column 'history': expected a non-empty list"),
        ("h.json", '{"history": [1]}', r"h.json: expected a list of histories"),
        ("h.json", '[{"history": [1, 2.5]}]', r"h.json, item 0, 'history': 2.5 is not a movie id"),
        ("h.json", '[{"items": [1]}]', r"h.json, item 0: expected keys 'history'"),
        ("h.json", '[[1], [true]]', r"h.json, item 1, 'history': True is not a movie id"),
        ("h.json", "[1, 2", r"h.json: not valid JSON"),
        ("h.jsonl", '{"history": [1]}\n{"history": []}\n', r"h.jsonl, line 2, 'history': expected a non-empty list"),
        ("h.txt", "1 2\n", r"h.txt: histories come as .csv, .json or .jsonl"),
    ],
)  # fmt: skip
def test_malformed_rows_are_named_by_file_line_and_column(
    tmp_path, name, text, message
):
    (tmp_path / name).write_text(text)
    if message is None:
        assert load(tmp_path / name) == [("2", [1, 2])]
        return
    with pytest.raises(DatasetError, match=message):
        load(tmp_path / name)


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(
        DatasetError, match="inference_histories=.*nope.csv: no such file"
    ):
        load(tmp_path / "nope.csv")
