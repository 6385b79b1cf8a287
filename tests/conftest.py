"""Shared test setup: no telemetry, and small MovieLens folders in every layout."""

from __future__ import annotations

import os
from pathlib import Path

import kedro.framework.project  # noqa: F401  (configures logging now, not inside a test)
import pandas as pd
import pytest

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")

PROJECT_ROOT = Path(__file__).resolve().parents[1]

# Five ratings: user 1 rates three films, user 2 two; one shared timestamp to test ties.
RATINGS = [
    (1, 10, 4.0, 100),
    (1, 20, 3.5, 200),
    (2, 10, 5.0, 150),
    (1, 30, 1.0, 200),
    (2, 30, 2.0, 300),
]
MOVIES = [
    (10, "Heat (1995)", "Action|Crime"),
    (20, "Up (2009)", "Animation"),
    (30, "No Year", "(no genres listed)"),
]


def write_csv_layout(folder: Path, ratings=RATINGS, movies=MOVIES) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(ratings, columns=["userId", "movieId", "rating", "timestamp"]).to_csv(
        folder / "ratings.csv", index=False
    )
    pd.DataFrame(movies, columns=["movieId", "title", "genres"]).to_csv(
        folder / "movies.csv", index=False
    )
    return folder


def write_ml1m_layout(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ratings.dat").write_text(
        "".join(f"{u}::{i}::{int(r)}::{t}\n" for u, i, r, t in RATINGS)
    )
    lines = [f"{i}::{t}::{g}\n" for i, t, g in MOVIES]
    lines[0] = "10::Heat: The Movie (1995)::Action|Crime\n"  # a colon inside a title
    (folder / "movies.dat").write_text("".join(lines), encoding="latin-1")
    return folder


def write_ml100k_layout(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "u.data").write_text(
        "".join(f"{u}\t{i}\t{int(r)}\t{t}\n" for u, i, r, t in RATINGS)
    )
    flags = {10: [1, 6], 20: [3], 30: []}  # indices into the 19 ml-100k genre flags
    rows = []
    for item, title, _ in MOVIES:
        bits = ["0"] * 19
        for b in flags[item]:
            bits[b] = "1"
        release = "01-Jan-1977" if item == 30 else ""
        rows.append(
            "|".join(
                [
                    str(item),
                    title.replace("Up", "Amélie"),
                    release,
                    "",
                    "http://x",
                    *bits,
                ]
            )
            + "\n"
        )
    (folder / "u.item").write_bytes("".join(rows).encode("latin-1"))
    return folder


@pytest.fixture
def csv_folder(tmp_path: Path) -> Path:
    return write_csv_layout(tmp_path / "ml-latest-small")
