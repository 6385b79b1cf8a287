"""What a trained model knows about the items it ranks, kept in its own folder.

A model's item ids are positions in the item map of the data it was trained on: model
item `i + 1` is `original_ids[i]`. The same folder holds that map, the titles and years
it was trained with, each item's training count, and a fingerprint of the data and the
parameters (`trained_on`), so that

- the service scores a saved model alone, from its own catalogue, whatever ran since;
- evaluation and inference, which score the users of the data on disk, compare the
  model's map with that data's (`check_catalogue`) and stop with a message naming what
  to rerun, before any weights are read, when a later partial run changed the data.

Sequence models keep these fields in their config.json (`SequenceRecConfig`), baselines
in theirs (`catalogue`); `ItemCatalogue.from_fields` reads either.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

# What retrains every model on the data now on disk (the data pipelines left out: they
# wrote that data; repeating them with other --params would change it again).
RETRAIN = "kedro run --pipelines pretraining,fine_tuning,baselines,evaluation,reporting"


def digest(*parts: Any) -> str:
    """A short stable hash of JSON-able values and numpy arrays (16 hex digits)."""
    hasher = hashlib.sha256()
    for part in parts:
        if isinstance(part, np.ndarray):
            hasher.update(str(part.dtype).encode())
            hasher.update(np.ascontiguousarray(part).tobytes())
        else:
            hasher.update(json.dumps(part, sort_keys=True, default=str).encode())
    return hasher.hexdigest()[:16]


def original_ids(values: Any) -> list[int] | list[str]:
    """Original ids as the data has them, as plain Python values: integers (MovieLens, and
    any log whose ids are all whole numbers) or text (a log with ids such as "sku-17").
    Every place that keeps or compares original ids goes through this."""
    array = np.asarray(values)
    if array.dtype.kind in "iuf" or (len(array) and all(isinstance(v, (int, np.integer)) for v in array)):  # fmt: skip
        return array.astype(np.int64).tolist()
    return [str(v) for v in array]


def id_texts(values: Any) -> list[str]:
    """Original ids written as text ("17", "sku-17"): where ids typed one way (a log's text)
    meet ids typed another (integers), the same id written the same way is the same id."""
    return [str(v) for v in original_ids(values)]


def items_key(ids: Any) -> str:
    """The fingerprint of an item map (original ids in model-id order): two models, or a
    model and a table, agree on what every item id means exactly when their keys match."""
    ids = original_ids(ids)
    text = bool(ids) and isinstance(ids[0], str)
    return digest(ids) if text else digest(np.asarray(ids, dtype=np.int64))


def features_key(item_features: pd.DataFrame) -> str:
    """`items_key` of the item features table on disk."""
    return items_key(
        item_features.sort_values("item_id")["original_item_id"].to_numpy()
    )


def training_data_key(train_sequences: pd.DataFrame) -> str:
    """The fingerprint of the training sequences a model saw (users, items, order)."""
    sequences = train_sequences["item_ids"].tolist()
    lengths = np.fromiter(map(len, sequences), dtype=np.int64, count=len(sequences))
    items = np.concatenate([np.asarray(s, dtype=np.int64) for s in sequences]) if sequences else np.zeros(0, np.int64)  # fmt: skip
    return digest(train_sequences["user_id"].to_numpy(dtype=np.int64), lengths, items)


def item_counts(train_sequences: pd.DataFrame, n_items: int) -> list[int]:
    """Training interactions of each model item 1..n_items."""
    sequences = train_sequences["item_ids"].tolist()
    items = np.concatenate([np.asarray(s, dtype=np.int64) for s in sequences]) if sequences else np.zeros(0, np.int64)  # fmt: skip
    return np.bincount(items, minlength=n_items + 1)[1 : n_items + 1].tolist()


def trained_on(
    original_ids: Any, train_sequences: pd.DataFrame, parameters: Any, stage: str
) -> dict[str, Any]:
    """The fingerprint a trained model keeps: its item map, its training data, its
    parameters (the resolved spec or the chosen settings) and the stage that trained it."""
    from maskrec import __version__

    return {
        "items": items_key(original_ids),
        "n_items": len(original_ids),
        "training_data": training_data_key(train_sequences),
        "parameters": digest(parameters),
        "stage": stage,
        "maskrec": __version__,
    }


@dataclass(frozen=True)
class ItemCatalogue:
    """The items of one trained model, in model-id order (row i is model item i + 1)."""

    original_ids: list[int] | list[str]
    titles: list[str] | None = None  # None: a folder saved before models kept titles
    years: list[int | None] = field(default_factory=list)
    counts: list[int] | None = None
    trained_on: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_features(cls, item_features: pd.DataFrame) -> ItemCatalogue:
        features = item_features.sort_values("item_id")
        return cls(
            original_ids=original_ids(features["original_item_id"]),
            titles=features["title"].astype(str).tolist(),
            years=[None if pd.isna(y) else int(y) for y in features["year"]],
        )

    @classmethod
    def from_fields(cls, fields: dict[str, Any]) -> ItemCatalogue:
        """From a config.json's fields (`item_ids`, `item_titles`, `item_years`,
        `item_counts`, `trained_on`); a sequence model's years use 0 for unknown."""
        years = fields.get("item_years") or []
        return cls(
            original_ids=original_ids(fields.get("item_ids") or []),
            titles=fields.get("item_titles") or None,
            years=[int(y) if y else None for y in years],
            counts=fields.get("item_counts") or None,
            trained_on=fields.get("trained_on") or {},
        )

    def fields(self) -> dict[str, Any]:
        return {
            "item_ids": self.original_ids,
            "item_titles": self.titles,
            "item_years": self.years,
            "item_counts": self.counts,
            "trained_on": self.trained_on,
        }

    @property
    def key(self) -> str:
        return items_key(self.original_ids)

    def table(self) -> pd.DataFrame:
        """item_id (model id), original_item_id, title, year, popularity (training count;
        0 where unknown)."""
        n = len(self.original_ids)
        return pd.DataFrame({
            "item_id": np.arange(1, n + 1),
            "original_item_id": self.original_ids,
            "title": self.titles if self.titles is not None else [f"movie {i}" for i in self.original_ids],
            "year": pd.array(self.years if len(self.years) == n else [None] * n, dtype="Int64"),
            "popularity": np.asarray(self.counts if self.counts is not None else np.zeros(n), dtype=float),
        })  # fmt: skip


class CatalogueMismatch(ValueError):
    """A saved model was trained on another item map than the data it is asked to score."""


def check_catalogue(
    model: str, catalogue: ItemCatalogue, item_features: pd.DataFrame, where: str
) -> None:
    """Stop, saying what changed and what to rerun, unless `catalogue` (of the saved
    model `model`) has the item map of `item_features` (read from `where`)."""
    if catalogue.key == features_key(item_features):
        return
    trained, now = len(catalogue.original_ids), len(item_features)
    stage = catalogue.trained_on.get("stage", model)
    raise CatalogueMismatch(
        f"{model} was trained ({stage}) on another catalogue than the data on disk: "
        f"{trained:,} items (fingerprint {catalogue.key}) against {now:,} in {where} "
        f"(fingerprint {features_key(item_features)}); a data pipeline ran on other data "
        f"after it was trained. Retrain on this data: `{RETRAIN}` (then rerun this), or "
        "serve the model as it was trained: `maskrec serve` answers from its own catalogue"
    )
