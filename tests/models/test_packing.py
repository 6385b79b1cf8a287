"""Packing several sequences into one batch row must change nothing but the layout."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from maskrec.model_input import right_aligned
from maskrec.models.losses import LossSettings
from maskrec.models.packing import IGNORE, SequenceBatch, pack
from maskrec.models.sequence import SequenceRecModel
from maskrec.training.loop import batch_loss
from maskrec.training.objectives import CausalObjective, Part, cloze_mask
from tests.models.test_sequence import tiny_config

WIDTH = 10


def _model(causal: bool) -> SequenceRecModel:
    torch.manual_seed(0)
    config = tiny_config(n_items=60, hidden_size=16, num_layers=2, intermediate_size=32, max_len=WIDTH, causal=causal)  # fmt: skip
    return SequenceRecModel(config).eval()


def _batch(lengths: list[int], seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    rows = [torch.randint(1, 60, (n,), generator=generator).tolist() for n in lengths]
    return right_aligned(rows, WIDTH)


@settings(max_examples=60, deadline=None)
@given(
    lengths=st.lists(st.integers(1, WIDTH), min_size=1, max_size=20),
    seed=st.integers(0, 9),
)
def test_pack_places_every_token_once_in_order_with_its_position(lengths, seed):
    inputs = _batch(lengths, seed)
    labels = torch.where(inputs != 0, inputs + 1000, torch.full_like(inputs, IGNORE))
    packed = pack(SequenceBatch(inputs, labels), max_len=WIDTH + 2)

    assert packed.inputs.shape[0] <= len(lengths)
    assert (packed.inputs != 0).sum() == sum(lengths)
    # no row holds more than fits, and first-fit decreasing never needs more rows than
    # twice the tokens' lower bound (plus one)
    assert packed.inputs.shape[0] <= 2 * -(-sum(lengths) // WIDTH) + 1
    assert torch.equal(packed.segments == 0, packed.inputs == 0)
    assert torch.equal(packed.labels == IGNORE, packed.inputs == 0)
    for row, length in enumerate(lengths):
        where = packed.segments == row + 1
        assert int(where.sum()) == length
        r, c = where.nonzero(as_tuple=True)
        assert (r == r[0]).all() and torch.equal(
            c, torch.arange(c[0], c[0] + length)
        )  # contiguous
        assert torch.equal(
            packed.inputs[where], inputs[row, WIDTH - length :]
        )  # in order
        assert torch.equal(packed.labels[where], labels[row, WIDTH - length :])
        # the position id it would have had in its own row (max_len - width + column)
        assert torch.equal(
            packed.positions[where], torch.arange(WIDTH - length, WIDTH) + 2
        )


@pytest.mark.parametrize("causal", [False, True])
def test_packed_batch_gives_the_same_states_and_loss(causal):
    model = _model(causal=causal)
    lengths = [2, 9, 3, 5, 1, 4, 10, 6]
    inputs = _batch(lengths)
    labels = torch.where(
        inputs != 0, (inputs % 60) + 1, torch.full_like(inputs, IGNORE)
    )
    packed = pack(SequenceBatch(inputs, labels), max_len=WIDTH)
    assert packed.inputs.shape[0] < len(lengths)  # it did pack

    with torch.no_grad():
        alone = model.encode(inputs)
        together = model.encode(
            packed.inputs, positions=packed.positions, segments=packed.segments
        )
        for row, length in enumerate(lengths):
            assert torch.allclose(
                together[packed.segments == row + 1],
                alone[row, WIDTH - length :],
                atol=1e-5,
            )


def test_packing_leaves_the_training_loss_unchanged():
    model = _model(causal=True)
    windows = right_aligned(
        [list(range(1, n + 2)) for n in [3, 9, 4, 2, 7, 5]], WIDTH + 1
    )
    (causal_part,) = next(CausalObjective().batches(windows, 8, torch.Generator()))
    generator = torch.Generator().manual_seed(1)
    cloze = Part(
        *cloze_mask(windows[:, 1:], 0.4, model.config.mask_id, generator), 0.5, False
    )
    parts = [causal_part, cloze]
    with torch.no_grad():
        assert torch.allclose(batch_loss(model, parts, LossSettings(), packing=True),
                              batch_loss(model, parts, LossSettings(), packing=False), atol=1e-5)  # fmt: skip


@pytest.mark.parametrize("causal", [False, True])
def test_packed_scoring_gives_the_same_scores_in_the_same_order(causal):
    model = _model(causal=causal)
    contexts = _batch([2, 9, 3, 5, 1, 4, 10, 6, 3, 3])
    packed = model.score_next(contexts, packing=True)
    alone = model.score_next(contexts, packing=False)
    assert packed.shape == alone.shape == (10, 61)
    assert torch.allclose(packed, alone, atol=1e-4)
    # an empty context falls back to the unpacked path rather than losing its row
    contexts[3] = 0
    assert model.score_next(contexts, packing=True).shape == (10, 61)


def test_padded_output_rows_change_no_loss():
    from maskrec.models.losses import masked_cross_entropy, repeating_size

    assert [repeating_size(n) for n in (0, 1, 15, 17, 100, 3000)] == [
        0,
        1,
        15,
        18,
        104,
        3072,
    ]
    assert all(n <= repeating_size(n) <= n * 1.125 for n in range(1, 5000))
    model = _model(causal=True)
    inputs = _batch([4, 7, 6])
    labels = torch.where(inputs != 0, inputs, torch.full_like(inputs, IGNORE))
    out = model(inputs, labels)  # the model's own loss, the Hugging Face way
    logits, hidden, targets = out.logits, out.hidden_states, labels[labels != IGNORE]
    assert logits.shape[0] == repeating_size(17) == 18 and hidden.shape[0] == 17
    expected = torch.nn.functional.cross_entropy(logits[:17], targets - 1)
    assert torch.allclose(masked_cross_entropy(logits, targets), expected)
    assert torch.allclose(out.loss, expected)
