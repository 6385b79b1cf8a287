"""Model folders: a folder per trained model, written so that readers see either the old
complete version or the new one (`replace_folder`), and what the folder datasets share
(`FolderDataset`)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset, DatasetError

from maskrec.catalogue import ItemCatalogue


def replace_folder(path: Path, write: Callable[[Path], None]) -> None:
    """Call `write(staging)` on a temporary sibling folder, then swap it in for `path`.

    The previous folder is moved aside before the new one is renamed into place and only
    deleted afterwards, so a failure at any point leaves a complete folder behind.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    retired = path.with_name(f".{path.name}.old")
    try:
        write(staging)
        if path.exists():
            shutil.rmtree(retired, ignore_errors=True)
            os.replace(path, retired)
        os.replace(staging, path)
        shutil.rmtree(retired, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


class FolderDataset(AbstractDataset):
    """A trained model's folder, holding a `config.json` beside its weights."""

    def __init__(self, filepath: str, metadata: dict[str, Any] | None = None) -> None:
        self._path = Path(filepath)
        self.metadata = metadata

    @property
    def path(self) -> Path:
        """The model's folder (what run tracking logs as artifacts)."""
        return self._path

    def _config(self, what: str) -> Path:
        """The folder's config.json, or an error saying what to run."""
        config = self._path / "config.json"
        if not config.is_file():
            raise DatasetError(f"{self._path}: no saved {what} here (config.json missing); run the pipeline that trains it first")  # fmt: skip
        return config

    def catalogue(self) -> ItemCatalogue:
        """The saved model's own catalogue, read from its config.json alone (no weights):
        a sequence model keeps its fields at the top, a baseline under `catalogue`."""
        config = json.loads(self._config("model").read_text())
        return ItemCatalogue.from_fields(config.get("catalogue") or config)

    def _exists(self) -> bool:
        return (self._path / "config.json").is_file()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._path)}
