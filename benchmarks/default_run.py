"""The whole default `kedro run`, pipeline by pipeline: wall seconds and peak RSS.

    python benchmarks/default_run.py --data sample \\
        --params "sample.n_users=6040,sample.n_items=3700,sample.n_ratings=1000000" \\
        --json benchmarks/results/default_run_ml1m_size.json

`kedro run` (`__default__`) in a scratch copy of the project (common.ScratchProject), with
--env and --params as `kedro run` takes them, split into its pipelines in their order
(data_processing, data_split, pretraining, fine_tuning, baselines, evaluation, reporting,
inference). Each pipeline runs in its own process, so its peak RSS (from `wait4`) is its
own (its seconds include the process's start: Python, torch and Kedro, ~8 s); their
outputs meet through the catalog as in one run. Issue 11's target for the
generated ML-1M-sized data above: the whole run in 30 minutes on a 2-core CPU.
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
from common import (  # noqa: E402
    ScratchProject,
    arguments,
    print_table,
    run_params,
    write_json,
)

PIPELINES = ("data_processing", "data_split", "pretraining", "fine_tuning", "baselines",
             "evaluation", "reporting", "inference")  # fmt: skip


def main() -> None:
    parser = arguments(__doc__, "default_run", env="")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    params = run_params(args)
    if args.child:
        project = ScratchProject(Path(args.workdir), args.env or None, params, fresh=False)  # fmt: skip
        project.run([args.child])
        return

    project = ScratchProject(Path(args.workdir), args.env or None, params)
    project.parameters()  # a bad value stops here
    rows = []
    for name in PIPELINES:
        started = time.perf_counter()
        child = subprocess.Popen([sys.executable, *sys.argv, "--child", name])
        _, status, usage = os.wait4(child.pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"pipeline {name} failed (exit {status})")
        rows.append({"pipeline": name, "seconds": time.perf_counter() - started,
                     "peak_rss_mib": usage.ru_maxrss / 1024})  # fmt: skip
        print(f"{name}: {rows[-1]['seconds']:.0f} s, {rows[-1]['peak_rss_mib']:.0f} MiB", file=sys.stderr, flush=True)  # fmt: skip
    total = sum(r["seconds"] for r in rows)
    rows.append({"pipeline": "whole run", "seconds": total, "peak_rss_mib": max(r["peak_rss_mib"] for r in rows)})  # fmt: skip
    summary = project.load(
        "summary_markdown"
    )  # (versioned: the catalog finds the latest)
    print(f"\nthe default kedro run on {args.data} {args.params}")
    print_table(rows, ["pipeline", "seconds", "peak_rss_mib"])
    print("\n" + summary)
    write_json(args.json, {"rows": rows,
                           "summary_md": summary, "model_stats": json.loads(json.dumps(project.load("model_stats"), default=float))})  # fmt: skip


if __name__ == "__main__":
    main()
