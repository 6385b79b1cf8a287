"""`ArrayModelDataset`: a fitted baseline as a folder of safetensors arrays + JSON config
(its kind, settings and its own catalogue: `maskrec.catalogue`).

Loading reads numbers and a kind name, never pickles; saving swaps the folder in whole.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kedro.io import DatasetError
from safetensors.numpy import load_file, save_file

from maskrec.catalogue import ItemCatalogue
from maskrec.datasets._atomic import FolderDataset
from maskrec.models.baselines import BASELINES, Baseline
from maskrec.models.new_items import NewItems

# what a folder's `kind` may name: the baselines and the new-film mixture
KINDS = {**BASELINES, NewItems.kind: NewItems}


class ArrayModelDataset(FolderDataset):
    what = "baseline"

    def _read(self, folder: Path, meta: dict[str, Any]) -> Baseline | NewItems:
        if meta.get("kind") not in KINDS:
            raise DatasetError(
                f"{folder}/config.json: unknown baseline kind {meta.get('kind')!r}; known: {sorted(KINDS)}"
            )
        arrays = load_file(folder / "arrays.safetensors")
        catalogue = meta.get("catalogue")
        return KINDS[meta["kind"]](
            n_items=meta["n_items"], config=meta["config"], arrays=arrays,
            catalogue=ItemCatalogue.from_fields(catalogue) if catalogue else None,
        )  # fmt: skip

    def _write(self, model: Baseline | NewItems, folder: Path) -> None:
        meta = {
            "kind": model.kind,
            "n_items": model.n_items,
            "config": model.config,
            "catalogue": model.catalogue.fields() if model.catalogue else None,
        }
        (folder / "config.json").write_text(json.dumps(meta, indent=2))
        save_file(dict(model.arrays), folder / "arrays.safetensors")
