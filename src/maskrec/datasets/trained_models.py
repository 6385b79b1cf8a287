"""`TrainedModelsDataset`: every registered model's folder, as loaders to call.

Like `PartitionedDataset`'s lazy partitions: loading returns {model name: function that
loads that model}, so the inference pipeline reads only the model it chooses (an
items x items baseline can be gigabytes at ML-20M scale). Read-only; the training
pipelines write the folders through their own catalog entries, `{name}_model` and
`{name}_baseline`, under the same folder.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset, DatasetError

from maskrec.datasets.array_model import ArrayModelDataset
from maskrec.datasets.model_folder import ModelFolderDataset
from maskrec.registry import MODELS, RATING_MODEL, RegisteredModel

FOLDER_DATASETS = {"sequence": ModelFolderDataset, "baseline": ArrayModelDataset}


class TrainedModelsDataset(AbstractDataset[None, dict[str, Callable[[], Any]]]):
    def __init__(self, path: str, metadata: dict[str, Any] | None = None) -> None:
        # `path`: Kedro makes it absolute, like every dataset's filepath.
        self._folder = Path(path)
        self.metadata = metadata

    def _load_one(self, model: RegisteredModel) -> Any:
        dataset = FOLDER_DATASETS[model.family](
            filepath=str(self._folder / model.dataset)
        )
        return dataset.load()

    def load(self) -> dict[str, Callable[[], Any]]:
        """Registered models by name, plus `rating`: the rating head `kedro run
        --pipelines rating_prediction` saves (None when it has not run)."""
        loaders = {model.name: partial(self._load_one, model) for model in MODELS}
        return loaders | {RATING_MODEL: self._load_rating_model}

    def _load_rating_model(self) -> Any:
        folder = self._folder / f"{RATING_MODEL}_model"
        return (
            ModelFolderDataset(filepath=str(folder)).load() if folder.is_dir() else None
        )

    def save(self, data: Any) -> None:
        raise DatasetError(
            "TrainedModelsDataset is read-only: models are saved by their own entries"
        )

    def _exists(self) -> bool:
        return self._folder.is_dir()

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._folder)}
