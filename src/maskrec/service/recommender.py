"""The model side of the recommendation service: the chosen model and its own catalogue
(kept in its folder: `maskrec.catalogue`), loaded once through the project's catalog, and the project's one scoring path
(`evaluation.recommend`) batched across concurrent requests.

Requests name films by original MovieLens id or by title; `Catalogue.resolve` turns them
into model ids or says, per entry, what is wrong with it.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from maskrec.alignment import normalise_title
from maskrec.catalogue import ItemCatalogue, check_catalogue, original_ids
from maskrec.datasets.new_films import NewFilmsDataset
from maskrec.models.new_items import NewItems
from maskrec.models.sequence import SequenceRecModel
from maskrec.params import InferenceParams, TrainingParams
from maskrec.registry import chosen
from maskrec.scoring import Model, WithNewFilms, recommend

_YEAR = re.compile(r"\s*\(\d{4}\)\s*$")


class UnknownItems(ValueError):
    """Entries of a history that name no film of the catalogue: (index, message) pairs."""

    def __init__(self, problems: list[tuple[int, str]]) -> None:
        super().__init__("; ".join(f"history[{i}]: {m}" for i, m in problems))
        self.problems = problems


@dataclass
class Catalogue:
    """The films the model can recommend: model id -> original id, title, year and
    training popularity (for ordering title suggestions)."""

    items: pd.DataFrame  # indexed by model item id
    by_original: dict[int | str, int] = field(init=False)
    by_title: dict[str, list[int]] = field(init=False)
    search_keys: np.ndarray = field(init=False)
    columns: tuple[np.ndarray, np.ndarray, np.ndarray] = field(init=False)

    def __post_init__(self) -> None:
        items = self.items
        self.by_original = dict(zip(original_ids(items["original_item_id"]), items.index, strict=True))  # fmt: skip
        # films added after training (`--new-films`): recommended, never read in a history
        self.added = set(items.index[items["new_film"]].tolist()) if "new_film" in items else set()  # fmt: skip
        self.by_title = {}
        for item, title in zip(items.index, items["title"], strict=True):
            # "Toy Story (1995)" answers to its full title and, where no other film has
            # it, to "toy story"
            for key in {normalise_title(title), normalise_title(_YEAR.sub("", title))}:
                if key:
                    self.by_title.setdefault(key, []).append(int(item))
        self.search_keys = np.array(
            items["title"].map(normalise_title).tolist(), dtype=str
        )
        # plain columns for `describe`, which every request calls (pandas row access
        # cost milliseconds a request)
        self.columns = (
            np.asarray(original_ids(items["original_item_id"]), dtype=object),
            items["title"].to_numpy(dtype=object),
            np.array([None if pd.isna(y) else int(y) for y in items["year"]], dtype=object),
        )  # fmt: skip

    @classmethod
    def from_model(cls, catalogue: ItemCatalogue) -> Catalogue:
        """The catalogue a model keeps in its folder (popularity: training counts)."""
        return cls(catalogue.table().set_index("item_id"))

    def resolve(self, history: list[int | str]) -> list[int]:
        """Model ids of a history of original ids (int, or text where the data's ids are
        text) or titles (str)."""
        ids, problems = [], []
        added = "was added after training: it can be recommended, but no model has read it, so a history cannot hold it yet"  # fmt: skip
        for index, entry in enumerate(history):
            if isinstance(entry, int) or entry in self.by_original:
                found = self.by_original.get(entry)
                if found is None:
                    problems.append((index, f"no film with movie id {entry} in the catalogue"))  # fmt: skip
                elif found in self.added:
                    problems.append((index, f"film {entry} {added}"))
                else:
                    ids.append(found)
                continue
            matches = self.by_title.get(normalise_title(entry), [])
            if len(matches) == 1 and matches[0] in self.added:
                problems.append((index, f"{entry!r} {added}"))
            elif len(matches) == 1:
                ids.append(matches[0])
            elif matches:
                names = ", ".join(f"{self.items.at[m, 'title']!r} (id {self.items.at[m, 'original_item_id']})" for m in matches[:5])  # fmt: skip
                problems.append((index, f"{entry!r} names {len(matches)} films: {names}; give the year or the movie id"))  # fmt: skip
            else:
                problems.append((index, f"no film titled {entry!r} in the catalogue"))
        if problems:
            raise UnknownItems(problems)
        return ids

    def search(self, query: str, limit: int) -> list[dict[str, Any]]:
        """Films whose normalised title contains every word of `query`, the most
        popular first."""
        words = normalise_title(query).split()
        if not words:
            return []
        hits = np.ones(len(self.search_keys), dtype=bool)
        for word in words:
            hits &= np.char.find(self.search_keys, word) >= 0
        found = self.items[hits].sort_values("popularity", ascending=False, kind="stable")  # fmt: skip
        return self.describe(found.index[:limit])

    def describe(self, ids: Any, scores: Any = None) -> list[dict[str, Any]]:
        """Original id, title and year (and score) of each model item id in `ids`."""
        rows = self.items.index.get_indexer(np.asarray(ids, dtype=np.int64).reshape(-1))
        if (rows < 0).any():
            raise KeyError(f"model item ids not in the catalogue: {np.asarray(ids)[rows < 0][:5]}")  # fmt: skip
        original, titles, years = (column[rows].tolist() for column in self.columns)
        out = [
            {"item_id": item, "title": title, "year": year}
            for item, title, year in zip(original, titles, years, strict=True)
        ]
        if scores is not None:
            for entry, score in zip(out, scores, strict=True):
                entry["score"] = float(score)
        return out


@dataclass
class Recommender:
    """A trained model (any family) and its catalogue."""

    model: Model
    name: str
    catalogue: Catalogue
    batch_size: int
    trained_on: dict[str, Any] = field(default_factory=dict)  # the data's fingerprint

    def top(self, histories: list[list[int]], k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k unseen items (model ids) and scores per history: `evaluation.recommend`."""
        return recommend(self.model, histories, k, self.batch_size)


def load_recommender(project: Path, env: str | None = None, model: str = "best", version: str | None = None,
                     new_films: str | None = None) -> Recommender:  # fmt: skip
    """The model `inference` would use (best by validation NDCG@10, or `model`), read
    through the project's catalog after a `kedro run`, with the catalogue it keeps in its
    own folder: whatever pipeline ran since on other data, it answers as it was trained.
    `version`: a run's timestamp (the versioned catalog's `<entry>/<version>/`): that run's
    models and evaluation instead of the latest. `new_films`: a CSV of films added after
    training (`NewFilmsDataset`), recommended from their content as inference does."""
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(project)
    with KedroSession.create(project_path=project, env=env) as session:
        context = session.load_context()
        if version is None:
            catalog = context.catalog
        else:  # as `kedro run --load-versions` builds it (Kedro's catalog hook)
            _check_version(context.catalog, version)
            catalog = context._get_catalog(load_versions={"trained_models": version, "model_stats": version, "new_films_model": version})  # fmt: skip
        if not catalog.exists("model_stats"):
            raise FileNotFoundError(
                f"{project}: no evaluated models to serve (model_stats is missing); run "
                "`kedro run` (or `make run`) in this project first"
            )
        stats, trained, params, training = (
            catalog.load(name) for name in ("model_stats", "trained_models", "params:inference", "params:training")
        )  # fmt: skip
        configured = _group(params, InferenceParams).model_dump()
        params = InferenceParams(**{**configured, "model": model})  # validates the name
        name = chosen(stats, params.model)
        saved = trained[name]
        own = saved.catalogue()
        if own.titles is None:  # a folder saved before models kept their titles
            own = _titled(name, own, catalog.load("item_features"))
        scorer, items = saved(), own.table().set_index("item_id")
        if new_films:
            scorer, items = _with_new_films(scorer, name, own, items, stats, NewFilmsDataset(file=new_films).load(), catalog.load("new_films_model"))  # fmt: skip
    return Recommender(scorer, name, Catalogue(items), _group(training, TrainingParams).scoring_batch_size, own.trained_on)  # fmt: skip


def _with_new_films(model: Any, name: str, own: ItemCatalogue, items: pd.DataFrame, stats: dict, films: pd.DataFrame,
                    mixture: NewItems) -> tuple[Any, pd.DataFrame]:  # fmt: skip
    """The served model with films added after training mixed in from content (as
    inference's `add_new_films`), and the catalogue grown by them."""
    if not isinstance(model, SequenceRecModel):
        raise ValueError(f"--new-films: new films are mixed into a sequence model's ranking; {name!r} is a baseline: serve a sequence model with --model <name>")  # fmt: skip
    if mixture.catalogue is None or mixture.catalogue.key != own.key:
        raise ValueError(f"--new-films: new_films_model was fitted on another catalogue than {name}'s; run `kedro run --pipelines baselines` (or serve the run that fitted both with --version)")  # fmt: skip
    grown, added = mixture.add_films(films, set(int(i) for i in own.original_ids))
    added = added.set_index("item_id")[["original_item_id", "title", "year"]]
    added = added.assign(popularity=0.0, new_film=True)
    temperature = float(stats.get(name, {}).get("temperature", 1.0))
    return WithNewFilms(model, grown, temperature), pd.concat(
        [items.assign(new_film=False), added]
    )


def load_recommender_from_uri(uri: str, project: Path, env: str | None = None, tracking_uri: str | None = None,
                              new_films: str | None = None) -> Recommender:  # fmt: skip
    """The model an MLflow model URI names (`runs:/<run id>/model`,
    `models:/<name>/<version>`), logged by a tracked run (`maskrec.tracking`), with its
    own catalogue. The URI is resolved in `tracking_uri`, else in the store the project's
    mlflow.yml names (its session sets it up, as for `kedro run`). `new_films`: a CSV of
    films added after training, mixed in by the new-film mixture logged with the model."""
    import mlflow
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    from maskrec.datasets.mlflow_model import SCORING_BATCH

    bootstrap_project(project)
    with KedroSession.create(project_path=project, env=env) as session:
        session.load_context()  # kedro-mlflow points MLflow at the project's store
    if tracking_uri:
        mlflow.set_tracking_uri(tracking_uri)
        mlflow.set_registry_uri(tracking_uri)
    logged = mlflow.pyfunc.load_model(uri).unwrap_python_model()
    scorer, items = logged.model, logged.catalogue.table().set_index("item_id")
    if new_films:
        if logged.new_films is None:
            raise ValueError(f"--new-films: {uri} was logged without a new-film mixture (a baseline, or a run before mixtures were logged with models); serve the project's own models instead (leave out --model-uri)")  # fmt: skip
        films = NewFilmsDataset(file=new_films).load()
        scorer, items = _with_new_films(scorer, logged.name, logged.catalogue, items, {logged.name: {"temperature": logged.temperature}}, films, logged.new_films)  # fmt: skip
    return Recommender(scorer, logged.name, Catalogue(items), SCORING_BATCH, logged.catalogue.trained_on)  # fmt: skip


def _check_version(catalog: Any, version: str) -> None:
    """A version that no evaluated run saved is an error listing those that exist."""
    evaluated = catalog.get("model_stats")
    if not hasattr(evaluated, "list_versions"):
        raise ValueError("--version: model_stats is not versioned in this project's catalog")  # fmt: skip
    try:
        versions = evaluated.list_versions(full_path=False)
    except Exception:  # noqa: BLE001 (Kedro raises when there is no version at all)
        versions = []
    if version not in versions:
        raise ValueError(f"--version {version}: no run saved evaluated models at that version; saved: {', '.join(versions[:10]) or 'none'}")  # fmt: skip


def _titled(
    name: str, own: ItemCatalogue, item_features: pd.DataFrame
) -> ItemCatalogue:
    """An older model folder's catalogue with the titles and years of the item features
    on disk, which must be the ones it was trained on."""
    check_catalogue(name, own, item_features, "item_features")
    from_disk = ItemCatalogue.from_features(item_features)
    return replace(own, titles=from_disk.titles, years=from_disk.years)


def _group(value: Any, kind: type) -> Any:
    """A parameter group as the catalog loads it outside a run (a dict), validated."""
    return value if isinstance(value, kind) else kind(**value)


class Batcher:
    """Scores concurrent requests together: while one batch is being scored (in a worker
    thread, so the server keeps accepting), new requests queue up and go as the next
    batch. No request waits for a batch to fill: an idle server scores at once."""

    def __init__(self, recommender: Recommender, max_batch: int = 64) -> None:
        self.recommender, self.max_batch = recommender, max_batch
        self.pending: list[tuple[list[int], int, asyncio.Future]] = []
        self.wake = asyncio.Event()
        self.task: asyncio.Task | None = None

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._serve())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)

    async def submit(self, history: list[int], k: int) -> tuple[np.ndarray, np.ndarray]:
        future = asyncio.get_running_loop().create_future()
        self.pending.append((history, k, future))
        self.wake.set()
        return await future

    async def _serve(self) -> None:
        while True:
            await self.wake.wait()
            self.wake.clear()
            while self.pending:
                batch = self.pending[: self.max_batch]
                del self.pending[: self.max_batch]
                k = max(k for _, k, _ in batch)
                try:
                    items, scores = await asyncio.to_thread(self.recommender.top, [h for h, _, _ in batch], k)  # fmt: skip
                except Exception as error:  # noqa: BLE001 (each waiting request gets it)
                    for *_, future in batch:
                        if not future.done():
                            future.set_exception(error)
                    continue
                for row, (_, wanted, future) in enumerate(batch):
                    if not future.done():  # its client may have gone
                        future.set_result((items[row, :wanted], scores[row, :wanted]))
