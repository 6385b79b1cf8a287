"""`ModelFolderDataset`: a trained sequence model as a `save_pretrained` folder.

The folder holds config.json (architecture and the original item ids) and
model.safetensors. Loading uses `from_pretrained`: nothing is unpickled. Saving writes to a
temporary sibling folder first and swaps it in only when complete, so a failed save never
replaces a good model.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset, DatasetError
from transformers.utils import logging as hf_logging

from maskrec.models.sequence import SequenceRecModel


class ModelFolderDataset(AbstractDataset[SequenceRecModel, SequenceRecModel]):
    def __init__(self, filepath: str, metadata: dict[str, Any] | None = None) -> None:
        self._path = Path(filepath)
        self.metadata = metadata

    def load(self) -> SequenceRecModel:
        if not (self._path / "config.json").is_file():
            raise DatasetError(
                f"{self._path}: no saved model here (config.json missing); run the pipeline that trains it first"
            )
        hf_logging.disable_progress_bar()
        return SequenceRecModel.from_pretrained(self._path).eval()

    def save(self, model: SequenceRecModel) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(
            tempfile.mkdtemp(prefix=f".{self._path.name}.", dir=self._path.parent)
        )
        retired = self._path.with_name(f".{self._path.name}.old")
        try:
            hf_logging.disable_progress_bar()
            model.save_pretrained(staging)
            if self._path.exists():
                shutil.rmtree(retired, ignore_errors=True)
                os.replace(self._path, retired)
            os.replace(staging, self._path)
            shutil.rmtree(retired, ignore_errors=True)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _exists(self) -> bool:
        return (self._path / "config.json").is_file()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._path)}
