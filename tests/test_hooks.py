from __future__ import annotations

import pytest
import torch

from maskrec.hooks import check_parameters
from maskrec.params import (
    DistillationParams,
    FineTuningParams,
    ModelParams,
    PretrainingParams,
)


def test_freeze_layers_beyond_the_model_is_rejected():
    with pytest.raises(
        ValueError,
        match=r"fine_tuning.freeze_layers \(3\) exceeds model.num_layers \(2\)",
    ):
        check_parameters(
            ModelParams(), PretrainingParams(), FineTuningParams(freeze_layers=3)
        )


def test_teacher_width_must_suit_the_heads():
    params = FineTuningParams(
        objective="next_item",
        distillation=DistillationParams(weight=0.5, teacher_hidden_size=30),
    )
    with pytest.raises(ValueError, match="teacher_hidden_size"):
        check_parameters(ModelParams(num_heads=4, hidden_size=64), None, params)


@pytest.mark.skipif(
    torch.cuda.is_available(), reason="checks the message for a missing GPU"
)
def test_unavailable_device_is_named():
    with pytest.raises(ValueError, match=r"pretraining.device: device='cuda'"):
        check_parameters(None, PretrainingParams(device="cuda"), None)


def test_consistent_parameters_pass():
    check_parameters(
        ModelParams(), PretrainingParams(), FineTuningParams(freeze_layers=2)
    )
