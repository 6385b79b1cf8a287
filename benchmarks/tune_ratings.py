"""Choosing the rating head's settings on validation: one protocol and fold, each
setting's best validation RMSE (what to choose by), its epoch and seconds. No test
rating is scored: the fold's prediction nodes are not run.

    python benchmarks/tune_ratings.py --data ../shared/data/ml-100k --env ml100k \\
        --grid "ratings.head.schedule.epochs=15" "ratings.head.schedule.learning_rate=0.001" \\
        --json benchmarks/results/tune_ratings.json

Each grid entry is a `kedro run --params` string, applied after --params. The data steps
run once, in a scratch project (`kedro run --pipelines data_processing`); each setting then
runs the fold's namespace of `kedro run --pipelines rating_prediction` up to its trained
models (the rating models' Cloze pretraining on the fold's fitted ratings, the rating head
on it and from scratch) and reads their validation curves.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    ScratchProject,
    arguments,
    print_table,
    run_params,
    write_json,
)

from maskrec.pipeline_registry import register_pipelines  # noqa: E402
from maskrec.pipelines.rating_prediction.pipeline import FOLDS  # noqa: E402

# the fold's nodes that train; the test questions are built, but nothing scores them
TRAINING = ("select_fold_node", "rating_model_input_node", "init_pretraining_model_node", "init_scratch_model_node",
            "pretrain_node", "add_rating_head_to_pretrained_node", "add_rating_head_to_scratch_node",
            "fine_tune_pretrained_node", "fine_tune_scratch_node")  # fmt: skip
KINDS = ("pretrained", "fine_tuned", "scratch")


def main() -> None:
    parser = arguments(__doc__, "tune_ratings_run", env="ml100k")
    parser.add_argument("--grid", nargs="+", default=[""], help="settings to try, each a `--params` string")  # fmt: skip
    parser.add_argument("--fold", default="rating_fold_0", choices=list(FOLDS), help="the protocol and fold (a namespace)")  # fmt: skip
    args = parser.parse_args()
    params = run_params(args)
    project = ScratchProject(Path(args.workdir), args.env or None, params)
    for setting in args.grid:
        project.parameters(setting)  # a bad value stops here, before any training
    project.run(["data_processing"])
    project.run(["rating_prediction"], ["split_ratings_node"])
    nodes = [n.name for n in register_pipelines()["rating_prediction"].nodes if n.namespace == args.fold and n.name.split(".", 1)[1] in TRAINING]  # fmt: skip
    rows = []
    for setting in args.grid:
        started = time.perf_counter()
        project.run(["rating_prediction"], nodes, setting)
        row = {"settings": setting or "(as configured)", "seconds": round(time.perf_counter() - started)}  # fmt: skip
        for kind in KINDS:
            curve = project.load(f"{args.fold}.{kind}_curve")
            chosen = curve[curve["epoch"] == curve["best_epoch"].iloc[0]].iloc[0]
            metric = "rmse" if kind != "pretrained" else "ndcg@10"
            row[f"{kind} valid {metric.upper()}"] = round(float(chosen[metric]), 4)
            row[f"{kind} best epoch"] = int(chosen["epoch"])
        rows.append(row)
        print(json.dumps(row), flush=True)
    print(f"\n{args.fold} on {args.data}, validation only (choose by the lowest RMSE):")
    print_table(rows, list(rows[0]))
    write_json(args.json, {"data": args.data, "env": args.env, "fold": args.fold, "runtime_params": params, "rows": rows})  # fmt: skip


if __name__ == "__main__":
    main()
