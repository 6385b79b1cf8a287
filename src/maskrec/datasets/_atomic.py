"""Write a folder so that readers see either the old complete version or the new one."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path


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
