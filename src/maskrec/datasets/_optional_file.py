"""`OptionalFileDataset`: the shape of every table a user may name by file at run time
(`--params <param>=<file>`): read-only, and an empty table when no file is named, so a
pipeline can always declare it as an input."""

from __future__ import annotations

from abc import abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd
from kedro.io import AbstractDataset, DatasetError


class OptionalFileDataset(AbstractDataset[None, pd.DataFrame]):
    param: ClassVar[str]  # the runtime parameter that names the file (for messages)

    def __init__(self, file: str = "", metadata: dict[str, Any] | None = None) -> None:
        # `file`, not `filepath`: Kedro would turn an empty filepath into the project folder.
        self._path = Path(file) if file else None
        self.metadata = metadata

    def load(self) -> pd.DataFrame:
        if self._path is None:
            return self._empty()
        if not self._path.is_file():
            raise DatasetError(f"{self.param}={self._path}: no such file")
        return self._read(self._path)

    @abstractmethod
    def _empty(self) -> pd.DataFrame:
        """The table with no rows, in the columns `_read` gives."""

    @abstractmethod
    def _read(self, path: Path) -> pd.DataFrame:
        """The file's table, every malformed row named by file, line and column."""

    def save(self, data: Any) -> None:
        raise DatasetError(f"{type(self).__name__} is read-only")

    def _exists(self) -> bool:
        return self._path is not None and self._path.is_file()

    def _describe(self) -> dict[str, Any]:
        return {"file": str(self._path) if self._path else None}
