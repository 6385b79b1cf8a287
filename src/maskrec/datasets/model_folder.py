"""`ModelFolderDataset`: a trained sequence model as a `save_pretrained` folder.

The folder holds config.json (architecture and the original item ids) and
model.safetensors. Loading uses `from_pretrained`: nothing is unpickled. Saving writes a
complete folder before it replaces anything (`FolderDataset`), so a failed save never
replaces a good model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from transformers.utils import logging as hf_logging

from maskrec.datasets._atomic import FolderDataset
from maskrec.models.sequence import SequenceRecModel


class ModelFolderDataset(FolderDataset):
    what = "model"

    def _read(self, folder: Path, config: dict[str, Any]) -> SequenceRecModel:
        hf_logging.disable_progress_bar()
        return SequenceRecModel.from_pretrained(folder).eval()

    def _write(self, model: SequenceRecModel, folder: Path) -> None:
        hf_logging.disable_progress_bar()
        model.save_pretrained(folder)
