"""Training objectives: how a batch of training windows becomes (inputs, labels) pairs.

Everything here is tensor code on the training device with an explicit generator: no
Python loop over sequences, and the same generator seed gives the same batches.
Labels use -100 for "no target here", as Hugging Face does.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar, NamedTuple

import torch

from maskrec.models.packing import IGNORE
from maskrec.models.rating_tokens import split_tokens


class Part(NamedTuple):
    """One loss term of a batch. `causal` chooses how the model reads `inputs` for this
    term (None: as its config says), so a causal model can mix in a bidirectional Cloze loss.

    A rating term also shows each position's rating (`ratings`, buckets; 0 = none) and
    asks for the hidden ones (`rating_labels`, buckets; -100 elsewhere) instead of items
    (`labels` then all -100)."""

    inputs: torch.Tensor
    labels: torch.Tensor
    weight: float = 1.0
    causal: bool | None = None
    ratings: torch.Tensor | None = None
    rating_labels: torch.Tensor | None = None

    def targets(self) -> torch.Tensor:
        """Where this term has a target (what its loss averages over).  # (B, L) bool"""
        labels = self.labels if self.rating_labels is None else self.rating_labels
        return labels != IGNORE

    def rows(self, start: int, stop: int, weight: float | torch.Tensor) -> Part:
        """Rows start..stop-1 of every tensor, with `weight`."""
        pick = lambda t: None if t is None else t[start:stop]  # noqa: E731
        return Part(self.inputs[start:stop], self.labels[start:stop], weight, self.causal,
                    pick(self.ratings), pick(self.rating_labels))  # fmt: skip


def cloze_mask(
    ids: torch.Tensor,
    mask_prob: float,
    mask_id: int,
    generator: torch.Generator,
    bert_replacement: bool = False,
    n_items: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mask real (non-padding) positions with probability `mask_prob`, at least one per row.

    With `bert_replacement`, a masked position shows [MASK] 80% of the time, a random item
    10% and the true item 10% (the model must still predict it).  # (B, L) -> 2 x (B, L)
    """
    real = ids != 0
    draw = torch.rand(ids.shape, generator=generator, device=ids.device)
    masked = (draw < mask_prob) & real
    # Rows that drew no mask get their real position with the smallest draw. Written
    # without a data-dependent branch so that a GPU never waits for the host here.
    forced = draw.masked_fill(~real, 2.0).argmin(dim=1, keepdim=True)
    empty = (~masked.any(dim=1) & real.any(dim=1))[:, None]
    masked.scatter_(1, forced, masked.gather(1, forced) | empty)
    labels = torch.where(masked, ids, torch.full_like(ids, IGNORE))
    inputs = ids.clone()
    if bert_replacement:
        how = torch.rand(ids.shape, generator=generator, device=ids.device)
        to_random = masked & (how >= 0.8) & (how < 0.9)
        random_items = torch.randint(
            1, n_items + 1, ids.shape, generator=generator, device=ids.device
        )
        inputs = torch.where(
            masked & (how < 0.8), torch.full_like(ids, mask_id), inputs
        )
        inputs = torch.where(to_random, random_items, inputs)
    else:
        inputs[masked] = mask_id
    return inputs, labels


def last_item_prefixes(
    ids: torch.Tensor, copy: torch.Tensor, mask_id: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """A random prefix of each window with [MASK] in place of its next item, right-aligned.

    Copy 0 of a window always uses the window's true last item; other copies cut at a
    random point with at least one item before it. This is exactly the inference input:
    a history followed by a [MASK].  # (B, L) -> 2 x (B, L)
    """
    length = ids.shape[1]
    real = (ids != 0).sum(dim=1)
    offset = (
        torch.rand(real.shape, generator=generator, device=ids.device)
        * (real - 1).clamp(min=1)
    ).long()
    offset = torch.where(
        copy == 0, torch.zeros_like(offset), offset.clamp(max=(real - 2).clamp(min=0))
    )
    index = torch.arange(length, device=ids.device)[None, :] - offset[:, None]
    shifted = ids.gather(1, index.clamp(min=0)).masked_fill(index < 0, 0)
    labels = torch.full_like(ids, IGNORE)
    labels[:, -1] = shifted[:, -1]
    shifted[:, -1] = mask_id
    return shifted, labels


class Objective(ABC):
    """What `fit` asks of an objective: batches of loss `Part`s from training windows, how
    many samples an epoch holds, how long a window is, and how the model it trains reads
    a sequence (`causal`), which `fit` sets on the model for training.

    `batches` draws the epoch's samples (`samples_per_window` per window) in random order,
    all on the windows' device; a subclass only turns a batch of rows into its parts.
    """

    causal: ClassVar[bool] = False
    # whether its windows are rated tokens (`model_input.rated_tokens`), not item ids
    reads_ratings: ClassVar[bool] = False

    @property
    def samples_per_window(self) -> int:
        return 1

    def window_length(self, max_len: int) -> int:
        return max_len

    def samples_per_epoch(self, windows: int) -> int:
        return windows * self.samples_per_window

    @abstractmethod
    def parts(
        self, rows: torch.Tensor, sample: torch.Tensor, generator: torch.Generator
    ) -> list[Part]:
        """The loss parts of one batch of window `rows`; `sample` says which of a
        window's samples each row is (0 .. samples_per_window - 1)."""

    def batches(
        self, windows: torch.Tensor, batch_size: int, generator: torch.Generator
    ) -> Iterator[list[Part]]:
        copies = self.samples_per_window
        order = torch.randperm(len(windows) * copies, generator=generator, device=windows.device)  # fmt: skip
        for index in order.split(batch_size):
            yield self.parts(windows[index // copies], index % copies, generator)


@dataclass
class ClozeObjective(Objective):
    """Masked-item pretraining: predict randomly masked items from both sides."""

    mask_prob: float
    mask_id: int
    n_items: int
    bert_replacement: bool = False

    def parts(self, rows, sample, generator) -> list[Part]:
        inputs, labels = cloze_mask(
            rows, self.mask_prob, self.mask_id, generator, self.bert_replacement, self.n_items
        )  # fmt: skip
        return [Part(inputs, labels)]


@dataclass
class NextItemObjective(Objective):
    """Fine-tuning that matches inference: [MASK] after a history, many prefixes per window,
    optionally mixed with the Cloze loss (which keeps the pretraining signal alive)."""

    mask_id: int
    n_items: int
    prefixes_per_sequence: int = 4
    cloze_weight: float = 0.0
    mask_prob: float = 0.2

    @property
    def samples_per_window(self) -> int:
        return self.prefixes_per_sequence

    def parts(self, rows, sample, generator) -> list[Part]:
        parts = [Part(*last_item_prefixes(rows, sample, self.mask_id, generator))]
        if self.cloze_weight > 0:
            cloze = cloze_mask(rows, self.mask_prob, self.mask_id, generator)
            parts.append(Part(*cloze, self.cloze_weight))
        return parts


@dataclass
class CausalObjective(Objective):
    """SASRec: every position predicts the item after it (windows are max_len + 1 long).

    Used for the SASRec baseline and for causal fine-tuning of a Cloze-pretrained model,
    where `cloze_weight` > 0 mixes in the pretraining loss, read bidirectionally by the same
    weights, on the window's last max_len items.
    """

    cloze_weight: float = 0.0
    mask_prob: float = 0.2
    mask_id: int = 0
    causal: ClassVar[bool] = True

    def window_length(self, max_len: int) -> int:
        """One item longer than the model reads: the last one is only a target."""
        return max_len + 1

    def parts(self, rows, sample, generator) -> list[Part]:
        inputs = rows[:, :-1]
        labels = torch.where(inputs != 0, rows[:, 1:], torch.full_like(inputs, IGNORE))
        parts = [Part(inputs, labels, 1.0, True)]
        if self.cloze_weight > 0:
            cloze = cloze_mask(rows[:, 1:], self.mask_prob, self.mask_id, generator)
            parts.append(Part(*cloze, self.cloze_weight, False))
        return parts


@dataclass
class RatingObjective(Objective):
    """Rating fine-tuning: every item of a window is shown, with its rating except at
    randomly hidden positions (`mask_prob` of them, at least one a row), whose ratings are
    the targets; read bidirectionally. A question of `model_input.rating_set` (an item
    among a user's rated history, its rating hidden) is exactly such a window."""

    mask_prob: float
    reads_ratings: ClassVar[bool] = True

    def parts(self, rows, sample, generator) -> list[Part]:
        items, buckets = split_tokens(rows)
        shown, asked = cloze_mask(buckets, self.mask_prob, 0, generator)
        labels = torch.full_like(items, IGNORE)
        return [Part(items, labels, 1.0, False, shown, asked)]
