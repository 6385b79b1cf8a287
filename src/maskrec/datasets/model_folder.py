"""`ModelFolderDataset`: a trained sequence model as a `save_pretrained` folder.

The folder holds config.json (architecture and the original item ids) and
model.safetensors. Loading uses `from_pretrained`: nothing is unpickled. Saving writes to a
temporary sibling folder first and swaps it in only when complete, so a failed save never
replaces a good model.
"""

from __future__ import annotations

from transformers.utils import logging as hf_logging

from maskrec.datasets._atomic import FolderDataset, replace_folder
from maskrec.models.sequence import SequenceRecModel


class ModelFolderDataset(FolderDataset):
    def load(self) -> SequenceRecModel:
        self._config("model")
        hf_logging.disable_progress_bar()
        return SequenceRecModel.from_pretrained(self._path).eval()

    def save(self, model: SequenceRecModel) -> None:
        hf_logging.disable_progress_bar()
        replace_folder(self._path, model.save_pretrained)
