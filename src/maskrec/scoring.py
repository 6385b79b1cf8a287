"""The one scoring path: validation during training, test evaluation and inference all
score through `scored_batches`, so seen-item exclusion, the tie rule and batching cannot
drift between them or between model families.

Sequence models and baselines differ only in how a batch of contexts becomes a
(batch, N + 1) score matrix (column 0 is padding and is never recommended).

Predicted ratings have their one path too, `rate`, behind rating validation, the rating
protocols' tests and inference's predicted rating.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from maskrec.devices import autocast
from maskrec.model_input import EvalSet, RatingSet, history_set
from maskrec.models.baselines import Baseline
from maskrec.models.new_items import NewItems
from maskrec.models.sequence import SequenceRecModel
from maskrec.progress import Progress

logger = logging.getLogger(__name__)


@dataclass
class WithNewFilms:
    """`model`'s ranking with the films without training events mixed in from their
    content (`NewItems.mix`), its own scores softened or sharpened by `temperature` (chosen
    on validation by `fit_temperature`); those of them the model met in other data (a
    transfer model's source) ordered by the model."""

    model: SequenceRecModel | Baseline
    new_items: NewItems
    temperature: float = 1.0

    @property
    def known(self) -> torch.Tensor | None:
        """The films the model trained on, in any data (None: not recorded, a baseline)."""
        return self.model.known_items() if isinstance(self.model, SequenceRecModel) else None  # fmt: skip

    @property
    def context_length(self) -> int:
        """How much of each history the mixture reads (the model may read more)."""
        config = self.new_items.config
        return max(config["recent"], config["profile"])


Model = SequenceRecModel | Baseline | WithNewFilms


def exclude_seen(
    scores: torch.Tensor, seen_rows: torch.Tensor, seen_items: torch.Tensor
) -> torch.Tensor:
    """Score -inf for every item in a user's context and for padding (column 0), in place."""
    scores[seen_rows, seen_items] = -torch.inf
    scores[:, 0] = -torch.inf
    return scores


def target_ranks(
    scores: torch.Tensor,
    targets: torch.Tensor,
    seen_rows: torch.Tensor,
    seen_items: torch.Tensor,
) -> torch.Tensor:
    """0-based ranks of `targets` in `scores` (B, N + 1) with seen items excluded: the
    number of items scored strictly higher (ties go to the target, as RecBole counts).

    The target itself is never excluded, even if it occurs in the context (possible with
    repeated consumption), so every user keeps a well-defined rank.
    """
    target_scores = scores.gather(1, targets[:, None])
    masked = exclude_seen(scores.clone(), seen_rows, seen_items)
    masked.scatter_(1, targets[:, None], target_scores)
    return (masked > target_scores).sum(dim=1)


def ranks_among(
    scores: torch.Tensor,
    targets: torch.Tensor,
    seen_rows: torch.Tensor,
    seen_items: torch.Tensor,
    among: torch.Tensor,
) -> torch.Tensor:
    """0-based ranks of `targets` among the unseen items where `among` (a bool per id
    0..N) is true. Ties count against the target here: a model that scores every such
    item alike (an id-only model on films it never trained on) must not get each of
    them ranked first by the tie rule `target_ranks` follows."""
    target_scores = scores.gather(1, targets[:, None])
    masked = exclude_seen(scores.masked_fill(~among, -torch.inf), seen_rows, seen_items)
    masked.scatter_(1, targets[:, None], -torch.inf)  # the target does not count itself
    return (masked >= target_scores).sum(dim=1)


@torch.no_grad()
def scored_batches(
    model: Model,
    data: EvalSet,
    batch_size: int,
    device: torch.device | None = None,
    bf16: bool = False,
) -> Iterator[tuple[slice, torch.Tensor, torch.Tensor, torch.Tensor]]:
    """(users, scores (B, N + 1) as float, seen rows, seen items) per batch of users, all on
    `device` (default: the CPU). A sequence model must already be on `device`."""
    device = device or torch.device("cpu")
    if isinstance(model, WithNewFilms):
        for users, scores, rows, items in scored_batches(model.model, data, batch_size, device, bf16):  # fmt: skip
            seen = exclude_seen(torch.zeros_like(scores), rows, items).isinf()
            mixed = model.new_items.mix(scores, data.contexts[users], model.temperature, seen, model.known)  # fmt: skip
            yield users, mixed, rows, items
        return
    if isinstance(model, SequenceRecModel):
        model.eval()
    for start in range(0, len(data), batch_size):
        stop = min(start + batch_size, len(data))
        rows, items = data.batch_seen(start, stop)
        if isinstance(model, SequenceRecModel):
            contexts = data.contexts[start:stop, -model.config.max_len :].to(device)
            with autocast(device, bf16):
                scores = model.score_next(contexts)
        else:
            scores = model.score(rows, items, stop - start)
        yield slice(start, stop), scores.float().to(device), rows.to(device), items.to(device)  # fmt: skip


def context_length(model: Model) -> int:
    """How much of each history `model` reads (a baseline: the items, in any order)."""
    if isinstance(model, WithNewFilms):
        return max(context_length(model.model), model.context_length)
    return model.config.max_len if isinstance(model, SequenceRecModel) else 1


TEMPERATURES = np.exp(np.linspace(np.log(0.25), np.log(4.0), 33))


def fit_temperature(
    model: SequenceRecModel | Baseline,
    data: EvalSet,
    batch_size: int,
    trained: torch.Tensor,
    device: torch.device | None = None,
    bf16: bool = False,
) -> float:
    """The temperature (of `TEMPERATURES`) at which `model`'s softmax over the `trained`
    films (a bool per id 0..N) gives `data`'s targets the highest mean log-likelihood:
    validation, so that `WithNewFilms` mixes a calibrated probability. The softmax runs
    over the films the protocol ranks (a user's seen films excluded, the target kept);
    targets that are not `trained` films are left out."""
    temperatures = torch.tensor(TEMPERATURES, dtype=torch.float32)
    total, count = torch.zeros(len(temperatures)), 0
    for users, scores, seen_rows, seen_items in scored_batches(model, data, batch_size, device, bf16):  # fmt: skip
        keep = trained.to(scores.device)
        targets = data.targets[users].to(scores.device)
        rows = keep[targets]
        if not rows.any():
            continue
        target_scores = scores.gather(1, targets[:, None])
        masked = exclude_seen(
            scores.masked_fill(~keep, -torch.inf), seen_rows, seen_items
        )
        masked = masked.scatter(1, targets[:, None], target_scores)[
            rows
        ]  # the protocol's candidates
        for i, t in enumerate(temperatures.tolist()):
            log_p = torch.log_softmax(masked / t, dim=-1).gather(
                1, targets[rows][:, None]
            )
            total[i] += log_p.sum().cpu()
        count += int(rows.sum())
    return float(temperatures[int(total.argmax())]) if count else 1.0


@dataclass
class Ranking:
    """What one scoring pass over users gives: target ranks with seen items excluded (the
    protocol), ranks with them included (RecBole's way for sequence models), and each
    user's top-k unseen items."""

    ranks: np.ndarray
    ranks_seen_included: np.ndarray
    top_items: np.ndarray
    ranks_among: np.ndarray | None = None  # ranks among the `among` items only


def rank(
    model: Model,
    data: EvalSet,
    batch_size: int,
    top_k: int = 0,
    device: torch.device | None = None,
    bf16: bool = False,
    among: torch.Tensor | None = None,
) -> Ranking:
    """Rank every user's target over the full catalogue (and list the top-k unseen items
    when `top_k` > 0); with `among` (a bool per id 0..N), also among those items only
    (`ranks_among`; meaningful for targets among those items)."""
    ranks, included, top, within = [], [], [], []
    none = torch.zeros(0, dtype=torch.long)
    progress = Progress(logger, f"scoring {type(model).__name__}", len(data), "users")
    for users, scores, rows, items in scored_batches(model, data, batch_size, device, bf16):  # fmt: skip
        progress.update(users.stop - users.start)
        targets = data.targets[users].to(scores.device)
        ranks.append(target_ranks(scores, targets, rows, items).cpu())
        included.append(target_ranks(scores, targets, none.to(scores.device), none.to(scores.device)).cpu())  # fmt: skip
        if among is not None:
            within.append(ranks_among(scores, targets, rows, items, among.to(scores.device)).cpu())  # fmt: skip
        if top_k:
            top.append(exclude_seen(scores, rows, items).topk(top_k, dim=1).indices.cpu())  # fmt: skip
    progress.close()
    empty = np.zeros(0, dtype=np.int64)
    return Ranking(
        torch.cat(ranks).numpy() if ranks else empty,
        torch.cat(included).numpy() if included else empty,
        torch.cat(top).numpy() if top else np.zeros((0, top_k), dtype=np.int64),
        (torch.cat(within).numpy() if within else empty) if among is not None else None,
    )


def recommend(
    model: Model, histories: list[list[int]], top_k: int, batch_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k unseen items and their scores for each history (model item ids, oldest first);
    where a history leaves fewer than k unseen, the rest are seen items scored -inf."""
    length = context_length(model)
    items, scores = [], []
    for _, batch, rows, seen in scored_batches(model, history_set(histories, length), batch_size):  # fmt: skip
        best = exclude_seen(batch, rows, seen).topk(
            min(top_k, batch.shape[1] - 1), dim=1
        )
        items.append(best.indices)
        scores.append(best.values)
    if not items:
        return np.zeros((0, top_k), dtype=np.int64), np.zeros((0, top_k))
    return torch.cat(items).numpy(), torch.cat(scores).numpy()


@torch.no_grad()
def rate(
    model: SequenceRecModel,
    data: RatingSet,
    batch_size: int,
    device: torch.device | None = None,
    bf16: bool = False,
) -> np.ndarray:
    """Predicted stars of every rating question (validation, the rating protocols' tests
    and inference alike), in order. A model must already be on `device`."""
    device = device or torch.device("cpu")
    model.eval()
    predicted = []
    for start in range(0, len(data), batch_size):
        batch = data.rows(start, start + batch_size)
        with autocast(device, bf16):
            predicted.append(model.rate(batch.contexts.to(device), batch.positions.to(device)).cpu())  # fmt: skip
    return torch.cat(predicted).numpy() if predicted else np.zeros(0, dtype=np.float32)
