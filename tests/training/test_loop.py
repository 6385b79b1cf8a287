"""What each loss-level regularizer does to the training objective, checked against an
independent computation (log-softmax by hand, a perturbed copy of the model, AdamW's
first step), not against the code's own formula."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from maskrec.model_input import right_aligned
from maskrec.models.losses import LossSettings
from maskrec.models.packing import IGNORE
from maskrec.models.sequence import SequenceRecModel
from maskrec.training.loop import (
    _adversarial_step,
    batch_loss,
    parameter_groups,
)
from maskrec.training.objectives import Part
from tests.models.test_sequence import tiny_config

N_ITEMS = 40


def tiny(seed: int = 0, hidden: int = 16, **overrides) -> SequenceRecModel:
    torch.manual_seed(seed)
    config = tiny_config(
        n_items=N_ITEMS, hidden_size=hidden, intermediate_size=32, n_genres=3,
        item_genres=[[i % 3] for i in range(N_ITEMS)], **overrides,
    )  # fmt: skip
    model = SequenceRecModel(config).eval()
    with torch.no_grad():  # larger than the init so that the losses differ visibly
        model.item_embedding.weight.mul_(20.0)
    return model


def part(weight: float = 1.0) -> Part:
    """Two users, every real position but the first labelled with a target."""
    inputs = right_aligned([[3, 4, 5, 6], [7, 8, 9, 10, 11, 12]], 8)
    labels = torch.where(inputs != 0, (inputs * 7) % N_ITEMS + 1, IGNORE)
    labels[:, :3] = IGNORE
    return Part(inputs, labels, weight)


def logits_at_labels(
    model: SequenceRecModel, p: Part
) -> tuple[torch.Tensor, torch.Tensor]:
    """Item logits at the labelled positions, computed from the model's pieces by hand."""
    hidden = model.encode(p.inputs)[p.labels != IGNORE]
    return model.item_logits(hidden), p.labels[p.labels != IGNORE] - 1


def test_loss_is_cross_entropy_and_label_smoothing_smooths_it():
    model, p = tiny(), part()
    logits, targets = logits_at_labels(model, p)
    log_p = torch.log_softmax(logits, dim=-1)
    nll = -log_p.gather(1, targets[:, None]).mean()
    uniform = -log_p.mean()  # cross-entropy against the uniform distribution
    for eps in (0.0, 0.3):
        expected = (1 - eps) * nll + eps * uniform
        got = batch_loss(model, [p], LossSettings(label_smoothing=eps))
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_parts_add_up_with_their_weights():
    """How the Cloze loss is mixed into fine-tuning (`cloze_weight`)."""
    model = tiny()
    a, b = part(), Part(*part()[:2], 0.25, True)
    alone_a = batch_loss(model, [a], LossSettings())
    alone_b = batch_loss(model, [Part(b.inputs, b.labels, 1.0, True)], LossSettings())
    torch.testing.assert_close(
        batch_loss(model, [a, b], LossSettings()), alone_a + 0.25 * alone_b
    )


@pytest.mark.parametrize("weight", [1.0, 0.3])
def test_distillation_term_is_the_tempered_kl_to_the_teacher(weight):
    student, teacher, p = tiny(0), tiny(1, hidden=32), part()
    temperature = 2.0
    s_logits, targets = logits_at_labels(student, p)
    t_logits, _ = logits_at_labels(teacher, p)
    t_prob = torch.softmax(t_logits / temperature, dim=-1)
    kl = (t_prob * (t_prob.log() - torch.log_softmax(s_logits / temperature, -1))).sum(-1).mean()  # fmt: skip
    ce = F.cross_entropy(s_logits, targets)
    expected = (1 - weight) * ce + weight * temperature**2 * kl
    settings = LossSettings(distill_weight=weight, temperature=temperature)
    torch.testing.assert_close(batch_loss(student, [p], settings, teacher), expected, atol=1e-5, rtol=1e-5)  # fmt: skip


def test_distillation_moves_the_student_toward_the_teacher():
    student, teacher, p = tiny(0), tiny(1, hidden=32), part()
    settings = LossSettings(distill_weight=1.0, temperature=1.0)

    def divergence() -> float:
        with torch.no_grad():
            s_logits, _ = logits_at_labels(student, p)
            t_logits, _ = logits_at_labels(teacher, p)
            return float(F.kl_div(torch.log_softmax(s_logits, -1), torch.log_softmax(t_logits, -1),
                                  log_target=True, reduction="batchmean"))  # fmt: skip

    before = divergence()
    optimizer = torch.optim.Adam(student.parameters(), lr=1e-2)
    for _ in range(30):
        optimizer.zero_grad()
        batch_loss(student, [p], settings, teacher).backward()
        optimizer.step()
    assert divergence() < 0.5 * before


def test_fgm_adds_the_gradient_at_perturbed_embeddings_and_restores_them():
    model, p = tiny(), part()
    settings = LossSettings()
    weights = model.item_embedding.weight.detach().clone()
    batch_loss(model, [p], settings).backward()
    clean = {
        n: q.grad.clone() for n, q in model.named_parameters() if q.grad is not None
    }
    # Independently: the same loss on a copy whose embeddings moved by eps * g / |g|.
    other = copy.deepcopy(model)
    other.zero_grad(set_to_none=True)
    g = clean["bert.embeddings.word_embeddings.weight"]
    with torch.no_grad():
        other.item_embedding.weight.add_(0.5 * g / g.norm())
    batch_loss(other, [p], settings).backward()
    _adversarial_step(
        model, [p], 0.5, lambda parts: batch_loss(model, parts, settings),
        torch.device("cpu"), False,
    )  # fmt: skip
    assert torch.equal(model.item_embedding.weight, weights)  # restored exactly
    for name, param in other.named_parameters():
        if param.grad is not None:
            expected = clean[name] + param.grad
            torch.testing.assert_close(dict(model.named_parameters())[name].grad, expected, atol=1e-5, rtol=1e-4)  # fmt: skip


def test_genre_loss_adds_the_weighted_multi_label_genre_loss():
    model, p = tiny(use_genres=True), part()
    hidden = model.encode(p.inputs)[p.labels != IGNORE]
    targets = p.labels[p.labels != IGNORE]
    genres = (model.item_genres[targets] > 0).float()
    bce = F.binary_cross_entropy_with_logits(model.genre_head(hidden), genres)
    plain = batch_loss(model, [p], LossSettings())
    torch.testing.assert_close(batch_loss(model, [p], LossSettings(genre_weight=0.5)), plain + 0.5 * bce)  # fmt: skip


def test_encoder_learns_at_the_scaled_rate():
    """AdamW's first step moves each weight by about its learning rate (m / sqrt(v) is
    +-1), so the encoder's step is encoder_lr_scale times the head's."""

    def first_step(scale: float) -> dict[str, float]:
        model = tiny()
        model.train()
        before = {n: q.detach().clone() for n, q in model.named_parameters()}
        optimizer = torch.optim.AdamW(parameter_groups(model, 1e-3, 0.0, scale))
        batch_loss(model, [part()], LossSettings()).backward()
        optimizer.step()
        moved = {"encoder": [], "head": []}
        for name, q in model.named_parameters():
            if q.grad is not None and q.grad.abs().max() > 0 and q.ndim >= 2:
                step = (q.detach() - before[name]).abs().max().item()
                moved["encoder" if name.startswith("bert.") else "head"].append(step)
        return {k: max(v) for k, v in moved.items()}

    full, slow = first_step(1.0), first_step(0.1)
    assert full["encoder"] == pytest.approx(1e-3, rel=0.05)
    assert slow["encoder"] == pytest.approx(1e-4, rel=0.05)
    assert slow["head"] == pytest.approx(full["head"]) == pytest.approx(1e-3, rel=0.05)


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_chunked_softmax_trains_exactly_like_the_full_one(smoothing):
    """`loss: chunked` in a training step: the same loss and the same gradient for every
    weight of the model (the item embeddings are also the output layer)."""
    from maskrec.models.losses import ItemLoss

    losses, grads = [], []
    for kind in ("full", "chunked"):
        model = tiny()
        settings = LossSettings(item=ItemLoss(kind), label_smoothing=smoothing)
        value = batch_loss(model, [part(), Part(*part()[:2], 0.5, True)], settings)
        value.backward()
        losses.append(value.detach())
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})  # fmt: skip
    torch.testing.assert_close(losses[1], losses[0], atol=1e-5, rtol=1e-5)
    assert grads[0].keys() == grads[1].keys()
    for name, grad in grads[0].items():
        torch.testing.assert_close(grads[1][name], grad, atol=1e-5, rtol=1e-4, msg=name)


def test_sampled_softmax_in_a_step_draws_from_the_stage_proposal():
    """`loss: sampled` with every draw on one item that is no row's target: each row's
    estimate is its target plus that item's corrected term, checked by hand."""
    from maskrec.models.losses import ItemLoss

    model, p = tiny(), part()
    logits, targets = logits_at_labels(model, p)
    other = next(i for i in range(N_ITEMS) if i not in set(targets.tolist()))
    proposal = torch.zeros(N_ITEMS)
    proposal[other] = 1.0
    settings = LossSettings(item=ItemLoss("sampled", 5, proposal))
    drawn = logits[:, other] - torch.log(torch.tensor(5.0))  # q = 1 for the one item
    picked = logits.gather(1, targets[:, None])[:, 0]
    terms = torch.stack([picked] + [drawn] * 5, dim=1)
    expected = (torch.logsumexp(terms, dim=1) - picked).mean()
    torch.testing.assert_close(batch_loss(model, [p], settings), expected, atol=1e-5, rtol=1e-5)  # fmt: skip
