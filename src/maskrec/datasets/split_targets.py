"""`SplitTargetsDataset`: validation and test items chosen by another tool, for
`data_split.strategy: given` (e.g. RecBole's leave-one-out targets, to compare on exactly
the same task). A CSV of original ids with columns user_id, valid_item, test_item.

With no file configured (`file` empty, the default) it loads an empty table, so the
data_split pipeline can always declare it as an input; the split node and the run-start
checks refuse `strategy: given` without one, and a file without `strategy: given`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from kedro.io import AbstractDataset, DatasetError

COLUMNS = ["user_id", "valid_item", "test_item"]


class SplitTargetsDataset(AbstractDataset[None, pd.DataFrame]):
    def __init__(self, file: str = "", metadata: dict[str, Any] | None = None) -> None:
        # `file`, not `filepath`: Kedro would turn an empty filepath into the project folder.
        self._path = Path(file) if file else None
        self.metadata = metadata

    @property
    def given(self) -> bool:
        """Whether a targets file was configured (`--params split_targets=<csv>`)."""
        return self._path is not None

    def load(self) -> pd.DataFrame:
        if self._path is None:
            return pd.DataFrame({c: pd.Series(dtype="int64") for c in COLUMNS})
        if not self._path.is_file():
            raise DatasetError(f"split_targets={self._path}: no such file")
        frame = pd.read_csv(self._path)
        missing = [c for c in COLUMNS if c not in frame.columns]
        if missing:
            raise DatasetError(
                f"{self._path}: missing column(s) {missing}; expected {COLUMNS}, found {list(frame.columns)}"
            )
        for column in COLUMNS:
            numbers = pd.to_numeric(frame[column], errors="coerce")
            bad = numbers.isna() | (numbers % 1 != 0)
            if bad.any():
                row = int(bad.to_numpy().nonzero()[0][0])
                raise DatasetError(
                    f"{self._path}, line {row + 2}, column '{column}': "
                    f"{frame[column].iloc[row]!r} is not an integer id"
                )
        return frame[COLUMNS].astype("int64")

    def save(self, data: Any) -> None:
        raise DatasetError("SplitTargetsDataset is read-only")

    def _exists(self) -> bool:
        return self._path is not None and self._path.is_file()

    def _describe(self) -> dict[str, Any]:
        return {"file": str(self._path) if self._path else None}
