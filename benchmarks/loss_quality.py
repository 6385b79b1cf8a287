"""What each item softmax (`loss`) does to quality on real data, on validation.

    python benchmarks/loss_quality.py --data ../shared/data/ml-100k \\
        --targets ../shared/data/ml-100k/recbole_loo_targets.csv \\
        --json benchmarks/results/loss_quality_ml100k.json
    python benchmarks/loss_quality.py --data ../shared/data/ml-1m-users-1-2999 --env '' \\
        --json benchmarks/results/loss_quality_ml1m_subset.json

The project's own `kedro run` in a scratch folder (common.ScratchProject): data_processing
and data_split once, then, per loss and stage, the stage's node with `<stage>.loss.softmax` set
(`--params` adds overrides): SASRec (`train_sasrec_node`: every position labelled) and,
with `--stages pretraining`, Cloze pretraining (`pretrain_node`). Each trains to its early
stop; printed: the best validation NDCG@10 and HR@10, the epoch it came at, seconds per
epoch and to the best epoch. The test split is not touched (the evaluation pipeline's).

`chunked` is the full softmax computed in blocks (equal values and gradients: tests/models/
test_losses.py), so it is run only with `--losses chunked`; the question here is what
`sampled` (`negatives` items from training popularity, logQ-corrected) costs in quality.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    ScratchProject,
    arguments,
    print_table,
    run_params,
    stage_nodes,
    trained_seconds,
    write_json,
)

# stage: (its parameter group, the model it trains)
STAGES = {"sasrec": ("sasrec", "sasrec"), "pretraining": ("pretraining", "pretrained")}


def main() -> None:
    parser = arguments(__doc__, "loss_quality_run", env="ml100k")
    parser.add_argument("--targets", default=None, help="a CSV like recbole_loo_targets.csv (user_id,valid_item,test_item)")  # fmt: skip
    parser.add_argument("--losses", nargs="+", default=["full", "sampled"], choices=["full", "chunked", "sampled"])  # fmt: skip
    parser.add_argument("--stages", nargs="+", default=["sasrec"], choices=list(STAGES))
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    args = parser.parse_args()

    split = {
        "cold_user_fraction": 0.0,
        **({"strategy": "given"} if args.targets else {}),
    }
    given = {"split_targets": str(Path(args.targets).resolve())} if args.targets else {}
    params = run_params(args, data_split=split, training={"device": args.device, "checkpoint_dir": None}, **given)  # fmt: skip
    project = ScratchProject(Path(args.workdir), args.env or None, params)
    groups = project.parameters()  # a bad value stops here
    project.run(["data_processing", "data_split"])
    n_items = len(project.load("item_features"))

    runs, rows = [], []
    for stage in args.stages:
        group, model = STAGES[stage]
        nodes = stage_nodes("__default__", [f"{model}_model"])
        history_name = f"{model}_history"
        for loss in args.losses:
            seconds = project.run(
                ["__default__"], nodes, f"{group}.loss.softmax={loss}"
            )
            timing = trained_seconds(project.load(history_name))
            runs.append(
                {"stage": stage, "loss": loss, "node_seconds": seconds, **timing}
            )
            r = runs[-1]
            negatives = f" ({groups[group].loss.negatives:,} negatives)" if loss == "sampled" else ""  # fmt: skip
            rows.append({
                "stage": stage, "loss": loss + negatives,
                "valid NDCG@10": f"{r['valid_ndcg@10']:.4f}", "valid HR@10": f"{r['valid_hr@10']:.4f}",
                "best epoch": f"{r['best_epoch']} of {r['epochs_run']}",
                "s/epoch": f"{r['seconds_per_epoch']:.1f}", "s to best": f"{r['seconds_to_best_epoch']:.0f}",
            })  # fmt: skip
            print(rows[-1], file=sys.stderr, flush=True)
    print(f"\nitem softmax variants on {args.data} ({n_items:,} items), validation split")  # fmt: skip
    print_table(rows, list(rows[0]))
    write_json(args.json, {"data": args.data,
                           "n_items": n_items, "runs": runs})  # fmt: skip


if __name__ == "__main__":
    main()
