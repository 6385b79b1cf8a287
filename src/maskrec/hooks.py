"""Project hooks: what must hold before any node runs.

Kedro validates each `params:<group>` against its pydantic type on its own; constraints
between groups (a fine-tuning setting that depends on the architecture, a device that must
exist, a split strategy that needs a file) and the choice of runner are checked here, so a
bad combination fails in seconds, not after pretraining.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from kedro.framework.hooks import hook_impl

from maskrec.datasets.movielens import NO_SOURCE
from maskrec.devices import resolve_device
from maskrec.models.baselines import dense_skip_reason
from maskrec.models.rating_baselines import check_settings
from maskrec.params import (
    GROUPS,
    RATING_TUNED,
    TRANSFER_TUNED,
    TUNED_STAGES,
    check_stages,
    first_points,
    setting_at,
    shadowed_overrides,
)
from maskrec.training import distributed
from maskrec.training.loop import serve_training_jobs

logger = logging.getLogger(__name__)
REFUSED_RUNNERS = ("ParallelRunner", "ThreadRunner")
SOURCE_RAW = "pretraining_source.movielens_raw"
TRANSFER_RUNS = {
    "transfer",
    "data_efficiency",
    "transfer_tuning",
}  # the registered runs with a source


def check_runner(runner: str) -> None:
    """Only runners that execute one node at a time: each training or scoring node already
    uses every core (torch threads) or the GPU."""
    refused = next((name for name in REFUSED_RUNNERS if name in runner), None)
    if refused:
        raise ValueError(
            f"--runner {refused} is not supported: maskrec's training and scoring nodes "
            "already use every CPU core (or the GPU), so running nodes side by side only "
            "oversubscribes them (pretraining epochs ran 50-100x slower under "
            "ParallelRunner), and trained models are handed between nodes in memory. Run "
            "with the default SequentialRunner (leave out --runner)."
        )


def check_pretraining_source(
    reads_source: bool, source_given: bool, pipelines: list[str] | None
) -> None:
    """The transfer run needs a source; no other run reads one."""
    if reads_source and not source_given:
        raise ValueError(
            "this run pretrains on another release: add --params "
            "pretraining_source=<release (e.g. ml-1m), folder or 'sample'>"
        )
    if source_given and not TRANSFER_RUNS & set(pipelines or ["__default__"]):
        raise ValueError(
            "pretraining_source is read only by the transfer run: "
            "kedro run --pipelines transfer --params pretraining_source=... "
            "(or --pipelines data_efficiency, or transfer_tuning)"
        )


def check_tuned_models(models: list[str], node_names: set[str]) -> None:
    """The transfer run's models are tuned by the run that reads the source, and that run
    tunes at least one of them."""
    if not any(name.startswith("tune_") for name in node_names):
        return
    transfer = [m for m in models if m in TRANSFER_TUNED]
    if any(f"tune_{m}_node" not in node_names for m in transfer):
        raise ValueError(
            f"tuning.models names the transfer run's models {transfer}: they train on a "
            "source release, tuned by kedro run --pipelines transfer_tuning --params "
            "pretraining_source=..."
        )
    if not transfer and any(f"tune_{m}_node" in node_names for m in TRANSFER_TUNED):
        raise ValueError(
            "transfer_tuning tunes the transfer run's models, but tuning.models names "
            f"none of them: add {', '.join(TRANSFER_TUNED)}, one a run with --params "
            "tuning.models=[transfer] (Kedro's --params takes no comma inside a list), "
            "or all in an environment's parameters.yml"
        )


def check_parameters(params: dict[str, Any], split_targets_given: bool = False) -> None:
    """Raise ValueError naming the parameters when groups disagree. `params` holds the
    validated groups the run uses, by name; absent groups are not checked. (Within a
    group, and within each resolved training stage, pydantic has checked already.)"""
    training, split = params.get("training"), params.get("data_split")
    if training is not None:
        try:
            resolve_device(training.device)
        except ValueError as exc:
            raise ValueError(f"training.device: {exc}") from exc
    if split is not None and (split.strategy == "given") != split_targets_given:
        raise ValueError(
            "data_split.strategy=given needs --params split_targets=<csv with user_id, "
            "valid_item, test_item>"
            if split.strategy == "given"
            else f"split_targets is only read with data_split.strategy=given (it is "
            f"{split.strategy!r})"
        )
    check_stages(params)
    tuning = params.get("tuning")
    for model in tuning.models if tuning is not None else []:
        if all(stage.split(".")[0] in params for stage in TUNED_STAGES[model]):
            # a point skipped for a configured value outside the space: the study says so
            first_points(tuning, model, functools.partial(setting_at, params))
    ratings = params.get("ratings")
    if ratings is not None:  # Surprise's arguments, before anything is fitted
        for kind in ("svd", "svdpp", "knn_baseline"):
            check_settings(kind, getattr(ratings, kind), f"ratings.{kind}")


def check_ratings(source: str, has_ratings: bool, params: dict[str, Any], predicts_ratings: bool) -> None:  # fmt: skip
    """A source without ratings (implicit feedback: a click or purchase log) runs every
    pipeline that does not need them; what does is refused here, naming why, before
    anything is read."""
    if has_ratings:
        return
    needs = []
    processing, tuning = params.get("data_processing"), params.get("tuning")
    if processing is not None and processing.positive_threshold is not None:
        needs.append(f"data_processing.positive_threshold={processing.positive_threshold} keeps ratings above a threshold (set it to null)")  # fmt: skip
    if predicts_ratings:
        needs.append("the rating_prediction pipeline predicts ratings")
    if tuning is not None and set(tuning.models) & set(RATING_TUNED):
        needs.append(f"tuning.models names rating studies {sorted(set(tuning.models) & set(RATING_TUNED))} (leave them out)")  # fmt: skip
    if needs:
        raise ValueError(
            f"source={source!r} has no ratings (implicit feedback; a log names its rating "
            "column with --params columns.rating=...), but " + "; ".join(needs)
        )


def announce_skipped_baselines(raw: Any, params: Any) -> str | None:
    """Say at run start, from the raw catalogue's size, that EASE will be skipped (the
    baselines node decides again on the cleaned catalogue, which can only be smaller)."""
    size = raw.catalogue_size() if hasattr(raw, "catalogue_size") else None
    reason = (
        dense_skip_reason(size, params.max_dense_items) if size is not None else None
    )
    if reason:
        logger.warning("EASE will be skipped in this run: %s", reason)
    return reason


class ParameterChecks:
    def __init__(self) -> None:
        self.config_loader: Any = None

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        self.config_loader = context.config_loader

    # First (after DistributedTraining): a bad run stops before any plugin acts on it,
    # e.g. before kedro-mlflow opens a run that nothing would then close.
    @hook_impl(tryfirst=True)
    def before_pipeline_run(
        self, run_params: dict, pipeline: Any, catalog: Any
    ) -> None:
        used = {name for name in pipeline.inputs() if name.startswith("params:")}
        runtime = run_params.get("runtime_params") or {}
        if runtime and hasattr(self.config_loader, "merged_parameters"):
            # a `--params` key some stage of this run overrides with its own setting
            groups = {name.removeprefix("params:").split(".")[0] for name in used}
            for message in shadowed_overrides(self.config_loader.merged_parameters(), runtime, groups):  # fmt: skip
                logger.warning(message)
        check_runner(str(run_params.get("runner", "")))
        params = {}
        for group, kind in GROUPS.items():
            if f"params:{group}" in used:
                value = catalog.load(f"params:{group}")
                params[group] = value if isinstance(value, kind) else kind(**value)
        targets = catalog.get("given_split_targets") if "given_split_targets" in catalog else None  # fmt: skip
        check_parameters(params, bool(getattr(targets, "given", False)))
        raw = catalog.get("movielens_raw") if "movielens_raw" in catalog else None
        if raw is not None and "movielens_raw" in pipeline.inputs() and hasattr(raw, "has_ratings"):  # fmt: skip
            predicts = any(n.func.__module__.endswith("rating_prediction.nodes") for n in pipeline.nodes)  # fmt: skip
            check_ratings(raw.source, raw.has_ratings(), params, predicts)
        if "baselines" in params and any(n.name == "fit_ease_node" for n in pipeline.nodes):  # fmt: skip
            announce_skipped_baselines(
                catalog.get("movielens_raw"), params["baselines"]
            )
        source = catalog.get(SOURCE_RAW) if SOURCE_RAW in catalog else None
        check_pretraining_source(
            SOURCE_RAW in pipeline.inputs(),
            getattr(source, "source", NO_SOURCE) != NO_SOURCE,
            run_params.get("pipeline_names"),
        )
        if "tuning" in params:
            check_tuned_models(params["tuning"].models, {n.name for n in pipeline.nodes})  # fmt: skip


class DistributedTraining:
    """Under torchrun, Kedro runs the pipeline once, on rank 0 (`training/distributed.py`).

    Every process joins the process group before any node runs. Rank 0 goes on with the
    run; every other rank trains along in each `fit` rank 0 starts and, when rank 0's run
    ends (or fails), leaves without having run a node, read the catalog or written a file.
    Without torchrun (one process) nothing changes.
    """

    @hook_impl(
        tryfirst=True
    )  # before ParameterChecks: a worker checks nothing, reads nothing
    def before_pipeline_run(
        self, run_params: dict, pipeline: Any, catalog: Any
    ) -> None:
        group = distributed.join_from_environment()
        if group is None or group.rank == 0:
            return
        distributed.quiet_worker()
        jobs = serve_training_jobs()
        distributed.leave()
        logger.warning("process %d: trained in %d fit call(s); rank 0's run has ended", group.rank, jobs)  # fmt: skip
        raise SystemExit(0)  # the pipeline is rank 0's: this process runs no node

    @hook_impl
    def after_pipeline_run(self) -> None:
        distributed.stop_workers()

    @hook_impl
    def on_pipeline_error(self) -> None:
        distributed.stop_workers()
