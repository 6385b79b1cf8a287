"""`ModelFolderDataset`: a trained sequence model as a `save_pretrained` folder.

The folder holds config.json (architecture and the original item ids) and
model.safetensors. Loading uses `from_pretrained`: nothing is unpickled. Saving writes a
complete folder before it replaces anything (`FolderDataset`), so a failed save never
replaces a good model.

A loaded model owns its weights: `from_pretrained` leaves them as views into the
memory-mapped file, at offsets the safetensors header decides (seen: 8 bytes past a 32-byte
boundary). On an AVX2 machine the matrix-vector kernels round differently for such
addresses, so the reloaded model scored 4e-8 away from the model that was saved, and a served
model could order near-ties otherwise than the run that chose it. Copies made by torch's
allocator are 64-byte aligned, as the trained model's were, and the file is not held open.
"""

from __future__ import annotations

from itertools import chain
from pathlib import Path
from typing import Any

from transformers.utils import logging as hf_logging

from maskrec.datasets._atomic import FolderDataset
from maskrec.models.sequence import SequenceRecModel


class ModelFolderDataset(FolderDataset):
    what = "model"

    def _read(self, folder: Path, config: dict[str, Any]) -> SequenceRecModel:
        hf_logging.disable_progress_bar()
        model = SequenceRecModel.from_pretrained(folder).eval()
        for tensor in chain(model.parameters(), model.buffers()):  # a tied tensor once
            tensor.data = tensor.data.clone()
        return model

    def _write(self, model: SequenceRecModel, folder: Path) -> None:
        hf_logging.disable_progress_bar()
        model.save_pretrained(folder)
