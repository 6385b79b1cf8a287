"""Fine-tuning regularizers, each checked for the effect it promises, on a small sample."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from maskrec.params import DistillationParams, FineTuningParams, ModelParams
from maskrec.pipelines.fine_tuning.nodes import (
    Teacher,
    fine_tune_pretrained,
    train_teacher,
)
from maskrec.pipelines.pretraining.nodes import init_model
from tests.helpers import small_split

QUICK = {"epochs": 2, "device": "cpu", "checkpoint_dir": None, "batch_size": 64}


@pytest.fixture(scope="module")
def data():
    return small_split()


def _model(data, **overrides):
    return init_model(
        data["item_features"],
        ModelParams(max_len=20, hidden_size=32, intermediate_size=64, **overrides),
    )


def test_frozen_layers_do_not_move(data):
    model = _model(data)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    tuned, _ = fine_tune_pretrained(
        model,
        Teacher(),
        data["train"],
        data["valid"],
        FineTuningParams(freeze_layers=1, **QUICK),
    )
    after = tuned.state_dict()
    assert torch.equal(
        before["bert.embeddings.word_embeddings.weight"],
        after["bert.embeddings.word_embeddings.weight"],
    )
    assert torch.equal(
        before["bert.encoder.layer.0.attention.self.query.weight"],
        after["bert.encoder.layer.0.attention.self.query.weight"],
    )
    assert not torch.equal(
        before["bert.encoder.layer.1.attention.self.query.weight"],
        after["bert.encoder.layer.1.attention.self.query.weight"],
    )
    assert all(
        p.requires_grad for p in tuned.parameters()
    )  # unfrozen again for later use


def test_dropout_override_reaches_every_dropout_module(data):
    model = _model(data)
    fine_tune_pretrained(model, Teacher(), data["train"], data["valid"],
                         FineTuningParams(hidden_dropout=0.3, attention_dropout=0.15, **QUICK))  # fmt: skip
    probabilities = {
        m.p
        for name, m in model.named_modules()
        if isinstance(m, nn.Dropout) and "attention.self" not in name
    }
    assert probabilities == {0.3}
    assert {
        m.p
        for name, m in model.named_modules()
        if name.endswith("attention.self.dropout")
    } == {0.15}


def test_epoch_zero_is_the_starting_model(data):
    _, history = fine_tune_pretrained(
        _model(data), Teacher(), data["train"], data["valid"], FineTuningParams(**QUICK)
    )
    assert history["epoch"].tolist() == [0, 1, 2]
    assert (
        history.loc[0, "train_loss"] != history.loc[0, "train_loss"]
    )  # NaN: no training yet


@pytest.mark.parametrize(
    "settings",
    [
        {"fgm_epsilon": 0.5},
        {"label_smoothing": 0.2},
        {"encoder_lr_scale": 0.1},
        {"cloze_weight": 0.5},
        {"objective": "next_item", "cloze_weight": 0.5},
        {"objective": "next_item", "prefixes_per_sequence": 3},
    ],
)
def test_each_regularizer_changes_training(data, settings):
    same_objective = {"objective": settings.get("objective", "causal")}
    base, _ = fine_tune_pretrained(
        _model(data), Teacher(), data["train"], data["valid"],
        FineTuningParams(**QUICK, **same_objective),
    )  # fmt: skip
    other, history = fine_tune_pretrained(
        _model(data),
        Teacher(),
        data["train"],
        data["valid"],
        FineTuningParams(**QUICK, **settings),
    )
    assert history["train_loss"].iloc[1:].notna().all()
    changed = any(
        not torch.equal(a, b)
        for a, b in zip(
            base.state_dict().values(), other.state_dict().values(), strict=True
        )
    )
    assert changed


def test_distillation_trains_a_wider_teacher_and_uses_it(data):
    params = FineTuningParams(
        **QUICK,
        objective="next_item",
        distillation=DistillationParams(
            weight=0.5, teacher_hidden_size=48, teacher_epochs=1
        ),
    )
    teacher = train_teacher(
        data["item_features"],
        data["train"],
        data["valid"],
        ModelParams(max_len=20, hidden_size=32),
        params,
    )
    assert teacher.model is not None and teacher.model.config.hidden_size == 48
    assert (
        train_teacher(
            data["item_features"],
            data["train"],
            data["valid"],
            ModelParams(),
            FineTuningParams(),
        ).model
        is None
    )
    _, history = fine_tune_pretrained(
        _model(data), teacher, data["train"], data["valid"], params
    )
    assert history["train_loss"].iloc[1:].notna().all()


def test_causal_fine_tuning_turns_the_cloze_model_into_a_left_to_right_one(data):
    model = _model(data)
    assert not model.config.causal
    tuned, history = fine_tune_pretrained(
        model, Teacher(), data["train"], data["valid"], FineTuningParams(**QUICK)
    )
    assert tuned.config.causal  # saved that way, so inference reads it causally too
    assert history["epoch"].tolist() == [0, 1, 2]
    a = torch.tensor([[0, 0, 1, 2, 3, 4, 5, 6] + [7] * 12])
    b = torch.tensor([[0, 0, 1, 2, 3, 4, 5, 6] + [9] * 12])
    with torch.no_grad():
        assert torch.allclose(tuned.encode(a)[:, :8], tuned.encode(b)[:, :8], atol=1e-5)


def test_causal_fine_tuning_refuses_a_bidirectional_teacher():
    with pytest.raises(ValueError, match="fine_tuning.distillation.weight"):
        FineTuningParams(
            objective="causal", distillation=DistillationParams(weight=0.5)
        )
