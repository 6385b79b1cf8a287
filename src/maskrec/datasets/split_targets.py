"""`SplitTargetsDataset`: validation and test items chosen by another tool, for
`data_split.strategy: given` (e.g. RecBole's leave-one-out targets, to compare on exactly
the same task). A CSV of original ids with columns user_id, valid_item, test_item: integers,
or text for a log with text ids (read as the log's ids are, `readers.parse_ids`).

With no file configured (`file` empty, the default) it loads an empty table, so the
data_split pipeline can always declare it as an input; the split node and the run-start
checks refuse `strategy: given` without one, and a file without `strategy: given`.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from kedro.io import DatasetError

from maskrec.datasets._optional_file import OptionalFileDataset
from maskrec.datasets.readers import MovieLensFormatError, parse_ids

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
        frame = pd.read_csv(path, dtype=str)
        missing = [c for c in COLUMNS if c not in frame.columns]
        if missing:
            raise DatasetError(
                f"{path}: missing column(s) {missing}; expected {COLUMNS}, found {list(frame.columns)}"
            )
        try:
            return pd.DataFrame({
                column: parse_ids(frame[column], lambda row, c=column: f"{path}, line {row + 2}, column '{c}'", text_ids=True)
                for column in COLUMNS
            })  # fmt: skip
        except MovieLensFormatError as error:
            raise DatasetError(str(error)) from error
