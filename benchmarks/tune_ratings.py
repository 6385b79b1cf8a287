"""Choosing the rating head's settings on validation: one protocol and fold, each setting's
validation RMSE (what to choose by), its test RMSE (printed, never used to choose) and
seconds.

    python benchmarks/tune_ratings.py --data ../shared/data/ml-100k --env ml100k \\
        --grid '[{"epochs": 15}, {"learning_rate": 0.002, "epochs": 20}]' \\
        --json benchmarks/results/tune_ratings.json

Each grid entry overrides `ratings.sequence` (merged onto --env and --params). The data
steps run once, in a scratch project (`kedro run --pipelines data_processing`); each setting
then trains what `kedro run --pipelines rating_prediction` trains for that protocol and fold
(`nodes.sequence_fold`: per-fold Cloze pretraining, the rating head on it and from scratch).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    ScratchProject,
    arguments,
    machine,
    merge,
    parse_params,
    print_table,
    source,
    write_json,
)


def main() -> None:
    parser = arguments(__doc__, "tune_ratings_run", env="ml100k")
    parser.add_argument("--grid", required=True, help="a JSON list of ratings.sequence overrides")  # fmt: skip
    parser.add_argument("--protocol", default="random_folds", choices=["random_folds", "next_in_time"])  # fmt: skip
    parser.add_argument("--fold", type=int, default=0)
    parser.add_argument("--kinds", default="fine_tuned,scratch", help="which sequence models to train")  # fmt: skip
    args = parser.parse_args()
    grid = json.loads(args.grid)
    params = merge({"source": source(args.data)}, parse_params(args.params))
    project = ScratchProject(Path(args.workdir), args.env or None, params)
    kinds = args.kinds.split(",")
    settings = [project.parameters({"ratings": {"sequence": g}}) for g in grid]
    from maskrec.pipelines.rating_prediction import nodes

    project.run(["data_processing"])
    interactions, items = project.load("interactions", "item_features")
    rows = []
    for overrides, groups in zip(grid, settings, strict=True):
        # only the sequence models asked for (the pipeline itself always trains fine_tuned)
        ratings = groups["ratings"].model_copy(update={"models": kinds})
        splits = nodes.split_ratings(interactions, ratings)
        protocol, fold, train, test = next(
            s for s in nodes.protocol_splits(splits, ratings) if s[:2] == (args.protocol, args.fold)
        )  # fmt: skip
        started = time.perf_counter()
        predictions, history, _ = nodes.sequence_fold(
            protocol, fold, train, test, items, groups["model"], groups["pretraining"], ratings, groups["training"]
        )  # fmt: skip
        row = {"settings": json.dumps(overrides), "seconds": round(time.perf_counter() - started)}  # fmt: skip
        for kind, mine in predictions.groupby("model"):
            stage = history[history["model"].str.endswith(f"_{kind}")]
            row[f"{kind} valid RMSE"] = round(float(stage["rmse"].min()), 4)
            row[f"{kind} best epoch"] = int(stage["best_epoch"].iloc[0])
            row[f"{kind} test RMSE"] = round(float(np.sqrt(((mine["prediction"] - mine["rating"]) ** 2).mean())), 4)  # fmt: skip
        rows.append(row)
        print(json.dumps(row), flush=True)
    print(
        f"\n{args.protocol} fold {args.fold} on {args.data} (choose by validation RMSE):"
    )
    print_table(rows, list(rows[0]))
    write_json(args.json, {"machine": machine(), "data": args.data, "env": args.env, "protocol": args.protocol,
                           "fold": args.fold, "runtime_params": params, "rows": rows})  # fmt: skip


if __name__ == "__main__":
    main()
