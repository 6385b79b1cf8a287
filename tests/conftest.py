"""Shared test setup: no telemetry, and small MovieLens folders in every layout."""

from __future__ import annotations

import os
import shutil
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


SMALL_SAMPLE = {
    "sample": {"n_users": 150, "n_items": 300, "n_ratings": 4500, "seed": 3}
}


# Two epochs a stage, small grids, few resamples: what every end-to-end run of the tests
# trains with (a conf/local override, which the notebooks' %load_ext kedro.ipython reads too).
SHORT_RUN = (
    "training: {device: cpu, checkpoint_dir: null}\n"
    "schedule: {epochs: 2}\n"
    "pretraining: {schedule: {epochs: 2}}\n"
    "sasrec: {schedule: {epochs: 2}}\n"
    "baselines: {item_knn_neighbours: [20], item_knn_shrink: [10.0], ease_l2: [100.0, 500.0], mf_factors: [16], mf_l2: [10.0], mf_alpha: [5.0]}\n"
    "evaluation: {bootstrap_samples: 200, permutation_resamples: 199}\n"
    "inference: {register_as: maskrec-test}\n"
)


def copy_project(root: Path, notebooks: bool = False) -> Path:
    """The project's configuration (and notebooks) in `root`, so a run there never touches
    the working tree's data/."""
    for name in ("conf", "pyproject.toml", *(["notebooks"] if notebooks else [])):
        source = PROJECT_ROOT / name
        if source.is_dir():
            shutil.copytree(source, root / name, ignore=shutil.ignore_patterns("local"))
        else:
            shutil.copy(source, root / name)
    (root / "conf" / "local").mkdir()
    (root / "src").mkdir()  # bootstrap wants it; the installed package is used
    return root


def run(
    project: Path, pipelines: list[str], params: dict | None = None, **options
) -> None:
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(project)
    with KedroSession.create(
        project_path=project, runtime_params=params or {}
    ) as session:
        session.run(pipeline_names=pipelines, **options)


@pytest.fixture(scope="session")
def full_run(tmp_path_factory) -> Path:
    """The whole default `kedro run` on a small sample, once for every test that reads a
    trained project (the end-to-end checks, the notebooks, kedro-viz, the service)."""
    root = copy_project(tmp_path_factory.mktemp("project"), notebooks=True)
    # The notebooks' %load_ext kedro.ipython reads these defaults, so the small sample
    # and short training go in a conf/local override rather than in runtime params.
    (root / "conf" / "local" / "parameters.yml").write_text(SHORT_RUN)
    run(root, ["__default__"], SMALL_SAMPLE)
    return root
