"""Test data and parameters made the way the project makes them: parameter groups from the
committed configuration (the one source of values), small splits from the generator
through the project's own nodes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd

from maskrec.config import load_parameters
from maskrec.datasets.split_targets import SplitTargetsDataset
from maskrec.pipelines.data_processing import nodes as processing
from maskrec.pipelines.data_split.nodes import split_interactions
from maskrec.sample import SampleSpec, generate_sample
from tests.conftest import PROJECT_ROOT


@cache
def _configured(overrides: str) -> dict:
    return load_parameters(PROJECT_ROOT / "conf", "local", json.loads(overrides))


def configured(**overrides: Any) -> dict:
    """Every parameter group as `kedro run --params` with `overrides` (nested dicts, as
    Kedro's --params gives them) sees it: resolved and validated."""
    return _configured(json.dumps(overrides, sort_keys=True))


def params(group: str, **overrides: Any):
    """Parameter group `group` as conf/ sets it, with `overrides` applied to the group
    the way `--params group.key=value` applies them (so a stage resolves them too)."""
    return configured(**({group: overrides} if overrides else {}))[group]


def no_given_targets() -> pd.DataFrame:
    return SplitTargetsDataset().load()


@cache
def small_split(n_users: int = 120, n_items: int = 200, n_ratings: int = 3000, common_period: bool = False, **split: Any) -> dict:  # fmt: skip
    ratings, movies = generate_sample(
        SampleSpec(n_users=n_users, n_items=n_items, n_ratings=n_ratings, seed=5)
    )
    interactions = ratings.rename(columns={"userId": "user_id", "movieId": "item_id"})
    items = movies.rename(columns={"movieId": "item_id"})
    items["year"] = items["title"].str.extract(r"\((\d{4})\)$")[0].astype("Int64")
    raw = {"interactions": interactions, "items": items, "source": {"source": "test"}}
    cleaning = params("data_processing")
    cleaned, _ = processing.clean_interactions(raw, cleaning)
    kcore, _ = processing.filter_k_core(cleaned, cleaning)
    remapped, user_map, item_map = processing.remap_ids(kcore)
    if common_period:  # every history spread over one period, in its order: global time
        position = remapped.groupby("user_id").cumcount()  # cuts then split every user
        length = remapped.groupby("user_id")["item_id"].transform("size")
        remapped["timestamp"] = (position * 1_000_000 // length + remapped["user_id"]).astype("int64")  # fmt: skip
    train, valid, test, cold, _ = split_interactions(
        remapped, user_map, item_map, no_given_targets(),
        params("data_split", **({"cold_user_fraction": 0.1} | split)),
    )  # fmt: skip
    return {"item_features": processing.build_item_features(raw, item_map), "train": train, "valid": valid, "test": test,
            "cold": cold, "interactions": remapped, "user_map": user_map, "item_map": item_map}  # fmt: skip


def run_pipeline(pipeline, inputs: dict[str, Any], caplog=None) -> dict[str, Any]:
    """Run a pipeline on an in-memory catalog holding `inputs` (parameters as
    `params:<group>` entries), the way spaceflights' tests do; return every output,
    intermediate ones included."""
    import logging

    from kedro.io import DataCatalog, MemoryDataset
    from kedro.runner import SequentialRunner

    class Kept(MemoryDataset):
        """Not emptied after its last reader, so the test can look at it."""

        def release(self) -> None:
            pass

    catalog = DataCatalog()
    for name, value in inputs.items():
        catalog[name] = value
    for name in pipeline.all_outputs():
        catalog[name] = Kept(copy_mode="assign")
    if caplog is not None:
        caplog.set_level(logging.DEBUG, logger="kedro")
    SequentialRunner().run(pipeline, catalog)
    if caplog is not None:
        assert "Pipeline execution completed successfully" in caplog.text
    return {name: catalog.load(name) for name in pipeline.all_outputs()}


QUICK_MODEL = {"max_len": 20, "hidden_size": 32, "intermediate_size": 64}
QUICK_SCHEDULE = {"epochs": 1, "batch_size": 64}
# every stage small and short: the shared blocks, and the stages that set their own epochs
QUICK = {"model": QUICK_MODEL, "schedule": QUICK_SCHEDULE, "training": {"device": "cpu", "checkpoint_dir": None},
         **{stage: {"schedule": QUICK_SCHEDULE} for stage in ("pretraining", "sasrec", "transfer_pretraining")}}  # fmt: skip


def quick(group: str, **overrides: Any):
    """A group with every stage small and short (`QUICK`), plus `overrides` to it."""
    return configured(**(QUICK | {group: QUICK.get(group, {}) | overrides}))[group]


def quick_parameters() -> dict[str, Any]:
    """Every group the training, evaluation and inference pipelines read, small and fast."""
    return {
        "params:training": quick("training"),
        "params:pretraining": quick("pretraining"),
        "params:fine_tuning": quick("fine_tuning"),
        "params:scratch": quick("scratch"),
        "params:sasrec": quick("sasrec"),
        "params:baselines": params(
            "baselines", item_knn_neighbours=[20], item_knn_shrink=[10.0],
            ease_l2=[100.0], mf_factors=[8], mf_l2=[10.0], mf_alpha=[5.0], mf_iterations=3,
        ),
        "params:evaluation": params("evaluation", bootstrap_samples=100, permutation_resamples=99),
        "params:inference": params("inference", history=[int(i) for i in small_split()["item_features"]["original_item_id"][:3]]),
    }  # fmt: skip


def training_inputs() -> dict[str, Any]:
    data = small_split()
    return {"item_features": data["item_features"], "train_sequences": data["train"],
            "valid_targets": data["valid"], **quick_parameters()}  # fmt: skip


def train_every_model() -> dict[str, Any]:
    """Every registered model (and its history), trained by its own pipeline on
    `small_split` with `quick_parameters`."""
    from maskrec.pipelines import baselines, fine_tuning, pretraining

    inputs = training_inputs()
    outputs = run_pipeline(pretraining.create_pipeline(), inputs)
    outputs |= run_pipeline(fine_tuning.create_pipeline(), {"pretrained_model": outputs["pretrained_model"], **inputs})  # fmt: skip
    return outputs | run_pipeline(baselines.create_pipeline(), inputs)


@contextmanager
def stopped_after(epoch: int, error: type[BaseException] = KeyboardInterrupt, name: str | None = None) -> Iterator[None]:  # fmt: skip
    """Every `fit` (or the one training `name`) stops, as a person stopping the run, once
    it has written the checkpoint of `epoch`."""
    from maskrec.training import loop

    save = loop._Checkpoint.save

    def save_then_stop(self, state, *args) -> None:
        save(self, state, *args)
        if state.epoch == epoch and self.path is not None and name in (None, self.name):
            raise error

    loop._Checkpoint.save = save_then_stop
    try:
        yield
    finally:
        loop._Checkpoint.save = save


def saved(path: Path) -> Path:
    """Where a catalog entry's latest save is: `<path>/<version>/<name>` for a versioned
    entry (models, histories, reports), `path` itself for one that is not."""
    versions = sorted(path.glob(f"*/{path.name}")) if path.is_dir() else []
    return versions[-1] if versions else path
