"""Splitting: one node, five strategies (four of our own and targets given by another
tool), an optional cold-start user hold-out and an optional new-item hold-out.

Outputs (every list is in time order, ties broken by the order of `interactions`, which
`data_processing` sorts stably by (user, timestamp)):
- train_sequences: user_id, item_ids, timestamps: all a training step may ever see;
- valid_targets:   user_id, context, target_item: for early stopping and tuning;
- test_targets:    user_id, context, target_item, is_cold, is_cold_item: read once, by
                   evaluation; with `future_window`, also target_items: every item the
                   user consumed after the test cut that the context does not hold;
- cold_users:      user_id of users held out of training and validation entirely;
- cold_items:      item_id of the newest items, held out of training entirely.

Leakage rule: a validation or test target event is never part of `train_sequences`.
A cold user's test context is their whole history before the target; none of it is trained on.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from maskrec.catalogue import id_texts
from maskrec.model_input import events_from_end, sequence_table
from maskrec.params import SplitParams

logger = logging.getLogger(__name__)

TARGET_COLUMNS = ["user_id", "context", "target_item"]


def _order(interactions: pd.DataFrame) -> pd.DataFrame:
    """Sort by (user, time), ties in incoming order; add position and length per user."""
    frame = interactions.sort_values(
        ["user_id", "timestamp"], kind="stable"
    ).reset_index(drop=True)
    frame["position"] = frame.groupby("user_id").cumcount()
    frame["length"] = frame.groupby("user_id")["item_id"].transform("size")
    return frame


def _choose_cold_users(frame: pd.DataFrame, params: SplitParams) -> np.ndarray:
    """A seeded fraction of the users that have at least 2 interactions (context + target)."""
    eligible = np.sort(frame.loc[frame["length"] >= 2, "user_id"].unique())
    count = int(round(params.cold_user_fraction * len(eligible)))
    if count == 0:
        return np.empty(0, dtype=np.int64)
    rng = np.random.default_rng(params.seed)
    return np.sort(rng.choice(eligible, size=count, replace=False)).astype(np.int64)


def _targets_with_context(
    frame: pd.DataFrame,
    targets: pd.DataFrame,
    context_rows: pd.Series,
    only_before: bool,
) -> pd.DataFrame:
    """For each target row, the context is the user's rows selected by `context_rows`, in
    time order; with `only_before`, only those earlier than the target itself."""
    if targets.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in TARGET_COLUMNS})
    # `frame` is in (user, time) order (`_order`), so each user's context rows are one
    # run of the selected rows; a target's context is that run, cut at the target's
    # position with `only_before`. Found by binary search: no per-user Python groups.
    context = frame[context_rows]
    users = context["user_id"].to_numpy()
    items = context["item_id"].to_numpy()
    target_users = targets["user_id"].to_numpy()
    starts = np.searchsorted(users, target_users, side="left")
    if only_before:
        span = int(frame["position"].max()) + 1
        keys = users.astype(np.int64) * span + context["position"].to_numpy()
        target_keys = target_users.astype(np.int64) * span + targets["position"].to_numpy()  # fmt: skip
        ends = np.searchsorted(keys, target_keys, side="left")
    else:
        ends = np.searchsorted(users, target_users, side="right")
    # numpy views of one array, not lists of Python ints: at 32M ratings the lists took
    # GBs; each context is the same int64 array a Parquet round trip gives back
    contexts = [items[a:b] for a, b in zip(starts, ends, strict=True)]
    out = pd.DataFrame(
        {
            "user_id": targets["user_id"].to_numpy(),
            "context": contexts,
            "target_item": targets["item_id"].to_numpy(),
        }
    )
    return out[out["context"].map(len) > 0].reset_index(drop=True)


def _leave_one_out(frame: pd.DataFrame, cold: pd.Series):
    warm_ok = ~cold & (frame["length"] >= 3)
    from_end = events_from_end(frame["user_id"].to_numpy())
    last, second = from_end == 0, from_end == 1
    valid_rows = warm_ok & second
    test_rows = (warm_ok | (cold & (frame["length"] >= 2))) & last
    train_rows = ~cold & ~valid_rows & ~test_rows
    return train_rows, valid_rows, test_rows


def _cuts(frame: pd.DataFrame, params: SplitParams) -> np.ndarray:
    """The global validation and test cut times: quantiles of every event's time."""
    return np.quantile(
        frame["timestamp"],
        [params.temporal_valid_quantile, params.temporal_test_quantile],
    )


def _temporal(frame: pd.DataFrame, cold: pd.Series, params: SplitParams):
    """Global cuts in time: training before the validation cut; each user's first event
    in the validation period, and their first after the test cut, as targets (the
    future-window protocol adds the rest of that window to the test row, `_with_window`)."""
    t_valid, t_test = _cuts(frame, params)
    before_valid = frame["timestamp"] < t_valid
    in_valid = (frame["timestamp"] >= t_valid) & (frame["timestamp"] < t_test)
    in_test = frame["timestamp"] >= t_test

    def first_in(mask: pd.Series) -> pd.Series:
        """Each user's earliest row inside `mask`."""
        first = frame["position"].where(mask).groupby(frame["user_id"]).transform("min")
        return mask & (frame["position"] == first)

    train_rows = ~cold & before_valid
    valid_rows = ~cold & first_in(in_valid)
    test_rows = first_in(in_test)
    return train_rows, valid_rows, test_rows


def _with_window(frame: pd.DataFrame, window: pd.Series, test: pd.DataFrame) -> pd.DataFrame:  # fmt: skip
    """Each test row with `target_items`: every item of the user's events after the test
    cut (the first is `target_item`), in time order, without those the context holds (a
    model never recommends what the user has seen: seen items are excluded)."""
    after = frame[window].groupby("user_id", sort=False)["item_id"].agg(lambda s: s.to_numpy())  # fmt: skip
    items = []
    for user, context in zip(test["user_id"], test["context"], strict=True):
        future = after[user]
        items.append(future[~np.isin(future, context)].astype(np.int64))
    return test.assign(target_items=items)


def _random(frame: pd.DataFrame, cold: pd.Series, params: SplitParams):
    rng = np.random.default_rng(params.seed)
    shuffled_rank = (
        pd.Series(rng.random(len(frame)), index=frame.index)
        .groupby(frame["user_id"])
        .rank(method="first")
        - 1
    )
    eligible = ~cold & (frame["length"] >= 3)
    n_test = np.maximum(1, np.floor(frame["length"] * params.random_test_ratio)).astype(
        int
    )
    n_valid = np.maximum(
        1, np.floor(frame["length"] * params.random_valid_ratio)
    ).astype(int)
    # Keep at least one training item per user.
    n_valid = np.minimum(n_valid, frame["length"] - n_test - 1)
    test_rows = eligible & (shuffled_rank < n_test)
    valid_rows = eligible & ~test_rows & (shuffled_rank < n_test + n_valid)
    cold_test = (
        cold & (frame["length"] >= 2) & (frame["position"] == frame["length"] - 1)
    )
    test_rows = test_rows | cold_test
    train_rows = ~cold & ~valid_rows & ~test_rows
    return train_rows, valid_rows, test_rows


def split_interactions(
    interactions: pd.DataFrame,
    user_map: pd.DataFrame,
    item_map: pd.DataFrame,
    given_split_targets: pd.DataFrame,
    params: SplitParams,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Split clean interactions into training sequences and evaluation targets, by the
    strategy `params` names (`given`: the targets another tool chose, in original ids),
    then hold the newest items out of training if `cold_item_fraction` asks."""
    if params.strategy == "given":
        if given_split_targets.empty:
            raise ValueError(
                "data_split.strategy=given needs the targets: --params split_targets=<csv "
                "with user_id, valid_item, test_item>"
            )
        train, valid, test = split_with_given_targets(
            interactions, given_split_targets, user_map, item_map
        )
        cold_users = pd.DataFrame({"user_id": pd.Series(dtype="int64")})
    else:
        train, valid, test, cold_users = _own_split(interactions, params)
    if test.empty:  # before any training: nothing could be evaluated
        hint = (" The time cuts are global: a log whose users are each active for a short burst (the "
                "generated sample is one) leaves few users on both sides; lower data_split.temporal_valid_quantile "
                f"({params.temporal_valid_quantile}) and temporal_test_quantile ({params.temporal_test_quantile}) "
                "or use leave_one_out." if params.strategy in ("temporal", "future_window") else "")  # fmt: skip
        raise ValueError(f"data_split.strategy={params.strategy} left no test target: no user has both a context and a later event.{hint}")  # fmt: skip
    train, valid, test, cold_items = hold_out_new_items(
        interactions, train, valid, test, params.cold_item_fraction
    )
    return train, valid, test, cold_users, cold_items


def hold_out_new_items(
    interactions: pd.DataFrame,
    train: pd.DataFrame,
    valid: pd.DataFrame,
    test: pd.DataFrame,
    fraction: float,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The newest `fraction` of items by first rating (ties: the higher item id is
    newer) taken out of training entirely: their events leave the training sequences,
    validation rows that target one are dropped, and test rows that do are flagged
    `is_cold_item`. Contexts keep them: a user may have watched a new film before the
    target, and a model that reads items by their content can use it."""
    first = (
        interactions.groupby("item_id")["timestamp"].min().sort_values(kind="stable")
    )
    count = int(round(fraction * len(first)))
    cold = np.sort(first.index[len(first) - count :].to_numpy()) if count else np.zeros(0, np.int64)  # fmt: skip
    if count:
        events = train.explode(["item_ids", "timestamps"])
        events = events[~events["item_ids"].isin(cold)]
        grouped = events.groupby("user_id", sort=True)
        train = pd.DataFrame(
            {"item_ids": grouped["item_ids"].agg(lambda s: [int(v) for v in s]),
             "timestamps": grouped["timestamps"].agg(lambda s: [int(v) for v in s])}
        ).reset_index()  # fmt: skip
        valid = valid[~valid["target_item"].isin(cold) & valid["user_id"].isin(train["user_id"])]  # fmt: skip
        logger.info("%d newest items (%.0f%%) held out of training", count, 100 * fraction)  # fmt: skip
    test = test.assign(is_cold_item=test["target_item"].isin(cold))
    return train, valid.reset_index(drop=True), test, pd.DataFrame({"item_id": cold.astype("int64")})  # fmt: skip


def _own_split(
    interactions: pd.DataFrame, params: SplitParams
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Leave-one-out, temporal or random, with the cold-start user hold-out."""
    frame = _order(interactions)
    cold_ids = _choose_cold_users(frame, params)
    cold = frame["user_id"].isin(cold_ids)

    if params.strategy == "leave_one_out":
        train_rows, valid_rows, test_rows = _leave_one_out(frame, cold)
    elif params.strategy in ("temporal", "future_window"):
        train_rows, valid_rows, test_rows = _temporal(frame, cold, params)
    else:
        train_rows, valid_rows, test_rows = _random(frame, cold, params)

    window = frame["timestamp"] >= _cuts(frame, params)[1] if params.strategy == "future_window" else None  # fmt: skip
    train = frame[train_rows]
    # Validation sees only training rows as context; test sees every other non-test row
    # (for cold users, their whole earlier history). Sequential strategies keep only what
    # came before the target; the random split uses the whole remaining profile.
    only_before = params.strategy != "random"
    valid = _targets_with_context(frame, frame[valid_rows], train_rows, only_before)
    test = _targets_with_context(frame, frame[test_rows], ~test_rows, only_before)
    test["is_cold"] = test["user_id"].isin(cold_ids)
    if window is not None:
        test = _with_window(frame, window, test)

    train_sequences = sequence_table(train)
    # A user with no training item cannot be a warm validation user.
    valid = valid[valid["user_id"].isin(train_sequences["user_id"])].reset_index(
        drop=True
    )
    warm_test = ~test["is_cold"] & ~test["user_id"].isin(train_sequences["user_id"])
    test = test[~warm_test].reset_index(drop=True)

    logger.info(
        "split %s: %d training sequences (%d events), %d validation and %d test targets, %d cold users",
        params.strategy, len(train_sequences), len(train), len(valid), len(test), len(cold_ids),
    )  # fmt: skip
    return train_sequences, valid, test, pd.DataFrame({"user_id": cold_ids})


def _by_text(original: pd.Series, model: pd.Series) -> dict[str, int]:
    """Original id (as text) -> model id."""
    return dict(zip(id_texts(original), model, strict=True))


def split_with_given_targets(
    interactions: pd.DataFrame,
    targets: pd.DataFrame,
    user_map: pd.DataFrame,
    item_map: pd.DataFrame,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Leave-one-out on exactly the validation and test items another tool used.

    `targets` holds original ids: user_id, valid_item, test_item (as RecBole's
    `recbole_loo_targets.csv`, read by `SplitTargetsDataset`). Training is every other event in time order; the validation
    context is the training sequence, the test context the training sequence plus the
    validation item. Unknown users or items, or targets the user never rated, are errors.
    Ids are compared as text, so integer targets match a log whose ids are text ("17").
    """
    users = _by_text(user_map["original_user_id"], user_map["user_id"])
    items = _by_text(item_map["original_item_id"], item_map["item_id"])
    targets = targets.copy()
    for column in ("user_id", "valid_item", "test_item"):
        if column in targets:
            targets[column] = id_texts(targets[column])
    missing = [
        c for c in ("user_id", "valid_item", "test_item") if c not in targets.columns
    ]
    if missing:
        raise ValueError(
            f"targets: missing column(s) {missing}; expected user_id, valid_item, test_item"
        )
    for column, known in (
        ("user_id", users),
        ("valid_item", items),
        ("test_item", items),
    ):
        unknown = targets.loc[~targets[column].isin(list(known)), column]
        if len(unknown):
            raise ValueError(
                f"targets, row {unknown.index[0] + 2}, column '{column}': id {unknown.iloc[0]} is not in the data"
            )
    mapped = pd.DataFrame({
        "user_id": targets["user_id"].map(users), "valid_item": targets["valid_item"].map(items),
        "test_item": targets["test_item"].map(items),
    })  # fmt: skip
    frame = _order(interactions).merge(mapped, on="user_id", how="inner")
    is_valid = frame["item_id"] == frame["valid_item"]
    is_test = frame["item_id"] == frame["test_item"]
    for name, hits in (("valid_item", is_valid), ("test_item", is_test)):
        found = hits.groupby(frame["user_id"]).sum()
        if (found != 1).any():
            user = found.index[found != 1][0]
            raise ValueError(
                f"targets: user {user_map.loc[user, 'original_user_id']} has no single {name} event in the data"
            )
    train = frame[~is_valid & ~is_test]
    sequences = sequence_table(train)
    context = sequences.set_index("user_id")["item_ids"]
    valid = pd.DataFrame(
        {
            "user_id": mapped["user_id"],
            "context": mapped["user_id"].map(context),
            "target_item": mapped["valid_item"],
        }
    )
    test = pd.DataFrame({
        "user_id": mapped["user_id"], "context": [list(c) + [v] for c, v in zip(mapped["user_id"].map(context), mapped["valid_item"], strict=True)],
        "target_item": mapped["test_item"], "is_cold": False,
    })  # fmt: skip
    return sequences, valid.reset_index(drop=True), test.reset_index(drop=True)
