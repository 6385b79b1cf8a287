"""Project settings (Kedro defaults apart from the hooks below)."""

from maskrec.hooks import ParameterChecks

# Checks across parameter groups, run before any node.
HOOKS = (ParameterChecks(),)

CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
}
