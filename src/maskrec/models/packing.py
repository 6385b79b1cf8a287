"""Packing several sequences per row of a batch.

Why: histories differ widely in length, so much of a right-aligned batch is padding (over
half of it at max_len 200 on MovieLens 100K). Trimming the all-padding columns would
remove none of it, because almost every batch holds one full-length row (measured, with
length bucketing, which did not pay either: `git show 949a0af:docs/benchmarks.md`,
"Training speed"; the result files were not kept).
Packing puts several short sequences side by side in one row (first-fit decreasing), so
the transformer's (rows x length) and (rows x length x length) work shrinks with the
number of rows.

It is exact: each token keeps the position id it had in its own row, attention is blocked
between different sequences of a row (`SequenceRecModel.attention_bias` with `segments`),
and labels move with their tokens, so every sequence is read, and every target scored, as
if it were alone. Only the order of floating-point sums changes (tests/models/
test_packing.py checks states, losses and scores against the unpacked batch). Scoring
(`SequenceRecModel.score_next`) packs contexts the same way on the CPU.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

IGNORE = (
    -100
)  # label of a position that is not a target (torch's cross-entropy default)


class SequenceBatch(NamedTuple):
    """Right-aligned inputs and labels, plus where packing put each token.

    `positions` (position id of each token) and `segments` (which sequence a token belongs
    to, 0 for padding) are None for an unpacked batch, whose rows are one sequence each.
    """

    inputs: torch.Tensor  # (R, L)
    labels: torch.Tensor  # (R, L), IGNORE where there is no target
    positions: torch.Tensor | None = None  # (R, L)
    segments: torch.Tensor | None = None  # (R, L)


def pack(batch: SequenceBatch, max_len: int) -> SequenceBatch:
    """Pack the right-aligned sequences of an unpacked batch into as few rows as
    first-fit decreasing finds, each row filled from the right.

    A token keeps the position id it had in its own row (max_len - width + column), so
    the model reads every sequence exactly as it would alone.
    """
    inputs, labels = batch.inputs, batch.labels
    width = inputs.shape[1]
    present = inputs != 0
    lengths = present.sum(dim=1)
    order = torch.argsort(lengths, descending=True, stable=True)
    free: list[int] = []  # room left in each packed row; it fills from the right
    rows, ends = [], []
    for length in lengths[order].tolist():
        row = next((r for r, room in enumerate(free) if room >= length), len(free))
        if row == len(free):
            free.append(width)
        rows.append(row)
        ends.append(free[row])
        free[row] -= length
    device = inputs.device
    row_of = torch.empty_like(lengths)
    shift = torch.empty_like(lengths)
    row_of[order] = torch.tensor(rows, device=device)
    shift[order] = torch.tensor(ends, device=device) - width
    source_row, column = present.nonzero(as_tuple=True)
    target = (row_of[source_row], column + shift[source_row])
    shape = (len(free), width)
    packed_inputs = torch.zeros(shape, dtype=inputs.dtype, device=device)
    packed_inputs[target] = inputs[source_row, column]
    packed_labels = torch.full(shape, IGNORE, dtype=labels.dtype, device=device)
    packed_labels[target] = labels[source_row, column]
    positions = torch.zeros(shape, dtype=torch.long, device=device)
    positions[target] = column + (max_len - width)
    segments = torch.zeros(shape, dtype=torch.long, device=device)
    segments[target] = source_row + 1
    return SequenceBatch(packed_inputs, packed_labels, positions, segments)
