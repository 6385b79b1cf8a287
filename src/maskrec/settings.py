"""Project settings (Kedro defaults apart from the hooks below)."""

import os
import warnings

from maskrec import config
from maskrec.hooks import DistributedTraining, ParameterChecks
from maskrec.tracking import RunTracking

# Warnings the libraries underneath raise on every run and no user of this project can act
# on (OmegaConf's deprecation of the resolver API Kedro and kedro-mlflow call; MLflow's
# advice on type hints, given when kedro-mlflow's pipeline model and MLflow's own types are
# defined); any other warning still shows (tests/test_run.py runs `kedro` and looks). The
# `kedro` command imports kedro-mlflow's commands before it reads this file, so there
# MLflow's advice on kedro-mlflow's model still shows once; in a session opened from Python
# or Jupyter it does not.
THIRD_PARTY_NOISE = (
    r"register_new_resolver\(\) is deprecated",
    r".*Add type hints to the `predict` method",
    r".*Any type hint is inferred as AnyType",
)
for message in THIRD_PARTY_NOISE:
    warnings.filterwarnings("ignore", message=message, category=UserWarning)

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
