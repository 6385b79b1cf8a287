"""Model folders: a folder per trained model, written so that readers see either the old
complete version or the new one (`replace_folder`), and what the folder datasets share
(`FolderDataset`: fsspec paths and Kedro versioning)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from abc import abstractmethod
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

import fsspec
from kedro.io import AbstractVersionedDataset, DatasetError, Version
from kedro.io.core import get_filepath_str, get_protocol_and_path

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


class FolderDataset(AbstractVersionedDataset):
    """A trained model's folder, holding a `config.json` beside its weights, on any
    fsspec filesystem (`s3://`, `gs://`, `memory://`, or a local path), versioned as
    Kedro versions files when the catalog says `versioned: true`
    (`<filepath>/<version>/<name>/`, so `--load-versions` reaches an earlier model).

    Subclasses read and write a local folder (`_read`, `_write`); on a local filesystem
    that is the folder itself, swapped in whole (`replace_folder`), elsewhere a temporary
    copy moved up or down in one piece.
    """

    def __init__(
        self,
        filepath: str,
        version: Version | None = None,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        protocol, path = get_protocol_and_path(str(filepath), version)
        self._protocol = protocol
        self._fs = fsspec.filesystem(protocol, **(credentials or {}), **(fs_args or {}))
        self.metadata = metadata
        super().__init__(
            filepath=PurePosixPath(path),
            version=version,
            exists_function=self._fs.exists,
            glob_function=self._fs.glob,
        )

    @property
    def local(self) -> bool:
        return self._protocol == "file"

    @property
    def path(self) -> Path | None:
        """The local folder a load reads (what run tracking logs as artifacts); None on
        another filesystem or where nothing is saved yet."""
        if not self.local:
            return None
        try:
            return Path(self._get_load_path())
        except DatasetError:  # versioned, and no version saved yet
            return None

    def _where(self) -> str:
        """The folder a load reads, as the filesystem names it."""
        return get_filepath_str(self._get_load_path(), self._protocol)

    def _config(self, what: str) -> dict[str, Any]:
        """The folder's config.json, or an error saying what to run."""
        try:
            where = self._where()
        except DatasetError:
            where = None
        if where is None or not self._fs.isfile(f"{where}/config.json"):
            top = get_filepath_str(self._filepath, self._protocol)
            if self._version is not None and self._fs.isfile(f"{top}/config.json"):
                raise DatasetError(f"{top}: holds a {what} saved before model folders were versioned (config.json at its top); rerun the pipeline that trains it, or move its files into {top}/<any timestamp>/{self._filepath.name}/")  # fmt: skip
            raise DatasetError(f"{where or self._filepath}: no saved {what} here (config.json missing); run the pipeline that trains it first")  # fmt: skip
        with self._fs.open(f"{where}/config.json", "r") as file:
            return json.load(file)

    def catalogue(self) -> ItemCatalogue:
        """The saved model's own catalogue, read from its config.json alone (no weights):
        a sequence model keeps its fields at the top, a baseline under `catalogue`."""
        config = self._config("model")
        return ItemCatalogue.from_fields(config.get("catalogue") or config)

    what: str  # what the folder holds, for messages ("model", "baseline")

    @abstractmethod
    def _read(self, folder: Path, config: dict[str, Any]) -> Any:
        """The object saved in the local `folder` (whose config.json is `config`)."""

    @abstractmethod
    def _write(self, data: Any, folder: Path) -> None:
        """Write `data` into the empty local `folder`."""

    def load(self) -> Any:
        config = self._config(self.what)
        if self.local:
            return self._read(Path(self._where()), config)
        with tempfile.TemporaryDirectory() as copy:
            self._fs.get(self._where() + "/", copy + "/", recursive=True)
            return self._read(Path(copy), config)

    def save(self, data: Any) -> None:
        target = get_filepath_str(self._get_save_path(), self._protocol)
        if self.local:
            replace_folder(Path(target), lambda folder: self._write(data, folder))
        else:
            with tempfile.TemporaryDirectory() as copy:
                self._write(data, Path(copy))
                self._fs.put(copy + "/", target + "/", recursive=True)

    def _exists(self) -> bool:
        try:
            return self._fs.isfile(f"{self._where()}/config.json")
        except DatasetError:
            return False

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath), "protocol": self._protocol, "version": self._version}  # fmt: skip
