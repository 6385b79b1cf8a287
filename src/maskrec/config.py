"""How the project reads its configuration, shared by `settings.py` (Kedro's runs) and
`params.load_parameters` (benchmarks, tests, notebooks), so both read conf/ alike."""

CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # An environment (conf/ml100k) overrides single keys of a parameter group instead of
    # replacing the whole group.
    "merge_strategy": {"parameters": "soft"},
}
