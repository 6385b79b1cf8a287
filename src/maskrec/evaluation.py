"""One evaluation path for every model: full-catalogue scoring in batches, seen items
excluded, ranks and top-k lists out. Sequence models and baselines differ only in how a
batch of contexts becomes a (batch, N + 1) score matrix."""

from __future__ import annotations

import numpy as np
import torch

from maskrec.metrics import target_ranks
from maskrec.models.baselines import Baseline
from maskrec.models.sequence import SequenceRecModel
from maskrec.training.data import EvalSet


def batch_scores(
    model: SequenceRecModel | Baseline, data: EvalSet, start: int, stop: int
) -> torch.Tensor:
    rows, items = data.batch_seen(start, stop)
    if isinstance(model, SequenceRecModel):
        length = model.config.max_len
        return model.score_next(data.contexts[start:stop, -length:]).float()
    return model.score(rows, items, stop - start)


@torch.no_grad()
def rank_and_recommend(
    model: SequenceRecModel | Baseline,
    data: EvalSet,
    batch_size: int = 512,
    top_k: int = 20,
    exclude_seen: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """0-based target ranks and each user's top-k recommended items (seen items excluded
    unless `exclude_seen` is False, the way RecBole measures sequential models)."""
    if isinstance(model, SequenceRecModel):
        model.eval()
    ranks, recommended = [], []
    empty = torch.zeros(0, dtype=torch.long)
    for start in range(0, len(data), batch_size):
        stop = min(start + batch_size, len(data))
        scores = batch_scores(model, data, start, stop)
        rows, items = data.batch_seen(start, stop) if exclude_seen else (empty, empty)
        targets = data.targets[start:stop]
        ranks.append(target_ranks(scores, targets, rows, items))
        masked = scores.clone()
        masked[rows, items] = -torch.inf
        masked[:, 0] = -torch.inf
        recommended.append(masked.topk(top_k, dim=1).indices)
    return torch.cat(ranks).numpy(), torch.cat(recommended).numpy()


@torch.no_grad()
def recommend(
    model: SequenceRecModel | Baseline,
    histories: list[list[int]],
    top_k: int,
    batch_size: int = 512,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k unseen items and their scores for each history (model item ids)."""
    import pandas as pd

    from maskrec.training.data import eval_set

    length = model.config.max_len if isinstance(model, SequenceRecModel) else 1
    data = eval_set(
        pd.DataFrame(
            {"user_id": range(len(histories)), "context": histories, "target_item": 1}
        ),
        length,
    )
    items, scores = [], []
    for start in range(0, len(data), batch_size):
        stop = min(start + batch_size, len(data))
        batch = batch_scores(model, data, start, stop)
        rows, seen = data.batch_seen(start, stop)
        batch[rows, seen] = -torch.inf
        batch[:, 0] = -torch.inf
        best = batch.topk(top_k, dim=1)
        items.append(best.indices)
        scores.append(best.values)
    return torch.cat(items).numpy(), torch.cat(scores).numpy()
