"""Project settings (Kedro defaults apart from the hooks below)."""

import os

from maskrec import config
from maskrec.hooks import DistributedTraining, ParameterChecks
from maskrec.tracking import RunTracking

# Checks across parameter groups, run before any node; under torchrun, the pipeline runs on
# rank 0 and the other processes only train (training/distributed.py); what a run
# produces goes to the MLflow run kedro-mlflow opens (tracking.py).
HOOKS = (ParameterChecks(), DistributedTraining(), RunTracking())

# A torchrun worker (rank > 0) runs no node: it records no MLflow run, writes no kedro-viz
# statistics and sends no telemetry (plugins by distribution name, as Kedro reads them).
WORKER_DISABLED_PLUGINS = (
    "kedro_mlflow",
    "kedro-mlflow",
    "kedro-viz",
    "kedro-telemetry",
)
IS_WORKER = int(os.environ.get("RANK", "0")) > 0
DISABLE_HOOKS_FOR_PLUGINS = WORKER_DISABLED_PLUGINS if IS_WORKER else ()

# Kedro's OmegaConfigLoader, with each training stage resolved into its complete spec
# (params.resolve) once the environments and --params are merged (config.py).
CONFIG_LOADER_CLASS = config.ProjectConfigLoader
CONFIG_LOADER_ARGS = config.CONFIG_LOADER_ARGS
