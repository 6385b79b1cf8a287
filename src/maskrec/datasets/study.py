"""Where tuning studies live: an Optuna storage in a SQLite file of the project.

The dataset hands the tuning nodes an open `optuna.storages.RDBStorage`; Optuna writes
each trial to it as the trial ends, which is what lets an interrupted study resume. (The
experimental `kedro_datasets_experimental.optuna.StudyDataset` does this for one study
whose sampler is fixed in the catalog; here one file holds a study per tuned model, and
the sampler and pruner come from the validated `tuning` parameters.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
from kedro.io import AbstractDataset, DatasetError


class OptunaStorageDataset(AbstractDataset):
    """A SQLite Optuna storage at `filepath` (created on first load); saving is an error:
    trials are written by Optuna as they end."""

    def __init__(self, filepath: str, metadata: dict[str, Any] | None = None) -> None:
        self._filepath = Path(filepath)
        self.metadata = metadata

    def load(self) -> optuna.storages.RDBStorage:
        self._filepath.parent.mkdir(parents=True, exist_ok=True)
        return optuna.storages.RDBStorage(f"sqlite:///{self._filepath.resolve()}")

    def save(self, data: Any) -> None:
        raise DatasetError(
            f"{self._filepath}: an Optuna storage is written by its studies, not saved"
        )

    def _exists(self) -> bool:
        return self._filepath.is_file()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath)}
