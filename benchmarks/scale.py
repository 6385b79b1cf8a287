"""What each data stage costs from 100K to 32M ratings: wall time and peak memory.

    python benchmarks/scale.py --sizes 0.1m 1m 10m 32m --json benchmarks/results/scale.json \\
        --figure benchmarks/results/scale.html

Data of each size comes from the project's generator (`maskrec.sample`, shaped like the
MovieLens release of that size: users, items, ratings), written once in the ml-latest
layout and then read like a real release (`source=<folder>`). Each stage runs in its own
process, so its peak RSS (from `wait4`) is its own:

- generate: `maskrec.sample.write_sample` (ratings.csv + movies.csv);
- read: `read_movielens_folder`, the project's reader (typed parse, validation);
  baseline in the same run, read_pandas_c: the same file through pandas' default C parser,
  typed, with no validation (what the reader used before issue 11);
- the project's pipelines, as `kedro run --pipelines ... --params source=<folder>` in
  a scratch project: data_processing (read, clean, k-core, id remap, item features, the
  data-quality report; its intermediate tables are in memory, so it is one stage), split
  (`data_split`: leave-one-out, targets with contexts, sequence tables); and two classic
  baselines at one grid point each, each fit followed by the scoring of every validation
  user over the whole catalogue (the one scoring path, in batches): item_knn (sparse top-k
  in item blocks), mf_als (implicit's confidence-weighted ALS, scored by fold-in);
- pretrain_1proc, pretrain_2proc: Cloze pretraining (`--pipelines pretraining`, conf/base,
  `TRAIN_EPOCHS` epochs, on the CPU) launched by torchrun with 1 and with 2 processes
  (data-parallel, `training/distributed.py`; torchrun gives each of 2 processes one
  thread). Throughput is training sequences per second from the run's history. On a
  2-core machine 2 processes share the same 2 cores: this measures the distributed path's
  overhead, not a speed-up.

Printed: one row per size and stage: seconds of the work itself, seconds of the whole
process (Python, torch and Kedro start included), peak RSS, and the RSS before the work; a plotly figure of seconds and peak memory against
ratings (log-log) goes to --figure.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, ScratchProject, print_table, write_json  # noqa: E402

# Shaped like the releases: ML-100K, ML-1M, ML-10M, ML-32M (users, items, ratings).
SIZES = {
    "0.1m": (943, 1_682, 100_000),
    "1m": (6_040, 3_706, 1_000_209),
    "10m": (69_878, 10_677, 10_000_054),
    "32m": (200_948, 87_585, 32_000_204),
}
PIPELINE_STAGES = {  # stage: (pipelines, nodes, runtime parameters)
    "data_processing": (["data_processing"], None, {}),
    "split": (["data_split"], None, {}),
    # one grid point each (a fit and the validation scoring of every user): a grid costs
    # that times its size, except ItemKNN's, which fits its whole grid in one pass
    "item_knn": (["baselines"], ["fit_item_knn_node"],
                 {"baselines": {"item_knn_neighbours": [100], "item_knn_shrink": [10.0]}}),
    "mf_als": (["baselines"], ["fit_matrix_factorization_node"],
               {"baselines": {"mf_factors": [64], "mf_l2": [10.0], "mf_alpha": [2.0]}}),
}  # fmt: skip
TRAIN_EPOCHS = 2
TRAIN_STAGES = {"pretrain_1proc": 1, "pretrain_2proc": 2}  # stage: processes
STAGES = ("generate", "read_pandas_c", "read", *PIPELINE_STAGES, *TRAIN_STAGES)


def worker(stage: str, folder: Path) -> None:
    """One stage of one size, in this (fresh) process; writes the seconds of the work
    itself (imports and Kedro's start excluded) and the RSS before it."""
    import json
    import resource

    import pandas as pd

    from maskrec.datasets.readers import read_movielens_folder
    from maskrec.sample import SampleSpec, write_sample

    data, extra = folder / "data", {}
    project = ScratchProject(folder / "project", params=f"source={data}", fresh=False)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    if stage == "generate":
        users, items, ratings = SIZES[folder.name]
        write_sample(SampleSpec(n_users=users, n_items=items, n_ratings=ratings), data)
    elif stage == "read_pandas_c":
        pd.read_csv(data / "ratings.csv", dtype={"userId": "int64", "movieId": "int64", "rating": "float64", "timestamp": "int64"})  # fmt: skip
    elif stage == "read":
        read_movielens_folder(data)
    elif stage in TRAIN_STAGES:
        extra = train(project, TRAIN_STAGES[stage], data)
    else:
        project.run(*PIPELINE_STAGES[stage])
    seconds = time.perf_counter() - started
    (folder / f"{stage}.json").write_text(json.dumps({"seconds": seconds, "rss_before_mib": before, **extra}))  # fmt: skip


def train(project: ScratchProject, processes: int, data: Path) -> dict:
    """Cloze pretraining under torchrun with `processes` processes, in the scratch project
    (its split tables come from the `split` stage); the history's throughput."""

    params = f"source={data},pretraining.schedule.epochs={TRAIN_EPOCHS},training.device=cpu,training.checkpoint_dir=null"  # fmt: skip
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}",
               "-m", "kedro", "run", "--pipelines", "pretraining", "--params", params]  # fmt: skip
    subprocess.run(command, cwd=project.folder, check=True)
    history = project.load(
        "pretrained_history"
    )  # (versioned: the catalog finds the latest)
    trained = history[history["epoch"] >= 1]
    return {"processes": processes, "train_seconds_per_epoch": float(trained["train_seconds"].mean()),
            "sequences_per_second": float(trained["sequences_per_second"].mean())}  # fmt: skip


def measure(stage: str, folder: Path) -> dict:
    """Run one stage in a child process; its wall seconds and peak RSS."""
    command = [sys.executable, __file__, "--worker", stage, "--folder", str(folder)]
    started = time.perf_counter()
    child = subprocess.Popen(command)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"stage {stage} at {folder.name} failed (exit {status})")
    work = json.loads((folder / f"{stage}.json").read_text())
    return {"stage": stage, "process_seconds": seconds, "peak_rss_mib": usage.ru_maxrss / 1024, **work}  # fmt: skip


def figure(rows: list[dict], path: str) -> None:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(
        rows=1, cols=2, subplot_titles=("wall seconds", "peak RSS (MiB)")
    )
    for stage in STAGES:
        mine = [r for r in rows if r["stage"] == stage]
        for column, key in ((1, "seconds"), (2, "peak_rss_mib")):
            fig.add_trace(
                go.Scatter(x=[r["ratings"] for r in mine], y=[r[key] for r in mine],
                           mode="lines+markers", name=stage, legendgroup=stage,
                           showlegend=column == 1),
                row=1, col=column,
            )  # fmt: skip
    fig.update_xaxes(type="log", title_text="ratings")
    fig.update_yaxes(type="log")
    fig.update_layout(title="maskrec data stages against data size (generated MovieLens-shaped data)")  # fmt: skip
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.write_html(path, include_plotlyjs="cdn")
    print(f"wrote {path}", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    parser.add_argument(
        "--stages", nargs="+", default=list(STAGES), choices=list(STAGES)
    )
    parser.add_argument("--workdir", default=str(RESULTS / "scale_run"))
    parser.add_argument("--json", default=None)
    parser.add_argument("--figure", default=str(RESULTS / "scale.html"))
    parser.add_argument("--worker", choices=STAGES, help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker, Path(args.folder))

    rows = []
    for size in args.sizes:
        folder = Path(args.workdir) / size
        ScratchProject(folder / "project")  # a fresh copy of conf/ for this size
        users, items, ratings = SIZES[size]
        for stage in args.stages:
            row = {"size": size, "ratings": ratings, "users": users, "items": items}
            rows.append({**row, **measure(stage, folder)})
            print(f"{size} {stage}: {rows[-1]['seconds']:.1f} s, {rows[-1]['peak_rss_mib']:.0f} MiB", file=sys.stderr)  # fmt: skip
    print_table(rows, ["size", "ratings", "items", "stage", "seconds", "process_seconds", "peak_rss_mib", "rss_before_mib"])  # fmt: skip
    training = [r for r in rows if r["stage"] in TRAIN_STAGES]
    if training:
        print(f"\nCloze pretraining, {TRAIN_EPOCHS} epochs, CPU (peak RSS: the largest process)")  # fmt: skip
        print_table(training, ["size", "processes", "train_seconds_per_epoch", "sequences_per_second", "peak_rss_mib"])  # fmt: skip
    figure(rows, args.figure)
    write_json(args.json, {"rows": rows})


if __name__ == "__main__":
    main()
