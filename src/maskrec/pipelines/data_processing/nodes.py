"""Cleaning nodes: raw MovieLens tables in, clean contiguous-id tables out.

Every node is a pure function of DataFrames and typed parameters. Row order matters: the
primary `interactions` table is sorted by (user, timestamp) with ties kept in file order,
which is the deterministic tie-break every later split relies on.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from maskrec.params import DataProcessingParams

logger = logging.getLogger(__name__)

INTERACTION_COLUMNS = ["user_id", "item_id", "rating", "timestamp"]


def clean_interactions(
    movielens_raw: dict[str, Any], params: DataProcessingParams
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Drop exact duplicates, keep the latest rating of a repeated (user, item), and apply
    the optional positive-feedback threshold. Returns the table and rows dropped per rule."""
    raw = movielens_raw["interactions"][INTERACTION_COLUMNS]
    counts = {"rows_in": len(raw)}

    frame = raw.drop_duplicates()
    counts["dropped_exact_duplicates"] = len(raw) - len(frame)

    # Latest by timestamp; among equal timestamps the later line in the file wins.
    ordered = frame.sort_values("timestamp", kind="stable")
    latest = ordered.drop_duplicates(["user_id", "item_id"], keep="last").sort_index()
    counts["dropped_repeated_user_item"] = len(frame) - len(latest)

    if params.positive_threshold is not None:
        kept = latest[latest["rating"] >= params.positive_threshold]
    else:
        kept = latest
    counts["dropped_below_threshold"] = len(latest) - len(kept)
    return kept.reset_index(drop=True), counts


def filter_k_core(
    interactions: pd.DataFrame, params: DataProcessingParams
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Iteratively drop users and items below their minimum count until nothing changes.

    One pass is not enough: removing a sparse item can push a user below the user minimum,
    and so on; the loop stops at the fixed point where both minimums hold.
    """
    frame = interactions
    rounds = 0
    while True:
        user_counts = frame["user_id"].map(frame["user_id"].value_counts())
        item_counts = frame["item_id"].map(frame["item_id"].value_counts())
        keep = (user_counts >= params.min_user_interactions) & (
            item_counts >= params.min_item_interactions
        )
        if keep.all():
            break
        frame = frame[keep]
        rounds += 1
        logger.info("k-core round %d: %s interactions left", rounds, f"{len(frame):,}")
    if frame.empty:
        raise ValueError(
            "k-core filtering removed every interaction: lower "
            f"data_processing.min_user_interactions ({params.min_user_interactions}) or "
            f"min_item_interactions ({params.min_item_interactions})"
        )
    stats = {"dropped_k_core": len(interactions) - len(frame), "k_core_rounds": rounds}
    return frame.reset_index(drop=True), stats


def remap_ids(
    interactions: pd.DataFrame,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Give users ids 0..U-1 and items ids 1..N (0 is the model's padding id).

    New ids follow the order of the original ids, so the mapping is deterministic. The
    returned interactions are sorted by (user, timestamp), ties in their incoming order.
    """
    users = np.sort(interactions["user_id"].unique())
    items = np.sort(interactions["item_id"].unique())
    user_map = pd.DataFrame(
        {"user_id": np.arange(len(users)), "original_user_id": users}
    )
    item_map = pd.DataFrame(
        {"item_id": np.arange(1, len(items) + 1), "original_item_id": items}
    )

    remapped = pd.DataFrame(
        {
            "user_id": np.searchsorted(users, interactions["user_id"].to_numpy()),
            "item_id": np.searchsorted(items, interactions["item_id"].to_numpy()) + 1,
            "rating": interactions["rating"].to_numpy(),
            "timestamp": interactions["timestamp"].to_numpy(),
        }
    )
    remapped = remapped.sort_values(["user_id", "timestamp"], kind="stable")
    return remapped.reset_index(drop=True), user_map, item_map


def build_item_features(
    movielens_raw: dict[str, Any], item_map: pd.DataFrame
) -> pd.DataFrame:
    """One row per model item id: title, year, genre string and genre multi-hot columns,
    and a log's numeric item features (`feature_<name>`, NaN where unknown).

    Items rated but absent from the movies file keep an empty title and no genres.
    """
    items = movielens_raw["items"]
    merged = item_map.merge(
        items,
        how="left",
        left_on="original_item_id",
        right_on="item_id",
        suffixes=("", "_raw"),
    ).drop(columns="item_id_raw")
    missing = merged["title"].isna().sum()
    if missing:
        logger.warning("%d rated items are missing from the movies file", missing)
    merged["title"] = merged["title"].fillna("")
    merged["genres"] = merged["genres"].fillna("")
    vocabulary = sorted(
        {g for value in merged["genres"] for g in value.split("|") if g}
    )
    multi_hot = pd.DataFrame(
        {
            f"genre_{g}": merged["genres"].str.split("|").map(lambda gs, g=g: g in gs)
            for g in vocabulary
        }
    ).astype("int8")
    columns = ["item_id", "original_item_id", "title", "year", "genres"]
    numeric = [
        c for c in merged.columns if c.startswith("feature_")
    ]  # a log's item table
    return pd.concat([merged[columns], multi_hot, merged[numeric]], axis=1)


def build_data_quality_report(
    movielens_raw: dict[str, Any],
    cleaning_counts: dict[str, int],
    k_core_counts: dict[str, int],
    interactions: pd.DataFrame,
) -> dict[str, Any]:
    """Rows in, rows dropped by each rule, and what remains (users, items, density)."""
    raw = movielens_raw["interactions"]
    users = int(interactions["user_id"].nunique())
    items = int(interactions["item_id"].nunique())
    per_user = interactions.groupby("user_id").size()
    return {
        "source": movielens_raw["source"],
        "read": {
            "rows": int(len(raw)),
            "users": int(raw["user_id"].nunique()),
            "items": int(raw["item_id"].nunique()),
            "items_in_catalogue_file": int(len(movielens_raw["items"])),
        },
        "dropped": {
            "exact_duplicates": cleaning_counts["dropped_exact_duplicates"],
            "repeated_user_item": cleaning_counts["dropped_repeated_user_item"],
            "below_positive_threshold": cleaning_counts["dropped_below_threshold"],
            "k_core": k_core_counts["dropped_k_core"],
        },
        "k_core_rounds": k_core_counts["k_core_rounds"],
        "kept": {
            "rows": int(len(interactions)),
            "users": users,
            "items": items,
            "density": float(len(interactions) / (users * items)),
            "interactions_per_user": {
                "min": int(per_user.min()),
                "median": float(per_user.median()),
                "max": int(per_user.max()),
            },
        },
    }
