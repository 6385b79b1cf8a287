"""`ArrayModelDataset`: a fitted baseline as a folder of safetensors arrays + JSON config
(its kind, settings and its own catalogue: `maskrec.catalogue`).

Loading reads numbers and a kind name, never pickles; saving swaps the folder in whole.
"""

from __future__ import annotations

import json
from pathlib import Path

from kedro.io import DatasetError
from safetensors.numpy import load_file, save_file

from maskrec.catalogue import ItemCatalogue
from maskrec.datasets._atomic import FolderDataset, replace_folder
from maskrec.models.baselines import BASELINES, Baseline


class ArrayModelDataset(FolderDataset):
    def load(self) -> Baseline:
        meta_path = self._config("baseline")
        meta = json.loads(meta_path.read_text())
        if meta["kind"] not in BASELINES:
            raise DatasetError(
                f"{meta_path}: unknown baseline kind {meta['kind']!r}; known: {sorted(BASELINES)}"
            )
        arrays = load_file(self._path / "arrays.safetensors")
        catalogue = meta.get("catalogue")
        return BASELINES[meta["kind"]](
            n_items=meta["n_items"], config=meta["config"], arrays=arrays,
            catalogue=ItemCatalogue.from_fields(catalogue) if catalogue else None,
        )  # fmt: skip

    def save(self, model: Baseline) -> None:
        def write(folder: Path) -> None:
            meta = {
                "kind": model.kind,
                "n_items": model.n_items,
                "config": model.config,
                "catalogue": model.catalogue.fields() if model.catalogue else None,
            }
            (folder / "config.json").write_text(json.dumps(meta, indent=2))
            save_file(dict(model.arrays), folder / "arrays.safetensors")

        replace_folder(self._path, write)
