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

A model is trained once for all the settings that leave what it reads unchanged: when the
parameter groups its nodes read (resolved and validated, e.g. `pretraining` and `training`
for the Cloze model) are those of the last setting that trained it, its persisted weights
and history are reused, and so are they as the start of the model built on it. A grid over
fine-tuning settings thus pretrains once and trains SASRec once; each run's `reused` lists
the models it did not train again.
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
    stage_nodes,
    write_json,
)

# the sequence models of the default run (the classic baselines have no schedule)
MODELS = ("pretrained", "fine_tuned", "scratch", "sasrec")


def model_nodes() -> dict[str, list[str]]:
    """Per model, the default run's nodes that train it, with those of the model it starts
    from (fine-tuning's include pretraining's)."""
    return {m: stage_nodes("__default__", [f"{m}_model"]) for m in MODELS}


def read_groups(nodes: dict[str, list[str]]) -> dict[str, set[str]]:
    """The parameter groups each model's training nodes read (their `params:` inputs)."""
    from maskrec.pipeline_registry import register_pipelines

    default = register_pipelines()["__default__"]
    return {m: {name.removeprefix("params:") for name in default.only_nodes(*names).inputs() if name.startswith("params:")}
            for m, names in nodes.items()}  # fmt: skip


def training_keys(parameters: dict, groups: dict[str, set[str]]) -> dict[str, str]:
    """Per model, what decides its training under one setting: the groups it reads."""
    return {m: json.dumps({g: parameters[g].model_dump(mode="json") for g in sorted(names)}, sort_keys=True)
            for m, names in groups.items()}  # fmt: skip


def nodes_to_run(models: list[str], keys: dict[str, str], trained_with: dict[str, str], nodes: dict[str, list[str]]) -> tuple[list[str], list[str], list[str]]:  # fmt: skip
    """The nodes a setting runs, the models they train and the models it reuses: those
    (asked for, or started from) whose key is the one they were last trained with in
    this scratch project. A reused model's nodes are left out of every model that starts
    from it."""
    needed = [
        m for m in MODELS if any(set(nodes[m]) <= set(nodes[asked]) for asked in models)
    ]
    reused = [m for m in needed if trained_with.get(m) == keys[m]]
    upstream = {m: {node for u in reused if set(nodes[u]) <= set(nodes[m]) for node in nodes[u]} for m in models}  # fmt: skip
    to_run = [
        node
        for m in models
        if m not in reused
        for node in nodes[m]
        if node not in upstream[m]
    ]
    return list(dict.fromkeys(to_run)), [m for m in needed if m not in reused], reused


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
    params = run_params(args, training={"checkpoint_dir": None})
    project = ScratchProject(Path(args.workdir), args.env or None, params)
    nodes_of = model_nodes()
    groups = read_groups(nodes_of)
    # a bad value stops here, before any training
    keys = {setting: training_keys(project.parameters(setting), groups) for setting in args.grid}  # fmt: skip
    project.run(["data_processing", "data_split"])
    runs, rows, trained_with = [], [], {}
    for setting in args.grid:
        nodes, training, reused = nodes_to_run(
            models, keys[setting], trained_with, nodes_of
        )
        seconds = project.run(["__default__"], nodes, setting) if nodes else 0.0
        trained_with |= {m: keys[setting][m] for m in training}
        results = {m: trained(project.load(f"{m}_history")) for m in models}
        runs.append(
            {
                "settings": setting,
                "wall_seconds": seconds,
                "reused": reused,
                "models": results,
            }
        )
        row = {"settings": setting or "(as configured)", "training s": round(seconds)}
        for m, r in results.items():
            row[m] = f"{r['valid_ndcg@10']:.4f} ({r['best_epoch']}/{r['epochs_run']}, {r['seconds']:.0f} s{', reused' if m in reused else ''})"  # fmt: skip
        rows.append(row)
        print(json.dumps(row), flush=True)
    print(f"\nvalidation NDCG@10 (best epoch / epochs run, seconds) on {args.data}:")
    print_table(rows, list(rows[0]))
    write_json(args.json, {"data": args.data, "env": args.env, "runtime_params": params, "runs": runs})  # fmt: skip


if __name__ == "__main__":
    main()
