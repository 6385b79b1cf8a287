"""How the project reads its configuration: Kedro's `OmegaConfigLoader`, with each
training stage resolved into its complete spec (`params.resolve`) after Kedro has merged
base, the run's environment and `--params`. `settings.py` gives it to every Kedro
session; `load_parameters` reads the parameters the same way for benchmarks, tests and
notebooks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kedro.config import OmegaConfigLoader

from maskrec.params import GROUPS, check_stages, resolve

CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # An environment (conf/ml100k) overrides single keys of a parameter group instead of
    # replacing the whole group.
    "merge_strategy": {"parameters": "soft"},
}


class ProjectConfigLoader(OmegaConfigLoader):
    """`OmegaConfigLoader` whose parameters come with every training stage complete:
    `params:pretraining` is the shared `model`, `schedule`, `loss` and `regularizers`
    blocks with what `pretraining` states over them (`params.STAGES`)."""

    def __getitem__(self, key: str) -> Any:
        value = super().__getitem__(key)
        return resolve(value) if key == "parameters" else value

    def merged_parameters(self) -> dict[str, Any]:
        """The parameters as Kedro merged base, the environment and `--params`, before
        the stages are resolved: what says which group set a stage's value."""
        return super().__getitem__("parameters")


def load_parameters(
    conf_source: str | Path,
    env: str | None = None,
    runtime_params: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Every parameter group as `kedro run --env <env> --params ...` sees it, resolved and
    validated into its `params.GROUPS` type."""
    loader = ProjectConfigLoader(
        str(conf_source),
        env=env,
        runtime_params=runtime_params or {},
        **CONFIG_LOADER_ARGS,
    )
    raw = loader["parameters"]
    groups = {}
    for group, kind in GROUPS.items():
        if group in raw:
            try:
                groups[group] = kind(**raw[group])
            except (
                ValueError
            ) as exc:  # pydantic's, which names the keys inside the group
                raise ValueError(f"{group}: {exc}") from exc
    check_stages(groups)
    return groups
