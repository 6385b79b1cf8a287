"""Project settings (Kedro defaults apart from the hooks below)."""

from maskrec.hooks import ParameterChecks

# Checks across parameter groups, run before any node.
HOOKS = (ParameterChecks(),)

CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # An environment (conf/ml100k) overrides single keys of a parameter group instead of
    # replacing the whole group.
    "merge_strategy": {"parameters": "soft"},
}
