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
from tests.helpers import configured, params, small_split

QUICK = {"model": {"max_len": 20, "hidden_size": 32, "intermediate_size": 64},
         "schedule": {"epochs": 2, "batch_size": 64}, "training": {"device": "cpu", "checkpoint_dir": None}}  # fmt: skip


@pytest.fixture(scope="module")
def data():
    return small_split()


def _model(data):
    return init_model(data["item_features"], configured(**QUICK)["pretraining"])


def _stage(**settings):
    """Fine-tuning's spec, quick, with `settings` in `--params fine_tuning.<key>` form."""
    return configured(**QUICK, fine_tuning=settings)["fine_tuning"]


def _tune(start, data, teacher=None, **settings):
    return fine_tune_pretrained(
        start, teacher or Teacher(), data["train"], data["valid"], _stage(**settings),
        configured(**QUICK)["training"],
    )  # fmt: skip


def test_frozen_layers_do_not_move(data):
    model = _model(data)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    tuned, history = _tune(model, data, regularizers={"freeze_layers": 1}, schedule={"epochs": 3, "learning_rate": 0.005})  # fmt: skip
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
    _tune(model, data, model={"hidden_dropout": 0.3, "attention_dropout": 0.15})
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
    training = configured(**QUICK)["training"]
    a, history_a = fine_tune_pretrained(_model(data), Teacher(), data["train"], data["valid"], _stage(), training)  # fmt: skip
    b, history_b = fine_tune_scratch(_model(data), Teacher(), data["train"], data["valid"], _stage(), training)  # fmt: skip
    assert (history_b["model"] == "scratch").all()
    for name, tensor in a.state_dict().items():  # same start, same fine-tuning
        assert torch.equal(tensor, b.state_dict()[name]), name


@pytest.mark.parametrize(
    ("settings", "check"),
    [
        ({"loss": {"label_smoothing": 0.2}}, lambda call: call["stage"].loss.label_smoothing == 0.2),
        ({"regularizers": {"fgm_epsilon": 0.5}}, lambda call: call["stage"].regularizers.fgm_epsilon == 0.5),
        ({"regularizers": {"encoder_lr_scale": 0.1}}, lambda call: call["stage"].regularizers.encoder_lr_scale == 0.1),
        ({"regularizers": {"freeze_layers": 1}}, lambda call: call["stage"].regularizers.freeze_layers == 1),
        ({"cloze_weight": 0.5}, lambda call: isinstance(call["objective"], CausalObjective) and call["objective"].cloze_weight == 0.5),
        ({"objective": "next_item", "prefixes_per_sequence": 3}, lambda call: isinstance(call["objective"], NextItemObjective)
         and call["objective"].prefixes_per_sequence == 3),
    ],
)  # fmt: skip
def test_each_regularizer_reaches_the_training_it_controls(
    data, monkeypatch, settings, check
):
    calls = []

    def spy(model, objective, sequences, valid, stage, training, name, **options):
        calls.append({"objective": objective, "stage": stage, **options})
        return model, None

    monkeypatch.setattr(stages, "train", spy)
    _tune(_model(data), data, **settings)
    (call,) = calls
    assert check(call) and call["start_is_candidate"]


def test_distillation_trains_a_wider_teacher_and_fine_tunes_with_it(data):
    distillation = {"weight": 0.5, "teacher": {"model": {"hidden_size": 48, "intermediate_size": 96}, "schedule": {"epochs": 1}}}  # fmt: skip
    settings = _stage(objective="next_item", distillation=distillation)
    training = configured(**QUICK)["training"]
    teacher = train_teacher(data["item_features"], data["train"], data["valid"], settings, training)  # fmt: skip
    assert teacher.model is not None and teacher.model.config.hidden_size == 48
    assert (
        teacher.weight == 0.5
        and teacher.temperature == settings.distillation.temperature
    )
    off = params("fine_tuning")
    assert off.distillation.weight == 0
    none = train_teacher(data["item_features"], data["train"], data["valid"], off, training)  # fmt: skip
    assert none.model is None
    _, history = _tune(_model(data), data, teacher, objective="next_item", distillation=distillation)  # fmt: skip
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


def _pretrained(data):
    """A model whose weights are not its initial draw (one Cloze epoch)."""
    model, _ = stages.pretrain(_model(data), data["train"], data["valid"], configured(**QUICK, pretraining={"schedule": {"epochs": 1}})["pretraining"], configured(**QUICK)["training"], "pretrained")  # fmt: skip
    return model


def test_warm_start_moves_the_pretrained_weights_toward_their_initial_draw(data):
    """`fine_tuning.warm_start`: shrink x pretrained + perturb x the initial weights,
    parameter by parameter; (1, 0) is the pretrained model itself, and (0, 1) is exactly
    the scratch ablation's start, so fine-tuning from it is the scratch model."""
    pretraining = configured(**QUICK)["pretraining"]
    pretrained, initial = _pretrained(data), _model(data)
    as_is = stages.warm_start(pretrained, data["item_features"], pretraining, _stage())
    assert as_is is pretrained

    mixed = stages.warm_start(pretrained, data["item_features"], pretraining, _stage(warm_start={"shrink": 0.5, "perturb": 0.25}))  # fmt: skip
    moved = dict(pretrained.named_parameters())
    for name, weight in mixed.named_parameters():
        torch.testing.assert_close(weight, 0.5 * moved[name] + 0.25 * dict(initial.named_parameters())[name])  # fmt: skip
    assert not torch.equal(moved["bert.encoder.layer.0.attention.self.query.weight"], dict(initial.named_parameters())["bert.encoder.layer.0.attention.self.query.weight"])  # fmt: skip

    stage = _stage(warm_start={"shrink": 0.0, "perturb": 1.0})
    restarted = stages.warm_start(pretrained, data["item_features"], pretraining, stage)
    training = configured(**QUICK)["training"]
    a, history_a = fine_tune_pretrained(restarted, Teacher(), data["train"], data["valid"], stage, training)  # fmt: skip
    b, history_b = fine_tune_scratch(_model(data), Teacher(), data["train"], data["valid"], stage, training)  # fmt: skip
    assert history_a["ndcg@10"].tolist() == history_b["ndcg@10"].tolist()
    for name, tensor in a.state_dict().items():
        assert torch.equal(tensor, b.state_dict()[name]), name


def test_a_warm_start_outside_its_range_is_refused_by_name():
    with pytest.raises(ValueError, match="warm_start.shrink"):
        _stage(warm_start={"shrink": 1.5, "perturb": 0.0})
