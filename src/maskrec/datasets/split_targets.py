"""`SplitTargetsDataset`: validation and test items chosen by another tool, for
`data_split.strategy: given` (e.g. RecBole's leave-one-out targets, to compare on exactly
the same task). A CSV of original ids with columns user_id, valid_item, test_item.

With no file configured (`file` empty, the default) it loads an empty table, so the
data_split pipeline can always declare it as an input; the split node and the run-start
checks refuse `strategy: given` without one, and a file without `strategy: given`.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from kedro.io import DatasetError

from maskrec.datasets._optional_file import OptionalFileDataset

COLUMNS = ["user_id", "valid_item", "test_item"]


class SplitTargetsDataset(OptionalFileDataset):
    param = "split_targets"

    @property
    def given(self) -> bool:
        """Whether a targets file was configured (`--params split_targets=<csv>`)."""
        return self._path is not None

    def _empty(self) -> pd.DataFrame:
        return pd.DataFrame({c: pd.Series(dtype="int64") for c in COLUMNS})

    def _read(self, path: Path) -> pd.DataFrame:
        frame = pd.read_csv(path)
        missing = [c for c in COLUMNS if c not in frame.columns]
        if missing:
            raise DatasetError(
                f"{path}: missing column(s) {missing}; expected {COLUMNS}, found {list(frame.columns)}"
            )
        for column in COLUMNS:
            numbers = pd.to_numeric(frame[column], errors="coerce")
            bad = numbers.isna() | (numbers % 1 != 0)
            if bad.any():
                row = int(bad.to_numpy().nonzero()[0][0])
                raise DatasetError(
                    f"{path}, line {row + 2}, column '{column}': "
                    f"{frame[column].iloc[row]!r} is not an integer id"
                )
        return frame[COLUMNS].astype("int64")
