"""Dropout that is cheap on a CPU, for hidden states and for attention probabilities.

Why: torch's CPU dropout draws one Bernoulli sample per element (`bernoulli_`), and the
attention probabilities need batch x heads x L x L of them per layer; in a profile of CPU
fine-tuning that was the largest single cost of a step. Here one 64-bit random draw gives
four 16-bit uniforms, several times cheaper per element (`git show
949a0af:docs/benchmarks.md`, "Training speed").

The drop probability becomes p rounded to a multiple of 1/65536 (0.1 -> 0.100006) and the
survivors are scaled by 1 / (1 - that p), so activations keep their expectation. The bits
come from torch's default generator, so `torch.manual_seed` makes a run repeatable as
before. Off the CPU (CUDA fuses dropout into its kernels) torch's own dropout is used.

The model uses both through `attn_implementation="maskrec_sdpa"` (registered below with
Hugging Face's `AttentionInterface`) and by swapping BERT's `nn.Dropout` modules for
`Dropout` (`SequenceRecModel.__init__`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

ATTENTION = "maskrec_sdpa"
_LEVELS = 1 << 16  # 16-bit uniforms


def fast_dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    """`F.dropout` with cheap random bits on the CPU (see the module docstring)."""
    if not training or p <= 0.0:
        return x
    if x.device.type != "cpu" or p >= 1.0:
        return F.dropout(x, p, training)
    threshold = round(p * _LEVELS)
    if threshold == 0:
        return x
    count = x.numel()
    bits = torch.empty((count + 3) // 4, dtype=torch.int64)
    # The whole int64 range: `random_()` alone leaves the top bit 0, biasing one lane in four.
    bits.random_(-(1 << 63), (1 << 63) - 1)
    uniform = bits.view(torch.int16)[:count].view(x.shape)  # -32768..32767
    drop = uniform < threshold - _LEVELS // 2
    return x.masked_fill(drop, 0.0).mul_(_LEVELS / (_LEVELS - threshold))


class Dropout(nn.Dropout):
    """`nn.Dropout` whose CPU path is `fast_dropout` above (same `p`, same `train()`/`eval()`)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fast_dropout(x, self.p, self.training)


def attention(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    **kwargs,
) -> tuple[torch.Tensor, None]:
    """Hugging Face attention function: PyTorch SDPA, except when dropping attention
    probabilities on the CPU, where SDPA's own path is the slow Bernoulli one; that case is
    written out (scores, softmax, `fast_dropout`, weighted sum), which is what SDPA's math
    fallback computes anyway.  # q, k, v (B, heads, L, d) -> (B, L, heads, d)
    """
    if dropout <= 0.0 or query.device.type != "cpu":
        return sdpa_attention_forward(
            module, query, key, value, attention_mask,
            dropout=dropout, scaling=scaling, **kwargs,
        )  # fmt: skip
    scaling = query.shape[-1] ** -0.5 if scaling is None else scaling
    scores = torch.matmul(query, key.transpose(-1, -2)) * scaling
    if attention_mask is not None:
        if attention_mask.dtype == torch.bool:  # True = may attend
            scores = scores.masked_fill(~attention_mask, torch.finfo(scores.dtype).min)
        else:
            scores = scores + attention_mask
    probs = fast_dropout(torch.softmax(scores, dim=-1), dropout)
    return torch.matmul(probs, value).transpose(1, 2).contiguous(), None


AttentionInterface.register(ATTENTION, attention)
AttentionMaskInterface.register(ATTENTION, sdpa_mask)
