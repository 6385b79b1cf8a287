"""Download, verify and safely extract MovieLens releases from GroupLens.

Guarantees, in order:
1. The archive streams into a `.part` file; a short or broken transfer raises and the part
   file is deleted.
2. Its MD5 is checked against the value GroupLens publishes (pinned here where the release
   is frozen, otherwise read from the `<archive>.md5` file GroupLens serves beside it).
3. Extraction goes to a temporary folder next to the cache; any member whose path would
   escape it (absolute paths, `..`, links) aborts the whole extraction.
4. Only then is the temporary folder renamed into place and a `.complete` marker written.
   A folder without the marker is never trusted: it is removed and fetched again.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import requests

from maskrec.progress import Progress

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://files.grouplens.org/datasets/movielens"
COMPLETE_MARKER = ".complete"


@dataclass(frozen=True)
class Release:
    name: str
    md5: str | None  # None: read the checksum GroupLens publishes beside the archive


# MD5 values published by GroupLens for frozen releases. ml-latest-small and ml-32m are
# checked against the `.md5` file served next to the archive at download time.
RELEASES = {
    "ml-100k": Release("ml-100k", "0e33842e24a9c977be4e0107933c0723"),
    "ml-1m": Release("ml-1m", "c4d9eecfca2ab87c1945afe126590906"),
    "ml-20m": Release("ml-20m", "cd245b17a1ae2cc31bb14903e1204af3"),
    "ml-25m": Release("ml-25m", "6b51fb2759a8657d3bfcbfc42b592ada"),
    "ml-32m": Release("ml-32m", None),
    "ml-latest-small": Release("ml-latest-small", None),
}


class DownloadError(RuntimeError):
    """A release could not be fetched, verified or extracted; nothing was left behind."""


def release_folder(cache_dir: Path, name: str) -> Path:
    return Path(cache_dir) / name


def is_complete(folder: Path) -> bool:
    return (folder / COMPLETE_MARKER).is_file()


def _published_md5(url: str, timeout: float) -> str:
    response = requests.get(url + ".md5", timeout=timeout)
    if response.status_code != 200:
        raise DownloadError(
            f"{url}.md5: HTTP {response.status_code}; cannot verify the archive"
        )
    token = response.text.strip().split()
    if not token or len(token[0]) != 32:
        raise DownloadError(f"{url}.md5: unexpected content {response.text[:80]!r}")
    return token[0].lower()


def _stream_to(url: str, target: Path, timeout: float) -> str:
    """Stream `url` into `target`; return the MD5 of what arrived. Raises on short reads."""
    digest = hashlib.md5()
    received = 0
    try:
        with requests.get(url, stream=True, timeout=timeout) as response:
            if response.status_code != 200:
                raise DownloadError(f"{url}: HTTP {response.status_code}")
            expected = response.headers.get("Content-Length")
            size = int(expected) if expected and expected.isdigit() else 0
            with open(target, "wb") as handle, Progress(logger, f"downloading {url}", size, bytes_=True) as progress:  # fmt: skip
                for chunk in response.iter_content(chunk_size=1 << 20):
                    handle.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    progress.update(len(chunk))
    except requests.RequestException as exc:
        raise DownloadError(
            f"{url}: transfer failed after {received} bytes: {exc}"
        ) from exc
    if expected is not None and received != int(expected):
        raise DownloadError(
            f"{url}: transfer interrupted, {received} of {expected} bytes received"
        )
    return digest.hexdigest()


def safe_extract(archive: Path, target: Path) -> None:
    """Extract a zip into `target`, refusing any member that would land outside it."""
    root = target.resolve()
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            name = info.filename
            path = PurePosixPath(name)
            mode = (info.external_attr >> 16) & 0o170000
            if path.is_absolute() or ".." in path.parts or name.startswith(("/", "\\")):
                raise DownloadError(
                    f"{archive}: unsafe member path {name!r}; refusing to extract"
                )
            if mode == 0o120000:  # a symbolic link
                raise DownloadError(
                    f"{archive}: member {name!r} is a link; refusing to extract"
                )
            destination = (root / name).resolve()
            if not destination.is_relative_to(root):
                raise DownloadError(
                    f"{archive}: member {name!r} escapes the target folder"
                )
        zf.extractall(root)


def fetch_release(
    name: str,
    cache_dir: Path,
    base_url: str = DEFAULT_BASE_URL,
    timeout: float = 60.0,
) -> Path:
    """Return the folder of release `name` under `cache_dir`, downloading it if needed."""
    if name not in RELEASES:
        raise DownloadError(
            f"unknown MovieLens release {name!r}; known: {sorted(RELEASES)}"
        )
    cache_dir = Path(cache_dir)
    folder = release_folder(cache_dir, name)
    if is_complete(folder):
        return folder
    if folder.exists():
        logger.warning(
            "%s has no %s marker (an earlier run stopped); fetching again",
            folder,
            COMPLETE_MARKER,
        )
        shutil.rmtree(folder)

    cache_dir.mkdir(parents=True, exist_ok=True)
    url = f"{base_url.rstrip('/')}/{name}.zip"
    expected = RELEASES[name].md5 or _published_md5(
        f"{base_url.rstrip('/')}/{name}.zip", timeout
    )
    logger.info("Downloading %s to %s", url, cache_dir)
    part = cache_dir / f".{name}.zip.part"
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=cache_dir))
    try:
        actual = _stream_to(url, part, timeout)
        if actual != expected:
            raise DownloadError(
                f"{url}: MD5 {actual} does not match the published {expected}"
            )
        safe_extract(part, staging)
        # Archives hold one top folder named like the release; keep its content.
        inner = staging / name
        source = inner if inner.is_dir() else staging
        (source / COMPLETE_MARKER).write_text(f"md5 {actual}\nurl {url}\n")
        os.replace(source, folder)
    finally:
        part.unlink(missing_ok=True)
        shutil.rmtree(staging, ignore_errors=True)
    return folder
