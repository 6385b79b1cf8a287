"""Training schedules on validation: for each setting, every sequence model of the default
run trained to its stop, with its best validation NDCG@10, the epoch it came at, the
epochs it ran and the seconds they took. Validation only: the test split is not scored
(the evaluation pipeline is not run).

    python benchmarks/schedules.py --data sample --env '' \\
        --grid "" "schedule.min_improvement=0.01" "schedule.decay=cosine" \\
        --json benchmarks/results/schedules_sample.json

Each grid entry is a `kedro run --params` string applied after --params (Kedro's own
parser; `""` is the configuration as it is). The data steps run once in a scratch project;
each setting then runs the default run's training nodes (pretraining, fine-tuning, the
scratch model, SASRec; the classic baselines have no schedule), or only those of
`--models` (with the nodes of the model each starts from), and reads their histories.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    ScratchProject,
    arguments,
    print_table,
    run_params,
    write_json,
)

# each sequence model of the default run: the nodes that train it (with those of the model
# it starts from)
NODES = {
    "pretrained": ["init_pretraining_model_node", "pretrain_node"],
    "fine_tuned": ["init_pretraining_model_node", "pretrain_node", "train_teacher_node", "fine_tune_pretrained_node"],
    "scratch": ["train_teacher_node", "init_scratch_model_node", "fine_tune_scratch_node"],
    "sasrec": ["train_sasrec_node"],
}  # fmt: skip
MODELS = tuple(NODES)


def trained(history) -> dict:
    """What a model's history says about its training: the chosen epoch's validation
    NDCG@10 and HR@10, the epochs run and their seconds (training and validation)."""
    epochs = history[history["epoch"] >= 1]
    best = int(history["best_epoch"].iloc[0])
    chosen = history[history["epoch"] == best].iloc[0]
    return {"valid_ndcg@10": float(chosen["ndcg@10"]), "valid_hr@10": float(chosen["hr@10"]),
            "best_epoch": best, "epochs_run": int(epochs["epoch"].max()) if len(epochs) else 0,
            "seconds": float(epochs["seconds"].sum())}  # fmt: skip


def main() -> None:
    parser = arguments(__doc__, "schedules_run", env="")
    parser.add_argument("--grid", nargs="+", default=[""], help="settings to try, each a `--params` string")  # fmt: skip
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS, help="train only these (default: all four)")  # fmt: skip
    args = parser.parse_args()
    models = [m for m in MODELS if m in args.models]
    nodes = list(dict.fromkeys(node for m in models for node in NODES[m]))
    params = run_params(args, training={"checkpoint_dir": None})
    project = ScratchProject(Path(args.workdir), args.env or None, params)
    for setting in args.grid:
        project.parameters(setting)  # a bad value stops here, before any training
    project.run(["data_processing", "data_split"])
    runs, rows = [], []
    for setting in args.grid:
        seconds = project.run(["__default__"], nodes, setting)
        results = {m: trained(project.load(f"{m}_history")) for m in models}
        runs.append({"settings": setting, "wall_seconds": seconds, "models": results})
        row = {"settings": setting or "(as configured)", "training s": round(seconds)}
        for m, r in results.items():
            row[m] = f"{r['valid_ndcg@10']:.4f} ({r['best_epoch']}/{r['epochs_run']}, {r['seconds']:.0f} s)"  # fmt: skip
        rows.append(row)
        print(json.dumps(row), flush=True)
    print(f"\nvalidation NDCG@10 (best epoch / epochs run, seconds) on {args.data}:")
    print_table(rows, list(rows[0]))
    write_json(args.json, {"data": args.data, "env": args.env, "runtime_params": params, "runs": runs})  # fmt: skip


if __name__ == "__main__":
    main()
