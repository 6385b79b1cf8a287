"""`HistoriesDataset`: histories to recommend for, one per row, from a file a user names
(`kedro run --pipelines inference --params inference_histories=<file>`).

- CSV: a `history` column of original movie ids, oldest first, separated by spaces or
  `|` (e.g. `1 50 172`), and optionally a `request_id` column (default: the line number).
- JSON: a list of objects `{"request_id": ..., "history": [1, 50, 172]}` (request_id
  optional) or a list of id lists; JSON Lines (`.jsonl`) with one such object per line.

Loads a table of request_id (str), history (list of ints) and `where` (the line or item
of the file, for messages). With no file configured it loads an empty table, so the
inference pipeline can always declare it. Every malformed row is named by file, line and
column before any model is loaded.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pandas as pd
from kedro.io import DatasetError

from maskrec.datasets._optional_file import OptionalFileDataset

COLUMNS = ["request_id", "history", "where"]
_SEPARATORS = re.compile(r"[\s|]+")


def _empty() -> pd.DataFrame:
    return pd.DataFrame({"request_id": pd.Series(dtype=str), "history": pd.Series(dtype=object),
                         "where": pd.Series(dtype=str)})  # fmt: skip


def _ids(value: Any, where: str) -> list[int]:
    """A history as original ids; `where` names the place for the error."""
    if isinstance(value, str):
        value = [v for v in _SEPARATORS.split(value.strip()) if v]
    if not isinstance(value, list) or not value:
        raise DatasetError(f"{where}: expected a non-empty list of movie ids, got {value!r}")  # fmt: skip
    ids = []
    for entry in value:
        if isinstance(entry, bool) or not isinstance(entry, (int, str)) or not str(entry).lstrip("-").isdigit():  # fmt: skip
            raise DatasetError(f"{where}: {entry!r} is not a movie id (an integer)")
        ids.append(int(entry))
    return ids


class HistoriesDataset(OptionalFileDataset):
    param = "inference_histories"

    def _empty(self) -> pd.DataFrame:
        return _empty()

    def _read(self, path: Path) -> pd.DataFrame:
        suffix = path.suffix.lower()
        if suffix == ".csv":
            rows = self._csv(path)
        elif suffix in {".json", ".jsonl"}:
            rows = self._json(path, lines=suffix == ".jsonl")
        else:
            raise DatasetError(f"{path}: histories come as .csv, .json or .jsonl, not {suffix or 'no suffix'}")  # fmt: skip
        frame = pd.DataFrame(rows, columns=COLUMNS) if rows else _empty()
        duplicated = frame["request_id"].duplicated()
        if duplicated.any():
            first = frame[duplicated].iloc[0]
            raise DatasetError(f"{first['where']}: request_id {first['request_id']!r} appears twice")  # fmt: skip
        return frame

    @staticmethod
    def _csv(path: Path) -> list[tuple]:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
        if "history" not in table.columns:
            raise DatasetError(f"{path}: no 'history' column (found {list(table.columns)})")  # fmt: skip
        rows = []
        for index, row in table.iterrows():
            line = index + 2  # the header is line 1
            where = f"{path}, line {line}, column 'history'"
            request = row["request_id"] if "request_id" in table.columns else str(line)
            rows.append((str(request), _ids(row["history"], where), f"{path}, line {line}"))  # fmt: skip
        return rows

    @staticmethod
    def _json(path: Path, lines: bool) -> list[tuple]:
        text = path.read_text()
        try:
            if lines:
                entries = [(f"{path}, line {n}", json.loads(line)) for n, line in enumerate(text.splitlines(), 1) if line.strip()]  # fmt: skip
            else:
                data = json.loads(text)
                if not isinstance(data, list):
                    raise DatasetError(f"{path}: expected a list of histories, got {type(data).__name__}")  # fmt: skip
                entries = [(f"{path}, item {n}", entry) for n, entry in enumerate(data)]
        except json.JSONDecodeError as error:
            raise DatasetError(f"{path}: not valid JSON ({error})") from None
        rows = []
        for where, entry in entries:
            if isinstance(entry, dict):
                unknown = set(entry) - {"request_id", "history"}
                if unknown or "history" not in entry:
                    raise DatasetError(f"{where}: expected keys 'history' (and 'request_id'), found {sorted(entry)}")  # fmt: skip
                request, history = entry.get("request_id", where.rsplit(" ", 1)[-1]), entry["history"]  # fmt: skip
            else:
                request, history = where.rsplit(" ", 1)[-1], entry
            rows.append((str(request), _ids(history, f"{where}, 'history'"), where))
        return rows
