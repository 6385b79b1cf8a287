"""Turning the split tables into the tensors the loop consumes, once, up front."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from maskrec.models.rating_tokens import RATING_CODES, rated_tokens
from maskrec.params import RATING_FOLDS


def sequence_table(events: pd.DataFrame, ratings: bool = False) -> pd.DataFrame:
    """Events (user_id, item_id, timestamp; time order within a user) as one row per user:
    user_id, item_ids, timestamps — the layout of `train_sequences`; with `ratings`, also
    `rating_codes` (`rated_tokens`: each event's item and rating in one integer)."""
    # A stable sort by user keeps each user's time order; each cell is a numpy array (as
    # a Parquet round trip gives back), not a list of Python ints, which at 32M ratings
    # took GBs.
    ordered = events.sort_values("user_id", kind="stable")
    users, starts = np.unique(ordered["user_id"].to_numpy(), return_index=True)
    cut = starts[1:] if len(users) else []
    columns = {
        "user_id": users,
        "item_ids": np.split(ordered["item_id"].to_numpy(dtype=np.int64), cut)[
            : len(users)
        ],
        "timestamps": np.split(ordered["timestamp"].to_numpy(dtype=np.int64), cut)[
            : len(users)
        ],
    }
    if ratings:
        tokens = rated_tokens(
            ordered["item_id"].to_numpy(), ordered["rating"].to_numpy()
        )
        columns["rating_codes"] = np.split(tokens, cut)[: len(users)]
    return pd.DataFrame(columns)


def events_from_end(user_ids: np.ndarray) -> np.ndarray:
    """Each event's place counted back from its user's last event (0 = the last), for
    events grouped by user in time order: the one rule behind every leave-one-out hold-out
    (the ranking split, the next-rating protocol, the transfer source's held-out items)."""
    user_ids = np.asarray(user_ids)
    if not len(user_ids):
        return np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, user_ids[1:] != user_ids[:-1]])
    ends = np.r_[starts[1:], len(user_ids)]
    last = np.repeat(ends - 1, ends - starts)
    return last - np.arange(len(user_ids))


def next_rating_parts(user_ids: np.ndarray) -> np.ndarray:
    """The next-rating protocol's part of each rating, for ratings grouped by user in time
    order: a user's last rating is `test`, the one before it `valid`, the rest `train`
    (rating prediction's `next_in_time` protocol, and what rating tuning reads)."""
    from_end = events_from_end(user_ids)
    return np.where(from_end == 0, "test", np.where(from_end == 1, "valid", "train"))


def random_rating_folds(count: int, seed: int) -> np.ndarray:
    """Each of `count` ratings' random fold (0..RATING_FOLDS-1), a seeded partition into
    near-equal parts: the rating pipeline's folds, and the fold a rating study tunes on."""
    fold = np.empty(count, dtype=np.int64)
    fold[np.random.default_rng(seed).permutation(count)] = (
        np.arange(count) % RATING_FOLDS
    )
    return fold


def random_validation_mask(count: int, seed: int, fraction: float) -> np.ndarray:
    """Which of a random fold's `count` training ratings are held out to stop on (a
    seeded `fraction`): the same draw for the rating pipeline and a study of that fold."""
    return np.random.default_rng(seed + 1).random(count) < fraction


def rater_input(
    fitted: pd.DataFrame, held: pd.DataFrame, length: int
) -> tuple[pd.DataFrame, pd.DataFrame, RatingSet, dict]:
    """What a rating model trains and stops on, from the ratings it fits and those held
    out to stop on (user_id, item_id, rating, timestamp): the fitted ratings as rated
    sequences; Cloze pretraining's next-item validation (each user's latest held-out
    rating, as the item after the user's fitted items before it); the held-out ratings as
    questions; and the fitted ratings' mean and range, where a rating head starts."""
    scale = {"mean": float(fitted["rating"].mean()), "range": (float(fitted["rating"].min()), float(fitted["rating"].max()))}  # fmt: skip
    return sequence_table(fitted, ratings=True), next_item_targets(fitted, held), rating_set(fitted, held, length), scale  # fmt: skip


def next_item_targets(fitted: pd.DataFrame, held: pd.DataFrame) -> pd.DataFrame:
    """Pretraining's validation (user_id, context, target_item) on rated data: each user's
    latest held-out rating as the item after the user's fitted items before it in time."""
    latest = held.groupby("user_id", sort=True).tail(1).set_index("user_id")
    mine = fitted[fitted["user_id"].isin(latest.index)]
    before = mine[mine["timestamp"].to_numpy() <= latest.loc[mine["user_id"], "timestamp"].to_numpy()]  # fmt: skip
    contexts = before.groupby("user_id", sort=True)["item_id"].agg(lambda x: x.to_numpy())  # fmt: skip
    return pd.DataFrame({"user_id": contexts.index, "context": contexts.to_numpy(),
                         "target_item": latest.loc[contexts.index, "item_id"].to_numpy()})  # fmt: skip


def right_aligned(sequences: Sequence[Sequence[int]], length: int) -> torch.Tensor:
    """Pack sequences into a (len(sequences), length) LongTensor, keeping the last `length`
    items of each and left-padding with 0."""
    out = np.zeros((len(sequences), length), dtype=np.int64)
    for row, seq in enumerate(sequences):
        tail = np.asarray(seq[-length:], dtype=np.int64)
        if tail.size:
            out[row, length - tail.size :] = tail
    return torch.from_numpy(out)


def training_windows(sequences: Sequence[Sequence[int]], length: int) -> torch.Tensor:
    """Cut every sequence into non-overlapping windows of `length`, from its end backwards,
    so that each training event is in exactly one window (and a target once per epoch).
    A leftover single item is dropped: with nothing around it, it teaches nothing."""
    windows = []
    for sequence in sequences:
        items = list(sequence)
        for end in range(len(items), 1, -length):
            window = items[max(0, end - length) : end]
            if len(window) >= 2:
                windows.append(window)
    return right_aligned(windows, length)


@dataclass
class EvalSet:
    """Contexts to score, the items to exclude from each user's ranking, and (for
    validation and test) each user's target.

    `contexts` is right-aligned to the model's length; `seen_items`/`seen_rows` list every
    item of the user's *full* context (not just the truncated part) as flat index pairs, so
    exclusion is exact whatever max_len is.
    """

    contexts: torch.Tensor  # (U, L)
    seen_rows: torch.Tensor  # (S,)
    seen_items: torch.Tensor  # (S,)
    targets: torch.Tensor | None = None  # (U,)

    def __len__(self) -> int:
        return len(self.contexts)

    def rows(self, start: int, stop: int) -> EvalSet:
        """Users start..stop-1 as an EvalSet of their own (a process's share of validation)."""
        rows, items = self.batch_seen(start, stop)
        targets = None if self.targets is None else self.targets[start:stop]
        return EvalSet(self.contexts[start:stop], rows, items, targets)

    def batch_seen(self, start: int, stop: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(row within batch, item) pairs for users start..stop-1."""
        lo = int(torch.searchsorted(self.seen_rows, start))
        hi = int(torch.searchsorted(self.seen_rows, stop))
        return self.seen_rows[lo:hi] - start, self.seen_items[lo:hi]


def history_set(histories: Sequence[Sequence[int]], length: int) -> EvalSet:
    """Contexts (item ids, oldest first) to score, with nothing to rank against."""
    contexts = [list(c) for c in histories]
    lengths = np.fromiter(
        (len(c) for c in contexts), dtype=np.int64, count=len(contexts)
    )
    flat = (
        np.concatenate([np.asarray(c, dtype=np.int64) for c in contexts])
        if contexts
        else np.zeros(0, np.int64)
    )
    return EvalSet(
        contexts=right_aligned(contexts, length),
        seen_rows=torch.from_numpy(
            np.repeat(np.arange(len(contexts), dtype=np.int64), lengths)
        ),
        seen_items=torch.from_numpy(flat),
    )


def eval_set(targets: pd.DataFrame, length: int) -> EvalSet:
    """Contexts and targets from a (user_id, context, target_item) table."""
    data = history_set(targets["context"].tolist(), length)
    data.targets = torch.from_numpy(
        targets["target_item"].to_numpy(dtype=np.int64, copy=True)
    )
    return data


@dataclass
class RatingSet:
    """Rating questions: each row a window of a user's rated events (`rated_tokens`,
    right-aligned) holding the question's item at column `positions` with its rating
    hidden (bucket 0), and the true `targets` (stars) where known.

    The validation set of rating training, the test set of the rating protocols and the
    predicted rating of inference are all RatingSets, scored by `evaluation.rate`.
    """

    contexts: torch.Tensor  # (M, L)
    positions: torch.Tensor  # (M,)
    targets: torch.Tensor  # (M,) float; NaN where unknown

    def __len__(self) -> int:
        return len(self.contexts)

    def rows(self, start: int, stop: int) -> RatingSet:
        """Questions start..stop-1 (a process's share of validation)."""
        return RatingSet(self.contexts[start:stop], self.positions[start:stop], self.targets[start:stop])  # fmt: skip


def rating_set(
    history: pd.DataFrame, questions: pd.DataFrame, length: int
) -> RatingSet:
    """Each question (user_id, item_id, timestamp[, rating]) as a window of `length`
    around the question's place in time among the user's rated `history` (user_id,
    item_id, rating, timestamp; time order within a user), the question in it with its
    rating hidden. A user without history gets the question alone.

    The window is the history around the question (half before, half after where both
    exist), as Cloze-style rating training sees it; a question after all of a user's
    history (the next rating in time) ends its window.
    """
    ordered = history.sort_values("user_id", kind="stable")
    users, starts, counts = np.unique(ordered["user_id"].to_numpy(), return_index=True, return_counts=True)  # fmt: skip
    # the history's tokens, plus a padding token at the end for columns before a sequence
    tokens = np.append(rated_tokens(ordered["item_id"].to_numpy(), ordered["rating"].to_numpy()), 0)  # fmt: skip
    times = ordered["timestamp"].to_numpy(dtype=np.int64)
    # each question's user; a user without history has none (start 0, count 0)
    asked_users = questions["user_id"].to_numpy()
    found = np.searchsorted(users, asked_users).clip(max=max(len(users) - 1, 0))
    known = (users[found] == asked_users) if len(users) else np.zeros(len(questions), bool)  # fmt: skip
    start = np.where(known, np.append(starts, 0)[found], 0)
    count = np.where(known, np.append(counts, 0)[found], 0)
    # how many of the user's events come at or before the question: one sorted key per
    # event, (user, time), searched for every question at once
    cut = np.zeros(len(questions), dtype=np.int64)
    if len(times):
        low, span = times.min() - 1, int(times.max() - times.min()) + 3
        keys = np.repeat(np.arange(len(users)), counts) * span + (times - low)
        asked = questions["timestamp"].to_numpy(dtype=np.int64).clip(low, low + span - 1)  # fmt: skip
        cut = np.where(known, np.searchsorted(keys, found * span + (asked - low), side="right") - start, 0)  # fmt: skip
    # the window: the question plus its history, at most `length`, centred where it can be
    width = np.minimum(count + 1, length)
    first = np.minimum(np.maximum(0, cut - length // 2), np.maximum(0, count + 1 - length))  # fmt: skip
    contexts = np.zeros((len(questions), length), dtype=np.int64)
    items = questions["item_id"].to_numpy(dtype=np.int64)
    column = np.arange(length)
    for rows in np.array_split(np.arange(len(questions)), max(1, len(questions) // 8192)):  # fmt: skip
        # each column's place in the sequence with the question inserted at `cut`
        place = (first - length + width)[rows, None] + column
        here = cut[rows, None]
        event = np.where(place >= 0, start[rows, None] + place - (place > here), len(tokens) - 1)  # fmt: skip
        contexts[rows] = np.where(place == here, items[rows, None] * RATING_CODES, tokens[event])  # fmt: skip
    positions = length - width + cut - first
    targets = (
        questions["rating"].to_numpy(dtype=np.float32)
        if "rating" in questions
        else np.full(len(questions), np.nan, dtype=np.float32)
    )
    return RatingSet(torch.from_numpy(contexts), torch.from_numpy(positions), torch.from_numpy(targets.copy()))  # fmt: skip
