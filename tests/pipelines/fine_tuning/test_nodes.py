"""Fine-tuning nodes on a small sample: what each setting does to the model, and that each
regularizer reaches the loss or optimizer whose effect tests/training/test_loop.py checks."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from maskrec.pipelines.fine_tuning.nodes import (
    Teacher,
    fine_tune_pretrained,
    fine_tune_scratch,
    train_teacher,
)
from maskrec.training import stages
from maskrec.training.objectives import CausalObjective, NextItemObjective
from maskrec.training.setup import init_model
from tests.helpers import params, small_split

QUICK = {"epochs": 2, "batch_size": 64}
TRAINING = {"device": "cpu", "checkpoint_dir": None}


@pytest.fixture(scope="module")
def data():
    return small_split()


def _model(data, **overrides):
    model = {"max_len": 20, "hidden_size": 32, "intermediate_size": 64} | overrides
    return init_model(data["item_features"], params("model", **model), params("training", **TRAINING))  # fmt: skip


def _tune(model, data, teacher=None, **settings):
    return fine_tune_pretrained(
        model, teacher or Teacher(), data["train"], data["valid"],
        params("fine_tuning", **(QUICK | settings)), params("training", **TRAINING),
    )  # fmt: skip


def test_frozen_layers_do_not_move(data):
    model = _model(data)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    tuned, history = _tune(model, data, freeze_layers=1, epochs=3, learning_rate=0.005)
    assert history["best_epoch"].iloc[0] > 0  # a trained epoch was kept
    after = tuned.state_dict()
    for frozen in ("bert.embeddings.word_embeddings.weight", "bert.encoder.layer.0.attention.self.query.weight"):  # fmt: skip
        assert torch.equal(before[frozen], after[frozen]), frozen
    assert not torch.equal(
        before["bert.encoder.layer.1.attention.self.query.weight"],
        after["bert.encoder.layer.1.attention.self.query.weight"],
    )
    assert all(p.requires_grad for p in tuned.parameters())  # unfrozen for later use


def test_dropout_override_reaches_every_dropout_module(data):
    model = _model(data)
    _tune(model, data, hidden_dropout=0.3, attention_dropout=0.15)
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
    _, history = _tune(_model(data), data)
    assert history["epoch"].tolist() == [0, 1, 2]
    assert (
        history.loc[0, "train_loss"] != history.loc[0, "train_loss"]
    )  # NaN: no training
    assert (history["model"] == "fine_tuned").all()


def test_scratch_branch_is_the_same_fine_tuning_under_its_own_name(data):
    a, history_a = fine_tune_pretrained(_model(data), Teacher(), data["train"], data["valid"],
                                        params("fine_tuning", **QUICK), params("training", **TRAINING))  # fmt: skip
    b, history_b = fine_tune_scratch(_model(data), Teacher(), data["train"], data["valid"],
                                     params("fine_tuning", **QUICK), params("training", **TRAINING))  # fmt: skip
    assert (history_b["model"] == "scratch").all()
    for name, tensor in a.state_dict().items():  # same start, same fine-tuning
        assert torch.equal(tensor, b.state_dict()[name]), name


@pytest.mark.parametrize(
    ("settings", "check"),
    [
        ({"label_smoothing": 0.2}, lambda call: call["loss"].label_smoothing == 0.2),
        ({"fgm_epsilon": 0.5}, lambda call: call["loss"].fgm_epsilon == 0.5),
        ({"encoder_lr_scale": 0.1}, lambda call: call["encoder_lr_scale"] == 0.1),
        ({"freeze_layers": 1}, lambda call: call["freeze_layers"] == 1),
        ({"cloze_weight": 0.5}, lambda call: isinstance(call["objective"], CausalObjective) and call["objective"].cloze_weight == 0.5),
        ({"objective": "next_item", "prefixes_per_sequence": 3}, lambda call: isinstance(call["objective"], NextItemObjective)
         and call["objective"].prefixes_per_sequence == 3),
    ],
)  # fmt: skip
def test_each_regularizer_reaches_the_training_it_controls(
    data, monkeypatch, settings, check
):
    calls = []

    def spy(model, objective, *args, **options):
        calls.append({"objective": objective, **options})
        return model, None

    monkeypatch.setattr(stages, "train", spy)
    _tune(_model(data), data, **settings)
    (call,) = calls
    assert check(call) and call["start_is_candidate"]


def test_distillation_trains_a_wider_teacher_and_fine_tunes_with_it(data):
    settings = params(
        "fine_tuning", objective="next_item", **QUICK,
        distillation={"weight": 0.5, "teacher_hidden_size": 48, "teacher_epochs": 1},
    )  # fmt: skip
    teacher = train_teacher(
        data["item_features"], data["train"], data["valid"],
        params("model", max_len=20, hidden_size=32), settings, params("training", **TRAINING),
    )  # fmt: skip
    assert teacher.model is not None and teacher.model.config.hidden_size == 48
    off = params("fine_tuning")
    assert off.distillation.weight == 0
    none = train_teacher(data["item_features"], data["train"], data["valid"], params("model"), off, params("training"))  # fmt: skip
    assert none.model is None
    _, history = _tune(_model(data), data, teacher, objective="next_item",
                       distillation={"weight": 0.5, "teacher_hidden_size": 48})  # fmt: skip
    assert history["train_loss"].iloc[1:].notna().all()


def test_causal_fine_tuning_turns_the_cloze_model_into_a_left_to_right_one(data):
    model = _model(data)
    assert not model.config.causal
    tuned, history = _tune(model, data)
    assert history["best_epoch"].iloc[0] > 0  # else the bidirectional start is kept
    assert tuned.config.causal  # saved that way, so inference reads it causally too
    a = torch.tensor([[0, 0, 1, 2, 3, 4, 5, 6] + [7] * 12])
    b = torch.tensor([[0, 0, 1, 2, 3, 4, 5, 6] + [9] * 12])
    with torch.no_grad():
        assert torch.allclose(tuned.encode(a)[:, :8], tuned.encode(b)[:, :8], atol=1e-5)


def test_causal_fine_tuning_refuses_a_bidirectional_teacher():
    with pytest.raises(ValueError, match="fine_tuning.distillation.weight"):
        params("fine_tuning", objective="causal", distillation={"weight": 0.5})
