"""The CPU dropout keeps torch dropout's contract: drop rate p, expectation kept, seeded."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from maskrec.models.cpu_dropout import Dropout, attention, fast_dropout


def test_drops_a_fraction_p_and_keeps_the_expectation():
    torch.manual_seed(0)
    x = torch.ones(400_000)
    for p in (0.1, 0.2, 0.5):
        y = fast_dropout(x, p)
        dropped = (y == 0).float().mean().item()
        assert abs(dropped - p) < 0.004
        assert abs(y.mean().item() - 1.0) < 0.01
        assert torch.allclose(y[y != 0], torch.tensor(1 / (1 - p)), rtol=1e-4)


def test_every_lane_of_the_random_bits_is_uniform():
    # one 64-bit draw feeds four elements; each of the four must drop at rate p
    torch.manual_seed(0)
    y = fast_dropout(torch.ones(400_000, 4), 0.5)
    assert ((y == 0).float().mean(dim=0) - 0.5).abs().max() < 0.01


def test_is_seeded_identity_in_eval_and_differentiable():
    x = torch.randn(64, 33, requires_grad=True)
    torch.manual_seed(3)
    a = fast_dropout(x, 0.3)
    torch.manual_seed(3)
    assert torch.equal(a, fast_dropout(x, 0.3))
    module = Dropout(0.3).eval()
    assert module(x) is x
    a.sum().backward()
    assert torch.equal(x.grad == 0, a == 0)


def test_attention_matches_pytorch_sdpa_without_drops():
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 2, 7, 8) for _ in range(3))
    bias = torch.randn(2, 1, 7, 7)
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=bias).transpose(1, 2)
    # a p too small to drop anything takes the written-out CPU path
    out, _ = attention(torch.nn.Module(), q, k, v, bias, dropout=1e-9)
    assert torch.allclose(out, expected, atol=1e-5)
    keep = torch.rand(2, 1, 7, 7) > 0.3
    keep[..., 0] = True
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=keep).transpose(1, 2)
    out, _ = attention(torch.nn.Module(), q, k, v, keep, dropout=1e-9)
    assert torch.allclose(out, expected, atol=1e-5)
