"""Transfer from a source release: align its items to the target's, turn its users'
histories into sequences of target item ids, and train on them: Cloze pretraining on the
source (early-stopped on the source's own held-out last items), continued on the target's
training sequences (the target's pretraining, from the source weights), then the target's
own fine-tuning; and SASRec on the source and target together (the simple alternative).

Nothing of the target's validation or test targets enters a source sequence: the source
is another release, its users are not the target's, and only target *items* are shared.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from maskrec.alignment import align_items
from maskrec.model_input import events_from_end, sequence_table
from maskrec.params import TransferParams
from maskrec.training.stages import fine_tune, named, pretrain, train_sasrec

pretrain_on_source = named(pretrain, "source_pretrained")
continue_on_target = named(pretrain, "transfer_pretrained")
fine_tune_source_pretrained = named(fine_tune, "transfer")
train_joint_sasrec = named(train_sasrec, "joint_sasrec")


def align_source_items(
    item_features: pd.DataFrame,
    source_item_features: pd.DataFrame,
    params: TransferParams,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Target item id -> source item id for every item the two releases share
    (`alignment.align_items`), and the counts of how they were matched."""
    return align_items(item_features, source_item_features, params.alignment)


def map_source_sequences(
    source_interactions: pd.DataFrame,
    item_alignment: pd.DataFrame,
    train_sequences: pd.DataFrame,
    alignment_counts: dict[str, Any],
    params: TransferParams,
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Each source user's history in target item ids (time order; events on items the
    target does not have are dropped), for users with at least `min_source_events` left,
    split leave-one-out: the last event is the user's validation target (for early stopping
    the source pretraining on the source itself), the rest the training sequence; and the
    alignment report, with how much of each side's activity the shared items hold."""
    to_target = pd.Series(
        item_alignment["item_id"].to_numpy(),
        index=item_alignment["source_item_id"].to_numpy(),
    )
    mapped = source_interactions.assign(item_id=source_interactions["item_id"].map(to_target))  # fmt: skip
    shared = mapped.dropna(subset=["item_id"]).astype({"item_id": "int64"})
    events = shared.groupby("user_id")["item_id"].transform("size").to_numpy()
    kept = shared[
        events >= params.min_source_events
    ]  # in (user, time) order, as cleaned
    held = events_from_end(kept["user_id"].to_numpy()) == 0
    sequences = sequence_table(kept[~held])
    valid = pd.DataFrame({"user_id": sequences["user_id"], "context": sequences["item_ids"],
                          "target_item": kept.loc[held, "item_id"].to_numpy()})  # fmt: skip
    target_events = np.concatenate(train_sequences["item_ids"].to_numpy()) if len(train_sequences) else np.zeros(0)  # fmt: skip
    report = {
        **alignment_counts,
        "source_events": int(len(source_interactions)),
        "source_events_on_shared_items": int(len(shared)),
        "source_users_kept": int(len(sequences)),
        "source_events_kept": int(sequences["item_ids"].map(len).sum() + len(valid)),
        "target_training_events_on_shared_items": float(
            np.isin(target_events, item_alignment["item_id"]).mean()
        )
        if len(target_events)
        else 0.0,  # fmt: skip
    }
    return sequences, valid, report


def join_sequences(
    train_sequences: pd.DataFrame, pretraining_source_sequences: pd.DataFrame
) -> pd.DataFrame:
    """The target's training sequences and the source's, as one table (source users get
    ids after the target's), for SASRec trained on both."""
    offset = int(train_sequences["user_id"].max()) + 1 if len(train_sequences) else 0
    source = pretraining_source_sequences.assign(
        user_id=pretraining_source_sequences["user_id"] + offset
    )
    return pd.concat([train_sequences, source], ignore_index=True)
