"""Project settings (Kedro defaults apart from the hooks below)."""

from maskrec.hooks import DistributedTraining, ParameterChecks

# Checks across parameter groups, run before any node; under torchrun, the pipeline runs on
# rank 0 and the other processes only train (training/distributed.py).
HOOKS = (ParameterChecks(), DistributedTraining())

CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # An environment (conf/ml100k) overrides single keys of a parameter group instead of
    # replacing the whole group.
    "merge_strategy": {"parameters": "soft"},
}
