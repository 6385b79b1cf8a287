"""The committed configuration: every environment loads, and every group validates."""

from __future__ import annotations

import pytest

from maskrec.params import GROUPS, load_parameters
from tests.conftest import PROJECT_ROOT

CONF = PROJECT_ROOT / "conf"


@pytest.mark.parametrize("env", ["local", "ml100k"])
def test_every_environment_sets_every_group(env):
    assert set(load_parameters(CONF, env)) == set(GROUPS)


def test_ml100k_overrides_single_keys_and_keeps_the_rest_of_base():
    base, ml100k = load_parameters(CONF, "local"), load_parameters(CONF, "ml100k")
    assert ml100k["model"].max_len == 200 and base["model"].max_len != 200
    # soft merge: keys the environment does not name still come from base
    assert ml100k["model"].hidden_size == base["model"].hidden_size
    assert ml100k["fine_tuning"].batch_size == base["fine_tuning"].batch_size
    assert ml100k["baselines"] == base["baselines"]


def test_runtime_params_override_like_kedro_run_params():
    seeded = load_parameters(CONF, "local", {"training": {"seed": 7}})
    assert seeded["training"].seed == 7
    assert (
        seeded["training"].device == load_parameters(CONF, "local")["training"].device
    )


def test_a_missing_key_is_an_error_not_a_silent_default(tmp_path):
    import shutil

    shutil.copytree(CONF, tmp_path / "conf")
    path = tmp_path / "conf" / "base" / "parameters_pretraining.yml"
    path.write_text(path.read_text().replace("  patience: 8", ""))
    with pytest.raises(ValueError, match="patience"):
        load_parameters(tmp_path / "conf", "local")


def test_distillation_with_a_memory_bounded_loss_is_refused():
    """Distillation reads the student's full logits; a chunked or sampled softmax never
    builds them, so the combination is an error at run start, naming both parameters."""
    overrides = {"fine_tuning": {"objective": "next_item", "loss": "chunked", "distillation": {"weight": 0.5}}}  # fmt: skip
    with pytest.raises(ValueError, match=r"distillation.weight > 0 needs fine_tuning.loss: full"):  # fmt: skip
        load_parameters(CONF, "local", overrides)
    overrides["fine_tuning"]["loss"] = "full"
    assert load_parameters(CONF, "local", overrides)["fine_tuning"].loss == "full"
