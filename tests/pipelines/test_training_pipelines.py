"""The training pipelines (pretraining, fine_tuning, baselines) on an in-memory catalog,
each from its inputs alone (tests/helpers.py trains them once for the session)."""

from __future__ import annotations

import pytest
import torch

from maskrec.models.baselines import Baseline
from maskrec.models.sequence import SequenceRecModel
from maskrec.pipelines import pretraining
from maskrec.registry import models
from tests.helpers import quick, run_pipeline, training_inputs


def test_pretraining_pipeline_runs_and_records_its_epochs(caplog):
    out = run_pipeline(pretraining.create_pipeline(), training_inputs(), caplog)
    assert isinstance(out["pretrained_model"], SequenceRecModel)
    assert not out["pretrained_model"].config.causal
    assert out["pretrained_history"]["epoch"].tolist() == [1]


@pytest.mark.parametrize("loss", ["chunked", "sampled"])
def test_pretraining_trains_with_the_memory_bounded_losses(loss):
    """`pretraining.loss.softmax` reaches the training step: the chunked loss records the
    same training loss as the full one; the sampled one (20 logQ-corrected negatives, an
    estimate of the partition function) a different, finite one."""
    inputs = training_inputs()
    full = run_pipeline(pretraining.create_pipeline(), inputs)["pretrained_history"]
    group = quick("pretraining", loss={"softmax": loss, "negatives": 20})
    other = run_pipeline(pretraining.create_pipeline(), {**inputs, "params:pretraining": group})["pretrained_history"]  # fmt: skip
    if loss == "chunked":
        assert other["train_loss"].iloc[0] == pytest.approx(full["train_loss"].iloc[0], rel=1e-4)  # fmt: skip
    else:
        sampled, exact = other["train_loss"].iloc[0], full["train_loss"].iloc[0]
        assert 0 < sampled < 2 * exact and sampled != pytest.approx(exact, rel=1e-3)


def test_every_registered_model_is_trained_by_a_pipeline(trained):
    for model in models():
        kind = SequenceRecModel if model.family == "sequence" else Baseline
        assert isinstance(trained[model.dataset], kind), model.name
        if model.history:
            assert len(trained[model.history]) >= 1
    assert trained["fine_tuned_history"]["epoch"].tolist() == [
        0,
        1,
    ]  # starts from the pretrained model
    assert {s["model"] for s in trained["baseline_selection"]} == {
        "item_knn",
        "ease",
        "mf_als",
    }


def test_scratch_starts_where_pretraining_started(trained):
    """Same seeded initial weights in both branches: the ablation differs only in pretraining."""
    inputs = training_inputs()
    a = run_pipeline(pretraining.create_pipeline().only_nodes("init_pretraining_model_node"), inputs)  # fmt: skip
    from maskrec.pipelines import fine_tuning

    b = run_pipeline(
        fine_tuning.create_pipeline().only_nodes("init_scratch_model_node"), inputs
    )
    for name, tensor in a["pretrained_initial_model"].state_dict().items():
        assert torch.equal(tensor, b["scratch_initial_model"].state_dict()[name]), name


def test_scratch_trains_with_its_own_stage(trained):
    """A tuned environment's `scratch` winner is what the fine_tuning pipeline trains the
    scratch control with; the pretrained model keeps `fine_tuning`'s settings."""
    from maskrec.pipelines import fine_tuning

    inputs = training_inputs() | {"params:scratch": quick("scratch", schedule={"epochs": 2, "patience": 2})}  # fmt: skip
    outputs = run_pipeline(
        fine_tuning.create_pipeline().only_nodes("init_scratch_model_node", "train_teacher_node", "fine_tune_scratch_node"),
        inputs,
    )  # fmt: skip
    assert outputs["scratch_history"]["epoch"].max() == 2
    assert trained["scratch_history"]["epoch"].max() == inputs["params:fine_tuning"].schedule.epochs == 1  # fmt: skip
