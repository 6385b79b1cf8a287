"""The committed configuration: base and the ml100k environment load and validate."""

from __future__ import annotations

from pathlib import Path

import pytest
from kedro.config import OmegaConfigLoader

from maskrec import settings
from maskrec.params import FineTuningParams, ModelParams, PretrainingParams

CONF = Path(__file__).resolve().parents[1] / "conf"


def parameters(env: str) -> dict:
    """Parameters as `kedro run --env <env>` sees them (base, then the environment)."""
    return OmegaConfigLoader(str(CONF), env=env, **settings.CONFIG_LOADER_ARGS)[
        "parameters"
    ]


@pytest.mark.parametrize("env", ["local", "ml100k"])
def test_every_environment_validates(env):
    params = parameters(env)
    ModelParams(**params["model"])
    PretrainingParams(**params["pretraining"])
    FineTuningParams(**params["fine_tuning"])


def test_ml100k_overrides_single_keys_and_keeps_the_rest_of_base():
    base, ml100k = parameters("local"), parameters("ml100k")
    assert ml100k["model"]["max_len"] == 200 and base["model"]["max_len"] != 200
    # soft merge: keys the environment does not name still come from base
    assert ml100k["model"]["hidden_size"] == base["model"]["hidden_size"]
    assert ml100k["fine_tuning"]["batch_size"] == base["fine_tuning"]["batch_size"]
    assert ml100k["baselines"] == base["baselines"]
