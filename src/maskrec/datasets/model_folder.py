"""`ModelFolderDataset`: a trained sequence model as a `save_pretrained` folder.

The folder holds config.json (architecture and the original item ids) and
model.safetensors. Loading uses `from_pretrained`: nothing is unpickled. Saving writes to a
temporary sibling folder first and swaps it in only when complete, so a failed save never
replaces a good model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset, DatasetError
from transformers.utils import logging as hf_logging

from maskrec.datasets._atomic import replace_folder
from maskrec.models.sequence import SequenceRecModel


class ModelFolderDataset(AbstractDataset[SequenceRecModel, SequenceRecModel]):
    def __init__(self, filepath: str, metadata: dict[str, Any] | None = None) -> None:
        self._path = Path(filepath)
        self.metadata = metadata

    @property
    def path(self) -> Path:
        """The model's folder (what run tracking logs as artifacts)."""
        return self._path

    def load(self) -> SequenceRecModel:
        if not (self._path / "config.json").is_file():
            raise DatasetError(
                f"{self._path}: no saved model here (config.json missing); run the pipeline that trains it first"
            )
        hf_logging.disable_progress_bar()
        return SequenceRecModel.from_pretrained(self._path).eval()

    def save(self, model: SequenceRecModel) -> None:
        hf_logging.disable_progress_bar()
        replace_folder(self._path, model.save_pretrained)

    def _exists(self) -> bool:
        return (self._path / "config.json").is_file()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._path)}
