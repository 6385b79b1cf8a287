"""Project pipelines: each pipeline package on its own, `__default__` (the target's own
models, every step), and `transfer` (the same plus pretraining on another release)."""

from __future__ import annotations

from kedro.pipeline import Pipeline

from maskrec.pipelines import (
    baselines,
    data_efficiency,
    data_processing,
    data_split,
    evaluation,
    fine_tuning,
    inference,
    pretraining,
    rating_prediction,
    reporting,
    transfer,
)
from maskrec.registry import models

PACKAGES = {
    "data_processing": data_processing, "data_split": data_split, "pretraining": pretraining,
    "fine_tuning": fine_tuning, "baselines": baselines, "evaluation": evaluation,
    "reporting": reporting, "inference": inference,
}  # fmt: skip
TRAINING = ("data_processing", "data_split", "pretraining", "fine_tuning", "baselines")


def register_pipelines() -> dict[str, Pipeline]:
    """Register the project's pipelines.

    `kedro run` runs `__default__`; `kedro run --pipelines transfer --params
    pretraining_source=...` adds the source's data, item alignment and the transfer models
    (the `transfer` package), and evaluates and reports every model; `data_efficiency`
    is the transfer run plus the models retrained on nested fractions of the target's
    training users and the curve; `rating_prediction` predicts ratings (RMSE, MAE) on
    its own protocols.
    """
    pipelines = {name: package.create_pipeline() for name, package in PACKAGES.items()}
    target = sum((pipelines[name] for name in TRAINING), Pipeline([]))
    inference_pipeline = pipelines["inference"]
    pipelines["__default__"] = target + pipelines["evaluation"] + pipelines["reporting"] + inference_pipeline  # fmt: skip
    every = models(transfer=True)
    pipelines["transfer"] = (
        target + transfer.create_pipeline() + evaluation.create_pipeline(every)
        + reporting.create_pipeline(every) + inference_pipeline
    )  # fmt: skip
    pipelines["data_efficiency"] = (
        pipelines["transfer"] + data_efficiency.create_pipeline()
    )
    # how much a user will like a film (RMSE), from the same cleaned interactions
    pipelines["rating_prediction"] = pipelines["data_processing"] + rating_prediction.create_pipeline()  # fmt: skip
    return pipelines
