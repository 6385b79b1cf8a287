"""The item softmax three ways: the chunked loss is the full one (values and gradients),
the sampled one estimates the partition function without bias, as its docstring says.
The references are written out here in float64, independently of `models/losses.py`."""

import pytest
import torch

from maskrec.models.losses import (
    chunked_cross_entropy,
    masked_cross_entropy,
    proposal_from_windows,
    sampled_softmax_loss,
)


def _problem(rows=7, items=50, hidden=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    states = torch.randn(rows, hidden, generator=g, requires_grad=True)
    weight = torch.randn(items, hidden, generator=g, requires_grad=True)
    bias = torch.randn(items, generator=g, requires_grad=True)
    targets = torch.randint(1, items + 1, (rows,), generator=g)
    return states, weight, bias, targets


def _reference(states, weight, bias, targets, smoothing=0.0, columns=None):
    """Cross-entropy with label smoothing over the allowed items, in float64."""
    logits = states.double() @ weight.double().T + bias.double()
    if columns is not None:
        logits = logits.masked_fill(~columns, float("-inf"))
    log_p = torch.log_softmax(logits, dim=1)
    allowed = torch.ones(len(bias), dtype=torch.bool) if columns is None else columns
    nll = -log_p[torch.arange(len(targets)), targets - 1]
    spread = -log_p[:, allowed].mean(1)
    return ((1 - smoothing) * nll + smoothing * spread).mean()


def _grads(loss, *tensors):
    return torch.autograd.grad(loss, tensors)


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
@pytest.mark.parametrize("with_columns", [False, True])
def test_chunked_loss_equals_the_full_one_in_value_and_gradient(
    smoothing, with_columns
):
    states, weight, bias, targets = _problem()
    columns = None
    if with_columns:  # items 11..20 excluded: one whole block of 10 is skipped
        columns = torch.ones(50, dtype=torch.bool)
        columns[10:20] = False
        targets = torch.where(columns[targets - 1], targets, 1)
    expected = _reference(states, weight, bias, targets, smoothing, columns)
    full = masked_cross_entropy(states @ weight.T + bias, targets, smoothing, columns)
    chunked = chunked_cross_entropy(states, weight, bias, targets, smoothing, columns, chunk=10)  # fmt: skip
    assert full.item() == pytest.approx(expected.item(), rel=1e-5)
    assert chunked.item() == pytest.approx(expected.item(), rel=1e-5)
    for g_full, g_chunked, g_ref in zip(
        _grads(full, states, weight, bias),
        _grads(chunked, states, weight, bias),
        _grads(expected, states, weight, bias),
        strict=True,
    ):
        assert torch.allclose(g_chunked, g_ref, atol=1e-6)
        assert torch.allclose(g_chunked, g_full, atol=1e-6)


def test_sampled_partition_function_is_unbiased():
    """One row: the loss is log Z_hat - o_t, so exp(loss + o_t) is the estimate Z_hat.
    Its mean over many draws is the true Z (importance sampling), while the loss itself is
    biased low (Jensen), less so with more negatives."""
    states, weight, bias, targets = _problem(rows=1, items=40)
    states, weight, bias = states.detach(), weight.detach(), bias.detach()
    logits = (states.double() @ weight.double().T + bias.double())[0]
    true_z, target_logit = logits.exp().sum().item(), logits[targets[0] - 1].item()
    proposal = torch.arange(1, 41).float()  # popularity-like: far from uniform

    def draws(negatives, count):
        g = torch.Generator().manual_seed(negatives)
        return torch.tensor([
            sampled_softmax_loss(states, weight, bias, targets, negatives, proposal, generator=g).item()
            for _ in range(count)
        ], dtype=torch.float64)  # fmt: skip

    few = draws(5, 4000)
    z_hat = (few + target_logit).exp()
    stderr = z_hat.std() / len(z_hat) ** 0.5
    assert abs(z_hat.mean().item() - true_z) < 4 * stderr.item()
    full_loss = torch.log(torch.tensor(true_z)).item() - target_logit
    many = draws(400, 300)
    assert few.mean() < full_loss  # biased low
    assert (
        full_loss - many.mean() < (full_loss - few.mean()) / 5
    )  # and less with more negatives


def test_a_draw_of_the_target_itself_is_left_out():
    """With every draw the row's own target, the estimate has only the target's term:
    the loss is exactly zero."""
    states, weight, bias, targets = _problem(rows=1)
    proposal = torch.zeros(50)
    proposal[targets[0] - 1] = 1.0
    loss = sampled_softmax_loss(states, weight, bias, targets, 10, proposal)
    assert loss.item() == 0.0


def test_the_proposal_counts_training_items_and_keeps_out_untrainable_ones():
    windows = torch.tensor([[0, 1, 2, 2], [0, 0, 3, 6]])  # 6 = [MASK] of a 5-item model
    columns = torch.tensor([True, True, False, True, True])
    assert proposal_from_windows(windows, 5, columns).tolist() == [
        2.0,
        3.0,
        0.0,
        1.0,
        1.0,
    ]


def test_label_smoothing_under_the_sampled_loss_uses_the_exact_mean_logit():
    """With every draw the target, log Z_hat = o_t: the smoothed loss is then exactly
    e * (o_t - mean_j o_j), the smoothing term with that log Z."""
    states, weight, bias, targets = _problem(rows=1)
    proposal = torch.zeros(50)
    proposal[targets[0] - 1] = 1.0
    loss = sampled_softmax_loss(states, weight, bias, targets, 10, proposal, label_smoothing=0.2)  # fmt: skip
    logits = (states @ weight.T + bias)[0].double()
    expected = 0.2 * (logits[targets[0] - 1] - logits.mean())
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
