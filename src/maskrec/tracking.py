"""Every `kedro run` remembered: MLflow through kedro-mlflow, plus what a recommender run
produces.

kedro-mlflow (installed with the project; its hooks register themselves) opens one MLflow
run per `kedro run` in the store `conf/base/mlflow.yml` names (the SQLite file mlflow.db
in the project, artifacts in mlartifacts/; `mlflow ui --backend-store-uri
sqlite:///mlflow.db` shows them), tags it with the Kedro command and logs each parameter
group a node reads as one parameter. `RunTracking` adds, while that run is open:

- every parameter group the run uses, flattened (`training.device`,
  `fine_tuning.distillation.weight`), so two runs compare key by key;
- tags: the data source, the Kedro environment, the git commit and whether the working
  tree had uncommitted changes;
- as each dataset is saved: each model's per-epoch curves (`<model>_history`: loss and
  validation metrics by epoch), the test metrics with their 95% intervals per model and
  user group and the paired tests (`evaluation_metrics`), validation NDCG@10
  (`model_stats`), RMSE and MAE of the rating models (`rating_metrics`), the plotly
  figures, the data-quality report and the summary;
- at the end, the folder of every model the run trained, as artifacts, and, where the
  run evaluated models, the one inference would choose as an MLflow model (a pyfunc with
  a signature: `maskrec.datasets.mlflow_model`), registered under
  `inference.register_as` when that names one.

MLflow metric names allow no '@': `ndcg@10` is logged as `ndcg_at_10`. A failure to log
is a warning, never the end of the run it records.
"""

from __future__ import annotations

import json
import logging
import math
import re
import subprocess
import time
from pathlib import Path
from typing import Any

from kedro.framework.hooks import hook_impl

from maskrec.registry import BY_NAME, MODELS, chosen

logger = logging.getLogger(__name__)
_NOT_IN_NAMES = re.compile(r"[^A-Za-z0-9_\-. :/]")
# (the rating pipeline's model and curves, one history table for all its stages and folds)
MODEL_DATASETS = {model.dataset: model.name for model in MODELS} | {
    "rating_model": "rating"
}
HISTORY_DATASETS = {model.history: model.name for model in MODELS if model.history} | {
    "rating_history": "rating"
}
TRIALS_PREFIX = "tuning_trials_"  # a study's trials table (the tuning pipeline)
DOCUMENTS = {"tuning_summary", "data_quality_report", "summary_markdown", "summary_table", "baseline_selection",
             "item_alignment_report", "data_efficiency"}  # fmt: skip


def metric_key(*parts: str) -> str:
    """An MLflow metric name: parts joined by '/', '@' and '<=' spelled out, any other
    character MLflow refuses as '_'."""
    text = "/".join(parts).replace("@", "_at_").replace("<=", "_le_")
    return _NOT_IN_NAMES.sub("_", text)


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested parameter groups (dicts or pydantic models) as {"a.b.c": value}."""
    if hasattr(value, "model_dump"):
        value = value.model_dump()
    if not isinstance(value, dict):
        return {prefix: value}
    flat = {}
    for key, item in value.items():
        flat.update(flatten(item, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def history_metrics(history: Any) -> list[tuple[str, float, int]]:
    """(key, value, epoch) for every epoch of a training history table."""
    if "model" in history and history["model"].nunique() > 1:  # several stages' curves
        return [row for _, one in history.groupby("model", sort=False) for row in history_metrics(one)]  # fmt: skip
    rows = []
    name = str(history["model"].iloc[0]) if "model" in history and len(history) else "model"  # fmt: skip
    for column in (
        "train_loss",
        "ndcg@10",
        "hr@10",
        "mrr@10",
        "rmse",
        "mae",
        "seconds",
    ):
        if column not in history:
            continue
        key = metric_key(name, column if column in ("train_loss", "seconds") else f"valid_{column}")  # fmt: skip
        for epoch, value in zip(history["epoch"], history[column], strict=True):
            if not math.isnan(value):  # epoch 0 has no training loss
                rows.append((key, float(value), int(epoch)))
    return rows


def evaluation_metrics(metrics: dict) -> dict[str, float]:
    """Test metrics (mean, and the interval where one was computed) per model and user
    group, and each paired test's difference and adjusted p-value."""
    flat = {}
    for model, entry in metrics.get("models", {}).items():
        for group in ("all", "warm", "cold", "cold_items"):
            for metric, values in (entry.get(group) or {}).items():
                if not isinstance(values, dict) or metric == "among_untrained":
                    continue
                for stat, value in values.items():
                    suffix = "" if stat == "mean" else f"_{stat}"
                    if isinstance(value, (int, float)):
                        flat[metric_key("test", model, group, metric + suffix)] = float(
                            value
                        )
        among = (entry.get("cold_items") or {}).get("among_untrained")
        if among and among["users"]:  # targets without training interactions
            for metric in ("hr@10", "ndcg@10"):
                flat[metric_key("test", model, "new_items", metric)] = float(among["catalogue"][metric]["mean"])  # fmt: skip
                flat[metric_key("test", model, "new_items", metric + "_among_new")] = float(among[metric]["mean"])  # fmt: skip
        if entry.get("untrained_in_top10"):
            flat[metric_key("test", model, "new_items_per_top10")] = float(entry["untrained_in_top10"]["trained_targets"])  # fmt: skip
    for test in metrics.get("paired_tests", []):
        if test.get("users"):
            key = metric_key("paired", f"{test['model']}_vs_{test['competitor']}", test["group"])  # fmt: skip
            flat[f"{key}/mean_difference"] = float(test["mean_difference"])
            flat[f"{key}/p_adjusted"] = float(test["p_adjusted"])
    return flat


def rating_metrics(metrics: dict) -> dict[str, float]:
    """RMSE and MAE (with intervals) per rating protocol and model, on all users."""
    flat = {}
    for protocol, models in metrics.get("protocols", {}).items():
        for model, groups in models.items():
            for metric in ("rmse", "mae"):
                for stat, value in groups["all"][metric].items():
                    suffix = "" if stat == "mean" else f"_{stat}"
                    flat[metric_key("rating", protocol, model, metric + suffix)] = (
                        float(value)
                    )
    return flat


def git_state(folder: Path) -> dict[str, str]:
    """The commit of the project's code, and whether it had uncommitted changes."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=folder, capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return {}
    return {"git_commit": commit, "git_dirty": str(bool(dirty)).lower()}


class RunTracking:
    """A project hook: logs what a maskrec run produces into the MLflow run kedro-mlflow
    opened (a no-op when there is none: kedro-mlflow absent, or tracking disabled)."""

    def __init__(self) -> None:
        self.catalog: Any = None
        self.saved_models: list[str] = []
        self.model_stats: dict | None = None
        self.outer_run: str | None = (
            None  # a run opened before the session (an orchestrator's)
        )
        self.run_id: str | None = None

    @hook_impl(tryfirst=True)  # before kedro-mlflow reads mlflow.yml
    def after_context_created(self, context: Any) -> None:
        """A relative SQLite store in mlflow.yml (`sqlite:///mlflow.db`) is made to mean
        the project's file, whatever the current directory: kedro-mlflow resolves relative
        folders against the project, but would leave this to the current directory."""
        loader = context.config_loader
        loader.config_patterns.setdefault(
            "mlflow", ["mlflow*", "mlflow*/**", "**/mlflow*"]
        )
        try:
            config = loader["mlflow"]
        except Exception:  # noqa: BLE001 (no mlflow.yml: kedro-mlflow's defaults apply)
            return
        server = config.get("server") or {}
        uri = server.get("mlflow_tracking_uri") or ""
        if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
            path = Path(context.project_path) / uri.removeprefix("sqlite:///")
            config["server"] = {**server, "mlflow_tracking_uri": f"sqlite:///{path}"}
            loader["mlflow"] = config

    @hook_impl
    def after_catalog_created(self) -> None:
        """Before kedro-mlflow opens the run: note a run someone opened before the session,
        which is theirs to close."""
        active = self._active()
        self.outer_run = None
        if active:
            import mlflow

            self.outer_run = mlflow.active_run().info.run_id

    @staticmethod
    def _active() -> bool:
        try:
            import mlflow
        except ImportError:
            return False
        return mlflow.active_run() is not None

    @hook_impl(trylast=True)  # after kedro-mlflow opened the run
    def before_pipeline_run(
        self, run_params: dict, pipeline: Any, catalog: Any
    ) -> None:
        self.catalog, self.saved_models, self.run_id = catalog, [], None
        self.model_stats = None
        if not self._active():
            return
        import mlflow

        self.run_id = mlflow.active_run().info.run_id

        params = {}
        for name in sorted(n for n in pipeline.inputs() if n.startswith("params:")):
            params.update(flatten(catalog.load(name), name.removeprefix("params:")))
        runtime = run_params.get("runtime_params") or {}
        tags = {"source": str(runtime.get("source", "sample")), "kedro_env": str(run_params.get("env") or "local"),
                **git_state(Path(run_params.get("project_path") or "."))}  # fmt: skip
        if runtime.get("pretraining_source"):
            tags["pretraining_source"] = str(runtime["pretraining_source"])
        mlflow.log_params({k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in params.items()})  # fmt: skip
        mlflow.set_tags(tags)

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, data: Any) -> None:
        if not self._active():
            return
        try:
            self._log_dataset(dataset_name, data)
        except Exception as error:  # noqa: BLE001 (tracking never ends the run it records)
            logger.warning("MLflow: could not log %s: %s", dataset_name, error)

    def _log_dataset(self, dataset_name: str, data: Any) -> None:
        import mlflow
        from mlflow.entities import Metric

        prefix, _, name = dataset_name.rpartition(
            "."
        )  # namespaced (users_10pct.x) or not
        run = mlflow.active_run().info.run_id
        now = int(time.time() * 1000)
        if name in HISTORY_DATASETS:
            rows = history_metrics(data)
            metrics = [Metric(f"{prefix}/{k}" if prefix else k, v, now, step) for k, v, step in rows]  # fmt: skip
            mlflow.tracking.MlflowClient().log_batch(run, metrics=metrics)
        elif name == "evaluation_metrics" and not prefix:
            mlflow.log_metrics(evaluation_metrics(data))
        elif name == "rating_metrics":
            mlflow.log_metrics(rating_metrics(data))
        elif name == "model_stats" and not prefix:
            self.model_stats = data
            mlflow.log_metrics({metric_key("valid", m, "ndcg@10"): float(s["valid_ndcg@10"])
                                for m, s in data.items() if "valid_ndcg@10" in s})  # fmt: skip
        elif name.endswith("_plot"):
            mlflow.log_figure(data, f"figures/{dataset_name}.html")
        elif name in DOCUMENTS:
            if isinstance(data, str):
                mlflow.log_text(data, f"reports/{dataset_name}.md")
            else:
                mlflow.log_dict(data, f"reports/{dataset_name}.json")
        elif name.startswith(TRIALS_PREFIX):
            log_trials(data)
        elif name in MODEL_DATASETS:
            self.saved_models.append(dataset_name)

    @hook_impl(tryfirst=True)  # before kedro-mlflow closes the run
    def after_pipeline_run(self) -> None:
        if not self._active() or self.catalog is None:
            return
        import mlflow

        for dataset_name in self.saved_models:
            folder = getattr(self.catalog.get(dataset_name), "path", None)
            if folder is not None and Path(folder).is_dir():
                mlflow.log_artifacts(str(folder), f"models/{dataset_name}")
        if self.model_stats is not None:
            try:
                self._log_chosen_model()
            except Exception as error:  # noqa: BLE001 (tracking never ends the run it records)
                logger.warning("MLflow: could not log the chosen model: %s", error)
        # kedro-mlflow reopens its run before every node; since MLflow 3.x each reopening
        # stacks the run once more, and its single end_run would leave the run active for
        # the next session in this process (which would then log into it). Close it here.
        while (run := mlflow.active_run()) and run.info.run_id == self.run_id != self.outer_run:  # fmt: skip
            mlflow.end_run()

    def _log_chosen_model(self) -> None:
        """The model inference would use, as an MLflow model (`models:/...` or
        `runs:/<id>/model` serves it), registered if `inference.register_as` says so."""
        from maskrec.datasets.mlflow_model import log_model

        params = self.catalog.load("params:inference")
        params = params if isinstance(params, dict) else params.model_dump()
        name = chosen(self.model_stats, params.get("model", "best"))
        folder = Path(self.catalog.get(BY_NAME[name].dataset).path)
        # a sequence model carries the run's new-film mixture (maskrec serve --new-films)
        mixture = self.catalog.get("new_films_model") if "temperature" in self.model_stats.get(name, {}) else None  # fmt: skip
        mixture_folder = getattr(mixture, "path", None) if mixture is not None and mixture.exists() else None  # fmt: skip
        info = log_model(folder, name, params.get("register_as"), mixture_folder, float(self.model_stats[name].get("temperature", 1.0)))  # fmt: skip
        logger.info("MLflow: logged %s as %s%s", name, info.model_uri, f", registered as {params['register_as']}" if params.get("register_as") else "")  # fmt: skip


def log_trials(trials: Any) -> None:
    """Each tuning trial as a child run of the open run: its point as parameters,
    its best validation NDCG@10 (a rating model's: RMSE), epochs, seconds and the last
    epoch and value the pruner saw as metrics, its state as a tag."""
    import mlflow
    import pandas as pd

    for row in trials.to_dict("records"):
        name = f"{row['model']} trial {row['trial']}"
        with mlflow.start_run(run_name=name, nested=True):
            mlflow.log_params({k.removeprefix("param."): v for k, v in row.items()
                               if k.startswith("param.") and not pd.isna(v)})  # fmt: skip
            mlflow.log_metrics({metric_key(k): float(v) for k, v in row.items()
                                if k in ("valid_ndcg@10", "valid_rmse", "epochs", "seconds", "last_epoch", "last_value") and not pd.isna(v)})  # fmt: skip
            mlflow.set_tags(
                {"tuning.model": row["model"], "tuning.state": row["state"]}
            )
