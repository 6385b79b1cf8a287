"""A saved maskrec model as an MLflow model (a pyfunc), so that it can be found again by
run id or registered name and version, and served from there (`maskrec serve
--model-uri runs:/<id>/model` or `models:/<name>/<version>`).

The MLflow model holds the model's folder (weights, config and its own catalogue:
`maskrec.catalogue`) as an artifact and scores through the project's one scoring path
(`scoring.recommend`). Its signature: a `history` column of original item ids (oldest
first) in, one row per recommendation out (`request`, `rank`, `item_id`, `title`,
`year`, `score`); `k` is a parameter (default 10). The model is logged from code
(`mlflow_entry.py`), nothing is pickled; loading it needs maskrec installed.

A sequence model is logged with the run's new-film mixture beside it (`new_films`
artifact, `maskrec.models.new_items`) and its softmax temperature, so `maskrec serve
--model-uri ... --new-films <csv>` recommends films added after training as the project
does; the pyfunc itself ranks the catalogue it was trained on.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd

from maskrec.catalogue import ItemCatalogue, original_ids
from maskrec.datasets.array_model import ArrayModelDataset
from maskrec.datasets.model_folder import ModelFolderDataset
from maskrec.scoring import Model, recommend

ARTIFACT = "model"  # the folder's key among the MLflow model's artifacts
NEW_FILMS = "new_films"  # the new-film mixture's folder, beside a sequence model
DEFAULT_K = 10
SCORING_BATCH = 256


def load_folder(folder: Path) -> Model:
    """A model folder of either family (a baseline's config.json names its `kind`)."""
    config = json.loads((Path(folder) / "config.json").read_text())
    kind = ArrayModelDataset if "kind" in config else ModelFolderDataset
    return kind(filepath=str(folder)).load()


class RecommenderModel(mlflow.pyfunc.PythonModel):
    """Top-k unseen items, with titles and scores, for histories of original item ids."""

    def load_context(self, context: Any) -> None:
        self.model = load_folder(Path(context.artifacts[ARTIFACT]))
        self.name = (context.model_config or {}).get("name", "model")
        self.temperature = float((context.model_config or {}).get("temperature", 1.0))
        mixture = context.artifacts.get(NEW_FILMS)
        self.new_films = ArrayModelDataset(filepath=str(mixture)).load() if mixture else None  # fmt: skip
        if self.model.catalogue is None:
            raise ValueError(f"{context.artifacts[ARTIFACT]}: saved before models kept their catalogue; retrain it to log or serve it alone")  # fmt: skip
        self.catalogue: ItemCatalogue = self.model.catalogue
        self.table = self.catalogue.table()
        self.by_original = dict(zip(original_ids(self.table["original_item_id"]), self.table["item_id"], strict=True))  # fmt: skip
        # a request's ids as the catalogue keeps them: integers, or text for text ids
        self.as_id = (
            str
            if self.by_original and isinstance(next(iter(self.by_original)), str)
            else int
        )

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict | None = None
    ) -> pd.DataFrame:
        k = int((params or {}).get("k", DEFAULT_K))
        histories = []
        for row, history in enumerate(model_input["history"]):
            unknown = [
                self.as_id(i) for i in history if self.as_id(i) not in self.by_original
            ]
            if unknown:
                raise ValueError(f"history of row {row}: item ids {unknown[:10]} are not in {self.name}'s catalogue")  # fmt: skip
            histories.append([self.by_original[self.as_id(i)] for i in history])
        items, scores = recommend(self.model, histories, k, SCORING_BATCH)
        found = self.table.set_index("item_id").loc[items.ravel()]
        return pd.DataFrame({
            "request": np.repeat(np.arange(len(histories)), items.shape[1]),
            "rank": np.tile(np.arange(1, items.shape[1] + 1), len(histories)),
            "item_id": np.asarray(original_ids(found["original_item_id"])),
            "title": found["title"].to_numpy(dtype=object),
            "year": found["year"].astype("float64").to_numpy(),
            "score": scores.ravel().astype(np.float64),
        })  # fmt: skip


def log_model(folder: Path, name: str, registered_as: str | None = None, new_films: Path | None = None,
              temperature: float = 1.0) -> Any:  # fmt: skip
    """Log the model folder as an MLflow pyfunc into the active run (and register it as
    `registered_as` when given), with a signature inferred from a real prediction;
    `new_films`: the new-film mixture's folder, logged beside a sequence model with its
    softmax `temperature`."""
    from mlflow.models import infer_signature

    model = RecommenderModel()
    artifacts = {ARTIFACT: str(folder), **({NEW_FILMS: str(new_films)} if new_films else {})}  # fmt: skip
    config = {"name": name, **({"temperature": temperature} if new_films else {})}
    context = mlflow.pyfunc.PythonModelContext(artifacts=artifacts, model_config=config)
    model.load_context(context)
    example = pd.DataFrame({"history": [original_ids(model.table["original_item_id"].iloc[:3])]})  # fmt: skip
    with (
        warnings.catch_warnings()
    ):  # its hint on integer columns: ours never miss a value
        warnings.filterwarnings("ignore", "Hint: Inferred schema contains integer column", UserWarning)  # fmt: skip
        signature = infer_signature(example, model.predict(context, example), params={"k": DEFAULT_K})  # fmt: skip
    return mlflow.pyfunc.log_model(
        name=ARTIFACT,
        python_model=str(Path(__file__).with_name("mlflow_entry.py")),  # no pickle
        artifacts=artifacts,
        model_config=config,
        signature=signature,
        input_example=example,
        pip_requirements=_requirements(),
        registered_model_name=registered_as,
    )


def _requirements() -> list[str]:
    """What loading needs besides maskrec itself, pinned as installed (given, so MLflow
    does not infer them by importing the model in a subprocess)."""
    from importlib.metadata import version

    return [f"{p}=={version(p)}" for p in ("mlflow", "torch", "transformers", "pandas", "numpy", "scipy", "safetensors")]  # fmt: skip
