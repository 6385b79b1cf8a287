"""The classic baselines on real data: every grid point's validation NDCG@10 and fit
seconds, and each fit's peak RSS.

    python benchmarks/baselines.py --data ../shared/data/ml-100k \\
        --targets ../shared/data/ml-100k/recbole_loo_targets.csv \\
        --json benchmarks/results/baselines_ml100k.json
    python benchmarks/baselines.py --data ../shared/data/ml-1m-users-1-2999 --env '' \\
        --json benchmarks/results/baselines_ml1m_subset.json

The project's own `kedro run` in a scratch folder (common.ScratchProject): data_processing
and data_split once, then each classic baseline's node in its own process, so the RSS is
that baseline's. Grids are the run's (`baselines` in parameters_baselines.yml, or
--params). Only validation is scored: this is where a grid is chosen (the test split
belongs to the evaluation pipeline; `race_ml100k.py` reports it). The ALS grid holds
alpha=1 (every cell weighted alike, the uniform factorisation) beside confidence weights,
so the table answers whether weighting pays on this data in the same run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    ScratchProject,
    arguments,
    peak_rss_mib,
    print_table,
    run_params,
    write_json,
)

BASELINES = {  # model: its node in the baselines pipeline
    "most_popular": "fit_most_popular_node",
    "item_knn": "fit_item_knn_node",
    "ease": "fit_ease_node",
    "mf_als": "fit_matrix_factorization_node",
}


def baselines_params(args: argparse.Namespace) -> str:
    """The benchmark's settings, then --params (later keys win), as `kedro run --params`."""
    split = {
        "cold_user_fraction": 0.0,
        **({"strategy": "given"} if args.targets else {}),
    }
    given = {"split_targets": str(Path(args.targets).resolve())} if args.targets else {}
    return run_params(args, data_split=split, **given)


def worker(args: argparse.Namespace) -> None:
    """One baseline's node in this fresh process: its seconds, peak RSS and grid, as JSON."""
    project = ScratchProject(Path(args.workdir), args.env or None, baselines_params(args), fresh=False)  # fmt: skip
    node = args.worker
    seconds = project.run(["__default__"], [node])
    selection = next((v for k, v in project.outputs.items() if k.endswith("_selection")), None)  # fmt: skip
    print(json.dumps({"seconds": seconds, "peak_rss_mib": peak_rss_mib(), "selection": selection}))  # fmt: skip


def main() -> None:
    parser = arguments(__doc__, "baselines_run", env="ml100k")
    parser.add_argument("--targets", default=None, help="a CSV like recbole_loo_targets.csv (user_id,valid_item,test_item)")  # fmt: skip
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    project = ScratchProject(
        Path(args.workdir), args.env or None, baselines_params(args)
    )
    project.parameters()  # a bad value stops here
    data_seconds = project.run(["data_processing", "data_split"])

    runs, rows = {}, []
    for name, node in BASELINES.items():
        out = subprocess.run(
            [sys.executable, *sys.argv, "--worker", node],
            check=True, capture_output=True, text=True,
        ).stdout  # fmt: skip
        runs[name] = json.loads(out.strip().splitlines()[-1])
    selections = {name: run.pop("selection") or {} for name, run in runs.items()}
    for name, run in runs.items():
        selection = selections.get(name, {})
        if "skipped" in selection:
            rows.append(
                {
                    "model": name,
                    "settings": selection["skipped"],
                    "valid NDCG@10": "skipped",
                }
            )
            continue
        for trial in selection.get("trials", [{}]):  # most popular has no grid
            settings = {k: v for k, v in trial.items() if k not in ("valid_ndcg@10", "fit_seconds", "seed", "iterations")}  # fmt: skip
            rows.append({
                "model": name,
                "settings": ", ".join(f"{k}={v}" for k, v in settings.items()) or "–",
                "valid NDCG@10": f"{trial['valid_ndcg@10']:.4f}" if trial else "(not scored)",
                "fit s": f"{trial['fit_seconds']:.2f}" if trial else "–",
                "node s": f"{run['seconds']:.1f}",
                "peak RSS MiB": f"{run['peak_rss_mib']:.0f}",
            })  # fmt: skip
    print(f"\nclassic baselines on {args.data}, validation split (data steps {data_seconds:.0f} s)")  # fmt: skip
    print_table(rows, list(rows[0]))
    write_json(args.json, {
        "data": args.data,
        "data_seconds": data_seconds, "nodes": runs, "selections": selections,
    })  # fmt: skip


if __name__ == "__main__":
    main()
