"""What a training step's item predictions cost: one function, three ways to compute it.

Every objective (Cloze, next item, causal) ends in the same question: at each labelled
position, which of the N items comes here? The output layer scores the position's state
against every item vector (`SequenceRecModel.output_items`), so the exact softmax holds a
(positions x N) block of logits, and its gradient another: batch 128 x length 200 x
87,000 items is ~9 GB in fp32 (ML-32M). `item_loss` offers, by parameter (`loss` in each
training group):

- `full`: the exact softmax over all logits at once (fastest where it fits);
- `chunked`: the same value and gradient, the logsumexp taken over blocks of items and
  each block recomputed in the backward pass, so only (positions x block) logits exist
  at a time;
- `sampled`: sampled softmax, the target plus `negatives` items drawn with replacement
  from the training items' popularity, each drawn logit corrected by -log(negatives * q)
  (the logQ correction). It estimates the partition function without bias:
  E[exp(o_t) + sum_k [j_k != t] exp(o_jk) / (negatives * q_jk)] = sum_j exp(o_j).
  The loss is the log of that estimate minus the target logit, so by Jensen's inequality
  it is biased low in expectation, by less as `negatives` grows (consistent, not unbiased).

Label smoothing stays exact in all three: the mean logit over the items is linear in the
state, so it never needs the logits themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from maskrec.models.packing import IGNORE

LossKind = Literal["full", "chunked", "sampled"]
CHUNK_ELEMENTS = 1 << 24  # logits per block of the chunked loss (64 MiB in fp32)


@dataclass(frozen=True)
class ItemLoss:
    """How `item_loss` computes the softmax (see the module docstring).

    `proposal` (sampled only): each item's sampling weight, ids 1..N as columns 0..N-1,
    zero where an item may not be a target; `SequenceRecModel`-independent so a test can
    pass any distribution.
    """

    kind: LossKind = "full"
    negatives: int = 0
    proposal: torch.Tensor | None = None


@dataclass(frozen=True)
class LossSettings:
    """Everything a training step's loss is made of (`SequenceRecModel.forward`): the
    item softmax, label smoothing, the masked-genre loss's weight, and distillation's
    weight and temperature (the teacher itself is a `forward` argument)."""

    item: ItemLoss = ItemLoss()
    label_smoothing: float = 0.0
    genre_weight: float = 0.0
    distill_weight: float = 0.0
    temperature: float = 2.0


def masked_cross_entropy(
    logits: torch.Tensor,
    targets: torch.Tensor,
    label_smoothing: float = 0.0,
    columns: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean cross-entropy of `item_logits` rows (column j is item j + 1) against item ids
    1..N; rows past len(targets) are padding (`SequenceRecModel.forward`) and ignored.
    With `columns` (`trained_columns`), the softmax and the smoothing cover those items
    only."""
    if columns is None:
        labels = F.pad(
            targets - 1, (0, logits.shape[0] - targets.shape[0]), value=IGNORE
        )
        return F.cross_entropy(logits.float(), labels, label_smoothing=label_smoothing)
    log_p = torch.log_softmax(logits[: len(targets)].float().masked_fill(~columns, -torch.inf), dim=-1)  # fmt: skip
    nll = -log_p.gather(1, (targets - 1)[:, None]).mean()
    if not label_smoothing:
        return nll
    return (1 - label_smoothing) * nll - label_smoothing * log_p[:, columns].mean()


def chunked_cross_entropy(
    states: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    targets: torch.Tensor,
    label_smoothing: float = 0.0,
    columns: torch.Tensor | None = None,
    chunk: int | None = None,
) -> torch.Tensor:
    """`masked_cross_entropy` of the logits `states @ weight.T + bias`, never holding
    more than (M x chunk) of them: equal in value and gradient (up to float rounding).

    states (M, H) are the output layer's inputs (after `head_transform`), weight (N, H)
    and bias (N,) its item vectors, targets (M,) item ids 1..N.
    """
    n = weight.shape[0]
    chunk = chunk or max(1024, CHUNK_ELEMENTS // max(len(states), 1))
    allowed = torch.ones(n, dtype=torch.bool, device=weight.device) if columns is None else columns  # fmt: skip
    starts = range(0, n, chunk)
    if (
        columns is not None
    ):  # a block of excluded items adds nothing (and -inf): skip it
        padded = F.pad(columns, (0, -n % chunk))
        starts = [s for s, keep in zip(starts, padded.view(-1, chunk).any(1).tolist(), strict=True) if keep]  # fmt: skip
    blocks = [
        checkpoint(_block_logsumexp, states, weight[s : s + chunk], bias[s : s + chunk],
                   allowed[s : s + chunk], use_reentrant=False)
        for s in starts
    ]  # fmt: skip
    log_z = torch.logsumexp(torch.stack(blocks, dim=1), dim=1)
    return _softmax_loss(states, weight, bias, targets, log_z, allowed, label_smoothing)


def sampled_softmax_loss(
    states: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    targets: torch.Tensor,
    negatives: int,
    proposal: torch.Tensor,
    label_smoothing: float = 0.0,
    columns: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Sampled softmax with the logQ correction (see the module docstring for what it
    estimates): `negatives` items, shared by every row, drawn with replacement from
    `proposal` (N,), which must be zero outside `columns`; a draw that is the row's own
    target is left out of that row. Smoothing spreads over `columns` (None: all items)."""
    q = proposal.float() / proposal.sum()
    drawn = torch.multinomial(q, negatives, replacement=True, generator=generator)
    target_logit = _logits_at(states, weight, bias, targets - 1)
    drawn_logits = (states @ weight[drawn].T + bias[drawn]).float() - torch.log(negatives * q[drawn])  # fmt: skip
    drawn_logits = drawn_logits.masked_fill(drawn[None] == (targets - 1)[:, None], -torch.inf)  # fmt: skip
    log_z = torch.logsumexp(torch.cat([target_logit[:, None], drawn_logits], dim=1), dim=1)  # fmt: skip
    allowed = torch.ones_like(bias, dtype=torch.bool) if columns is None else columns
    return _softmax_loss(states, weight, bias, targets, log_z, allowed, label_smoothing)


def _block_logsumexp(states, weight, bias, allowed) -> torch.Tensor:
    logits = (states @ weight.T + bias).float().masked_fill(~allowed, -torch.inf)
    return torch.logsumexp(logits, dim=1)


def _logits_at(states, weight, bias, columns) -> torch.Tensor:
    """Each row's logit for its own column (M,), without the (M, N) product."""
    return ((states * weight[columns]).sum(-1) + bias[columns]).float()


def _softmax_loss(states, weight, bias, targets, log_z, allowed, label_smoothing):
    """Mean of (1 - e) * (log Z - o_t) + e * (log Z - mean over allowed items of o_j)."""
    nll = (log_z - _logits_at(states, weight, bias, targets - 1)).mean()
    if not label_smoothing:
        return nll
    mean_logit = (states @ weight[allowed].mean(0) + bias[allowed].mean()).float()
    return (1 - label_smoothing) * nll + label_smoothing * (log_z - mean_logit).mean()


def item_loss(
    model,
    states: torch.Tensor,
    targets: torch.Tensor,
    settings: ItemLoss,
    label_smoothing: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The loss of a `SequenceRecModel`'s states (M, H) at labelled positions against
    `targets` (M,) item ids, computed as `settings.kind` says; also the full logits where
    they were computed (`full`: distillation reads them), else None."""
    columns = model.trained_columns()
    if settings.kind == "full":
        logits = model.labelled_logits(states)
        return masked_cross_entropy(logits, targets, label_smoothing, columns), logits
    head = model.head_transform(states)
    weight, bias = model.output_items()
    if settings.kind == "chunked":
        return chunked_cross_entropy(head, weight, bias, targets, label_smoothing, columns), None  # fmt: skip
    return sampled_softmax_loss(head, weight, bias, targets, settings.negatives, settings.proposal, label_smoothing, columns), None  # fmt: skip


def repeating_size(count: int) -> int:
    """`count` rounded up to one of eight sizes per power of two (at most 12.5% more).

    Why: the output layer's (positions x items) blocks are the largest tensors of a
    training step, and the number of labelled positions differs in every batch. With
    every size different, glibc could not reuse freed blocks and a CPU process kept
    growing epoch after epoch; with sizes from a short repeating list it stays flat, and
    is a little faster (`git show 949a0af:docs/benchmarks.md`, "Where the memory goes").
    """
    step = 1 << max(count.bit_length() - 4, 0)
    return -(-count // step) * step


def proposal_from_windows(windows: torch.Tensor, n_items: int, columns: torch.Tensor | None) -> torch.Tensor:  # fmt: skip
    """The sampled softmax's proposal: how often each item 1..N occurs in the training
    windows, plus one (every trainable item can be drawn), zero outside `columns`."""
    ids = windows[(windows > 0) & (windows <= n_items)]
    counts = torch.bincount(ids.flatten().cpu(), minlength=n_items + 1)[1:].float() + 1
    if columns is not None:
        counts = counts * columns.cpu()
    return counts
