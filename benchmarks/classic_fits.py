"""The classic rating models' fits of every protocol and fold, one after another and side by
side: `ratings.classic_jobs` 1 against -1 (one process per core), in the same run.

    python benchmarks/classic_fits.py --data ../shared/data/ml-100k --env ml100k --repeats 2 \\
        --json benchmarks/results/classic_fits_ml100k.json

The slice of `kedro run --pipelines rating_prediction` that makes every fold's
`classic_predictions` and `classic_valid_predictions` (each fold's selection, its
validation hold-out and `predict_with_classic_models`: every classic model on the fold's
training ratings, and the blend's classic members again on the fitted ratings), run in a
scratch project after the data steps, alternating the settings --repeats times so that a
drift in the machine's speed falls on both. Printed: the wall seconds of each run, and
whether every prediction equals the first run's (they must: each fit is seeded).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    ScratchProject,
    arguments,
    print_table,
    run_params,
    stage_nodes,
    write_json,
)

PIPELINE = "rating_prediction"


def main() -> None:
    parser = arguments(__doc__, "classic_fits_run", env="")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, -1], help="ratings.classic_jobs values, alternated")  # fmt: skip
    args = parser.parse_args()
    params = run_params(args)
    project = ScratchProject(Path(args.workdir), args.env or None, params)
    settings = project.parameters()["ratings"]  # a bad value stops here
    from maskrec.pipelines.rating_prediction.pipeline import FOLDS

    made = [f"{ns}.{name}" for ns in FOLDS for name in ("classic_predictions", "classic_valid_predictions")]  # fmt: skip
    project.run([PIPELINE], stage_nodes(PIPELINE, ["rating_splits"], given=()))
    nodes = stage_nodes(PIPELINE, made, given=("rating_splits",))
    first, rows = None, []
    for repeat in range(args.repeats):
        for jobs in args.jobs:
            seconds = project.run([PIPELINE], nodes, f"ratings.classic_jobs={jobs}")
            predictions = project.load(*made)
            if first is None:
                first = predictions
            same = all(np.array_equal(a["prediction"].to_numpy(), b["prediction"].to_numpy()) and a[["user_id", "item_id", "model"]].equals(b[["user_id", "item_id", "model"]])
                       for a, b in zip(first, predictions, strict=True))  # fmt: skip
            rows.append({"repeat": repeat, "classic_jobs": jobs, "seconds": round(seconds, 1), "same_predictions": same})  # fmt: skip
            print(rows[-1], flush=True)
    fits = sum(len(p["model"].unique()) for p in first)
    print(f"\n{len(FOLDS)} protocol-folds, {fits} fits ({settings.classic_models} on training; "
          f"{[m for m in settings.blend if m in settings.classic_models]} again for the blend); {os.cpu_count()} cores")  # fmt: skip
    print_table(rows, ["repeat", "classic_jobs", "seconds", "same_predictions"])
    by_jobs = {j: [r["seconds"] for r in rows if r["classic_jobs"] == j] for j in args.jobs}  # fmt: skip
    write_json(args.json, {"data": args.data, "env": args.env, "runtime_params": params, "fits": fits,
                           "cores": os.cpu_count(), "runs": rows,
                           "median_seconds": {str(j): float(np.median(s)) for j, s in by_jobs.items()}})  # fmt: skip


if __name__ == "__main__":
    main()
