"""`MovieLensDataset`: the catalog's single entry point to raw data.

`source` decides where the data comes from:
- `sample`: the deterministic generator (`maskrec.sample`), written once per spec under
  `cache_dir/sample-.../` in the ml-latest-small layout and read back like any release;
- a release name (`ml-100k`, `ml-1m`, `ml-latest-small`, `ml-20m`, `ml-25m`, `ml-32m`):
  read from `cache_dir/<name>/`, downloaded and verified first when missing;
- a `.csv` or `.parquet` file, or a folder holding `interactions.<csv|parquet>` (and
  optionally `items.<csv|parquet>`), is a log of one's own: user, item and time columns
  named by `columns` (`--params columns.user=...`), text or integer ids, an optional
  rating column (without it: implicit feedback), an optional item table (`items`) whose
  categories become the genres;
- anything else is a folder path in one of the MovieLens layouts.

Loading returns a dict with `interactions`, `items` and `source` (a description of what
was read, `ratings` saying whether it has any), the shape `data_processing` expects.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset, DatasetError

from maskrec.datasets.download import (
    COMPLETE_MARKER,
    DEFAULT_BASE_URL,
    RELEASES,
    fetch_release,
    is_complete,
    release_folder,
)
from maskrec.datasets.readers import (
    LogColumns,
    detect_layout,
    find_log,
    is_log_file,
    log_has_ratings,
    read_interaction_log,
    read_movielens_folder,
)
from maskrec.sample import SampleSpec, write_sample

NO_SOURCE = (
    "none"  # the catalog's default where a source is optional (pretraining_source)
)


class MovieLensDataset(AbstractDataset[None, dict[str, Any]]):
    """Read-only dataset for MovieLens releases, local folders and the generated sample."""

    def __init__(
        self,
        source: str = "sample",
        cache_dir: str = "data/01_raw",
        sample_args: dict[str, Any] | None = None,
        base_url: str | None = None,
        timeout: float = 60.0,
        items: str | None = None,
        columns: dict[str, str] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._source = str(source)
        self._items = (
            None if items in (None, NO_SOURCE) else Path(str(items)).expanduser()
        )
        try:
            self._columns = LogColumns(
                **{k: str(v) for k, v in (columns or {}).items()}
            )
        except TypeError as exc:
            raise DatasetError(f"columns: {exc} (known: {', '.join(LogColumns.__dataclass_fields__)})") from exc  # fmt: skip
        self._cache_dir = Path(cache_dir)
        self._sample = SampleSpec(**(sample_args or {}))
        # The environment variable lets tests (and mirrors) point at another server.
        self._base_url = base_url or os.environ.get(
            "MASKREC_MOVIELENS_URL", DEFAULT_BASE_URL
        )
        self._timeout = timeout
        self.metadata = metadata

    @property
    def source(self) -> str:
        return self._source

    def resolve_folder(self) -> Path:
        """The folder to read, generating or downloading it first when needed."""
        if self._source == NO_SOURCE:
            raise DatasetError(
                "no source given (source='none'): name a release, a folder or 'sample'"
            )
        if self._source == "sample":
            folder = self._cache_dir / self._sample.key()
            if not is_complete(folder):
                _write_sample_atomically(self._sample, folder)
            return folder
        if self._source in RELEASES:
            return fetch_release(
                self._source, self._cache_dir, self._base_url, self._timeout
            )
        folder = Path(self._source).expanduser()
        if is_log_file(folder) and folder.is_file():
            return folder
        if not folder.is_dir():
            raise DatasetError(
                f"source={self._source!r} is neither 'sample', a known release "
                f"({', '.join(sorted(RELEASES))}), an existing folder nor a .csv or "
                ".parquet file"
            )
        return folder

    def log_files(self) -> tuple[Path, Path | None] | None:
        """(interactions, items) when the source is a log of one's own, else None; no
        data is read. An `items` table given explicitly wins over a folder's own."""
        path = Path(self._source).expanduser()
        if self._source in ("sample", NO_SOURCE, *RELEASES):
            found = None
        elif is_log_file(path):
            found = (path, None) if path.is_file() else None
        else:
            found = find_log(path) if path.is_dir() else None
        if found is None:
            if self._items is not None:
                raise DatasetError(f"items={self._items} is read only with a log of one's own (a .csv or .parquet source)")  # fmt: skip
            return None
        return found[0], self._items or found[1]

    def has_ratings(self) -> bool:
        """Whether the source carries ratings (MovieLens always does; a log when it has its
        rating column), from a header or schema only: for checks at run start."""
        files = self.log_files()
        return files is None or log_has_ratings(files[0], self._columns)

    def catalogue_size(self) -> int | None:
        """Items in the catalogue, known without reading ratings or downloading: the
        sample's `n_items`, or the rows of a local items file; None when the release is
        not on disk yet. For decisions announced at run start (hooks.py)."""
        if self._source == "sample":
            return self._sample.n_items
        if self._source == NO_SOURCE or not self._exists() or self.log_files():
            return None
        folder = (
            release_folder(self._cache_dir, self._source)
            if self._source in RELEASES
            else Path(self._source).expanduser()
        )
        try:
            layout, place = detect_layout(folder)
        except ValueError:
            return None  # loading will explain what is wrong with the folder
        with open(place / layout.items_file, "rb") as items:
            lines = sum(1 for line in items if line.strip())
        return lines - (layout.name == "movielens-csv")  # the csv layout has a header

    def load(self) -> dict[str, Any]:
        folder = self.resolve_folder()
        files = self.log_files()
        if files is not None:
            interactions, items = read_interaction_log(*files, self._columns)
            described = {"layout": "interaction-log", "file": str(files[0]), "items_file": str(files[1]) if files[1] else None}  # fmt: skip
        else:
            interactions, items, layout = read_movielens_folder(folder)
            described = {"layout": layout, "folder": str(folder)}
        ratings = bool(interactions["rating"].notna().any())
        return {
            "interactions": interactions,
            "items": items,
            "source": {"source": self._source, **described, "ratings": ratings},
        }

    def save(self, data: Any) -> None:
        raise DatasetError(
            "MovieLensDataset is read-only: raw data is never overwritten"
        )

    def _exists(self) -> bool:
        if self._source == "sample":
            return is_complete(self._cache_dir / self._sample.key())
        if self._source in RELEASES:
            return is_complete(release_folder(self._cache_dir, self._source))
        return Path(self._source).expanduser().exists()

    def _describe(self) -> dict[str, Any]:
        return {"source": self._source, "cache_dir": str(self._cache_dir)}


def _write_sample_atomically(spec: SampleSpec, folder: Path) -> None:
    """Generate into a temporary folder and rename it, so no half-written sample remains."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    if folder.exists():
        shutil.rmtree(folder)
    staging = Path(tempfile.mkdtemp(prefix=".sample.", dir=folder.parent))
    try:
        write_sample(spec, staging)
        (staging / COMPLETE_MARKER).write_text(f"{spec}\n")
        os.replace(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
