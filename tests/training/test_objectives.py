from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from maskrec.model_input import eval_set, right_aligned, training_windows
from maskrec.training.objectives import (
    IGNORE,
    CausalObjective,
    cloze_mask,
    last_item_prefixes,
)

MASK = 101


def _batch(lengths: list[int], width: int = 12) -> torch.Tensor:
    generator = torch.Generator().manual_seed(sum(lengths))
    rows = [torch.randint(1, 101, (n,), generator=generator).tolist() for n in lengths]
    return right_aligned(rows, width)


@settings(max_examples=40, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 12), min_size=1, max_size=30),
    p=st.floats(0.05, 0.9),
    seed=st.integers(0, 99),
)
def test_cloze_mask_invariants(lengths, p, seed):
    ids = _batch(lengths)
    inputs, labels = cloze_mask(ids, p, MASK, torch.Generator().manual_seed(seed))
    masked = labels != IGNORE
    assert not masked[ids == 0].any()  # padding is never masked
    assert masked.any(dim=1).all()  # at least one mask per row
    assert torch.equal(labels[masked], ids[masked])  # labels are the true items
    assert (inputs[masked] == MASK).all()
    assert torch.equal(inputs[~masked], ids[~masked])  # everything else untouched


def test_cloze_mask_rate_matches_the_parameter():
    ids = _batch([40] * 500, width=40)
    _, labels = cloze_mask(ids, 0.2, MASK, torch.Generator().manual_seed(0))
    rate = (labels != IGNORE).float().mean().item()
    assert abs(rate - 0.2) < 0.01


def test_bert_replacement_split():
    ids = _batch([40] * 500, width=40)
    inputs, labels = cloze_mask(
        ids,
        0.5,
        MASK,
        torch.Generator().manual_seed(0),
        bert_replacement=True,
        n_items=100,
    )
    masked = labels != IGNORE
    shown_mask = (inputs[masked] == MASK).float().mean().item()
    kept = (inputs[masked] == ids[masked]).float().mean().item()
    assert abs(shown_mask - 0.8) < 0.02
    assert 0.08 < kept < 0.13  # 10% kept, plus random picks that hit the true item
    assert ((inputs >= 1) & (inputs <= MASK) | (ids == 0)).all()


def test_last_item_prefixes_are_history_then_mask():
    ids = right_aligned([[5, 6, 7, 8, 9], [3, 4]], 6)
    generator = torch.Generator().manual_seed(1)
    for copy in (0, 1, 2, 3):
        inputs, labels = last_item_prefixes(
            ids, torch.full((2,), copy), MASK, generator
        )
        assert (inputs[:, -1] == MASK).all()
        assert (labels[:, :-1] == IGNORE).all()
        for row, original in enumerate(([5, 6, 7, 8, 9], [3, 4])):
            history = [int(x) for x in inputs[row, :-1] if x != 0]
            target = int(labels[row, -1])
            cut = original.index(target)
            assert cut >= 1 and history == original[:cut]
            if copy == 0:
                assert target == original[-1]


def test_causal_objective_targets_are_next_items():
    windows = right_aligned([[1, 2, 3, 4]], 5)
    ((inputs, labels, _, causal, *_),) = next(
        CausalObjective().batches(windows, 8, torch.Generator())
    )
    assert inputs.tolist() == [[0, 1, 2, 3]]
    assert causal is True
    assert labels.tolist() == [[IGNORE, 2, 3, 4]]


def test_windows_cover_every_event_once():
    windows = training_windows([list(range(1, 10)), [20, 21]], 4)
    flat = sorted(int(x) for x in windows.flatten() if x != 0)
    assert flat == list(range(2, 10)) + [
        20,
        21,
    ]  # the leftover single item 1 is dropped


def test_eval_set_excludes_the_full_context():
    import pandas as pd

    targets = pd.DataFrame(
        {"user_id": [0, 1], "context": [[1, 2, 3, 4, 5], [6]], "target_item": [9, 8]}
    )
    data = eval_set(targets, length=3)
    assert data.contexts.tolist() == [[3, 4, 5], [0, 0, 6]]
    rows, items = data.batch_seen(0, 2)
    assert list(zip(rows.tolist(), items.tolist(), strict=True)) == [
        (0, 1),
        (0, 2),
        (0, 3),
        (0, 4),
        (0, 5),
        (1, 6),
    ]
    rows, items = data.batch_seen(1, 2)
    assert rows.tolist() == [0] and items.tolist() == [6]


def test_causal_objective_can_mix_in_a_bidirectional_cloze_loss():
    windows = right_aligned([[1, 2, 3, 4, 5, 6]], 7)
    causal_part, cloze_part = next(
        CausalObjective(cloze_weight=0.5, mask_prob=0.5, mask_id=99).batches(
            windows, 8, torch.Generator().manual_seed(0)
        )
    )
    assert causal_part.causal is True and cloze_part.causal is False
    assert cloze_part.weight == 0.5
    masked = cloze_part.labels != IGNORE
    assert masked.any()
    assert (cloze_part.inputs[masked] == 99).all()
    assert cloze_part.labels[masked].tolist() == windows[:, 1:][masked].tolist()


def test_glibc_is_asked_to_keep_freed_memory_where_it_is_the_allocator():
    import platform

    from maskrec.training.loop import keep_freed_memory

    assert keep_freed_memory() is (platform.libc_ver()[0] == "glibc")
