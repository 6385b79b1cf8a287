"""`TrainedModelsDataset`: every registered model's folder, as loaders to call.

Like `PartitionedDataset`'s lazy partitions: loading returns {model name: `SavedModel`,
which loads that model when called}, so the inference pipeline reads only the model it
chooses (an items x items baseline can be gigabytes at ML-20M scale), and only after
checking its catalogue against the data on disk. Read-only; the training
pipelines write the folders through their own catalog entries, `{name}_model` and
`{name}_baseline`, under the same folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fsspec
from kedro.io import AbstractDataset, DatasetError, Version
from kedro.io.core import get_protocol_and_path

from maskrec.catalogue import ItemCatalogue
from maskrec.datasets._atomic import FolderDataset
from maskrec.datasets.array_model import ArrayModelDataset
from maskrec.datasets.model_folder import ModelFolderDataset
from maskrec.registry import MODELS, RATING_MODEL

FOLDER_DATASETS = {"sequence": ModelFolderDataset, "baseline": ArrayModelDataset}


@dataclass(frozen=True)
class SavedModel:
    """One saved model: calling it loads the weights; `catalogue()` reads only what the
    folder says about its items and training data, so a caller can check the model
    against the data before it pays for the weights."""

    dataset: FolderDataset
    missing_ok: bool = False  # loading a missing model gives None instead of an error

    def __call__(self) -> Any:
        if self.missing_ok and not self.dataset.exists():
            return None
        return self.dataset.load()

    def catalogue(self) -> ItemCatalogue:
        return self.dataset.catalogue()

    @property
    def path(self) -> Path | None:
        return self.dataset.path


class TrainedModelsDataset(AbstractDataset[None, dict[str, SavedModel]]):
    def __init__(
        self,
        path: str,
        version: Version | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        # `path`: Kedro makes it absolute, like every dataset's filepath. `version`: the
        # catalog gives one with `versioned: true` (the model folders are versioned too);
        # its load version (`--load-versions trained_models:<version>`) picks every
        # model of that run, none picks each model's latest.
        self._folder = str(path).rstrip("/")  # a local path or any fsspec URL
        self._version = version
        self.metadata = metadata

    def _folder_dataset(self, kind: type[FolderDataset], name: str) -> FolderDataset:
        version = None if self._version is None else Version(self._version.load, None)
        return kind(filepath=f"{self._folder}/{name}", version=version)

    def load(self) -> dict[str, SavedModel]:
        """Registered models by name, plus `rating`: the rating head `kedro run
        --pipelines rating_prediction` saves (loading gives None when it has not run)."""
        saved = {
            model.name: SavedModel(self._folder_dataset(FOLDER_DATASETS[model.family], model.dataset))
            for model in MODELS
        }  # fmt: skip
        rating = self._folder_dataset(ModelFolderDataset, f"{RATING_MODEL}_model")
        return saved | {RATING_MODEL: SavedModel(rating, missing_ok=True)}

    def save(self, data: Any) -> None:
        raise DatasetError(
            "TrainedModelsDataset is read-only: models are saved by their own entries"
        )

    def _exists(self) -> bool:
        protocol, path = get_protocol_and_path(self._folder)
        return fsspec.filesystem(protocol).isdir(path)

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._folder), "version": self._version}
