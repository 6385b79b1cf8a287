"""Project pipelines: each pipeline package on its own, and the runs composed of them.

This is the one place where pipelines are put together: a pipeline package imports no
other (import-linter holds that), so the transfer run's source data, the data-efficiency
fractions and the rating folds are composed here from the packages' `create_pipeline`.
"""

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
    seeds,
    transfer,
    tuning,
)
from maskrec.registry import BY_NAME, models

PACKAGES = {
    "data_processing": data_processing, "data_split": data_split, "pretraining": pretraining,
    "fine_tuning": fine_tuning, "baselines": baselines, "evaluation": evaluation,
    "reporting": reporting, "inference": inference,
}  # fmt: skip
# the transfer package's nodes that make the source's sequences, not its models
TRANSFER_DATA = (f"{transfer.SOURCE}.align_source_items_node", f"{transfer.SOURCE}.map_source_sequences_node", "join_sequences_node")  # fmt: skip
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
        target + source_data(pipelines["data_processing"]) + transfer.create_pipeline()
        + evaluation.create_pipeline(every) + reporting.create_pipeline(every) + inference_pipeline
    )  # fmt: skip
    pipelines["data_efficiency"] = pipelines[
        "transfer"
    ] + data_efficiency.create_pipeline(fraction_retraining(pipelines))
    # equal-budget tuning of the compared models, on training and validation data only
    pipelines["tuning"] = pipelines["data_processing"] + pipelines["data_split"] + tuning.create_pipeline()  # fmt: skip
    # the same with the transfer run's models (and the source's data they train on)
    pipelines["transfer_tuning"] = (
        pipelines["data_processing"] + pipelines["data_split"] + source_data(pipelines["data_processing"])
        + transfer.create_pipeline().only_nodes(*TRANSFER_DATA) + tuning.create_pipeline(transfer=True)
    )  # fmt: skip
    # the latest evaluations of several training seeds, compared (run once per seed first)
    pipelines["seeds"] = seeds.create_pipeline()
    # how much a user will like a film (RMSE), from the same cleaned interactions
    pipelines["rating_prediction"] = pipelines["data_processing"] + rating_prediction.create_pipeline()  # fmt: skip
    return pipelines


def source_data(processing: Pipeline) -> Pipeline:
    """The transfer source through the same data_processing pipeline, its datasets
    prefixed with `pretraining_source.`, with the same cleaning rules."""
    return Pipeline(
        processing,
        namespace=transfer.SOURCE,
        parameters={"params:data_processing"},
    )


def fraction_retraining(pipelines: dict[str, Pipeline]) -> Pipeline:
    """What each fraction of the data-efficiency curve retrains on its users: the
    target-side training of the curve's models (Cloze pretraining and fine-tuning, the
    source-pretrained model continued and fine-tuned, SASRec) and their evaluation."""
    return (
        pipelines["pretraining"]
        + pipelines["fine_tuning"].only_nodes("train_teacher_node", "warm_start_node", "fine_tune_pretrained_node")
        + transfer.create_pipeline().only_nodes("continue_on_target_node", "transfer_warm_start_node", "fine_tune_source_pretrained_node")
        + pipelines["baselines"].only_nodes("train_sasrec_node", "fit_new_items_node")
        + evaluation.create_pipeline(tuple(BY_NAME[m] for m in data_efficiency.MODELS))
    )  # fmt: skip
