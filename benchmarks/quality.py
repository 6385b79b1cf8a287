"""Quality of every model on a MovieLens folder, through the project's own `kedro run`.

    python benchmarks/quality.py --data ../shared/data/ml-100k

Runs the default pipelines (leave-one-out by time, 10% cold-start users, the parameters in
conf/base) in a scratch copy of the project under --workdir, then prints every model's
test HR@10, NDCG@10 and MRR@10 with bootstrap 95% intervals, the breakdown by training-
history length, cold-start users and the paired tests, and writes the tables into
docs/benchmarks.md between the `quality` markers (with --write-docs) and to --json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, peak_rss_mib, write_json  # noqa: E402


def run_project(workdir: Path, data: str, extra: dict) -> float:
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    if workdir.exists():
        shutil.rmtree(workdir)
    shutil.copytree(
        ROOT / "conf", workdir / "conf", ignore=shutil.ignore_patterns("local")
    )
    shutil.copy(ROOT / "pyproject.toml", workdir / "pyproject.toml")
    (workdir / "conf" / "local").mkdir()
    (workdir / "src").mkdir()
    os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")
    bootstrap_project(workdir)
    source = str(Path(data).resolve()) if Path(data).exists() else data
    started = time.perf_counter()
    cwd = Path.cwd()
    os.chdir(workdir)  # checkpoints and relative paths land in the scratch project
    try:
        with KedroSession.create(
            project_path=workdir, runtime_params={"source": source, **extra}
        ) as session:
            session.run(pipeline_names=["__default__"])
    finally:
        os.chdir(cwd)
    return time.perf_counter() - started


def tables(metrics: dict) -> str:
    from maskrec.pipelines.reporting.nodes import LABELS, _ordered

    def cell(stats: dict) -> str:
        return f"{stats['mean']:.4f} [{stats['ci_low']:.4f}, {stats['ci_high']:.4f}]"

    models = _ordered(metrics["models"])
    lines = [
        "| model | valid NDCG@10 | test HR@10 | test NDCG@10 | test MRR@10 | cold-start NDCG@10 |",
        "|---|---|---|---|---|---|",
    ]
    for m in models:
        s = metrics["models"][m]
        lines.append(f"| {LABELS.get(m, m)} | {s['valid_ndcg@10']:.4f} | {cell(s['all']['hr@10'])} | {cell(s['all']['ndcg@10'])} | "
                     f"{cell(s['all']['mrr@10'])} | {s['cold']['ndcg@10']['mean']:.4f} |")  # fmt: skip
    buckets = list(metrics["models"][models[0]]["by_history_length"])
    counts = [
        metrics["models"][models[0]]["by_history_length"][b]["users"] for b in buckets
    ]
    lines += ["", "Test NDCG@10 by training-history length (warm users; users per bucket in brackets):", "",
              "| model | " + " | ".join(f"{b} ({n})" for b, n in zip(buckets, counts, strict=True)) + " |",
              "|---|" + "---|" * len(buckets)]  # fmt: skip
    for m in models:
        row = metrics["models"][m]["by_history_length"]
        lines.append(
            f"| {LABELS.get(m, m)} | "
            + " | ".join(
                f"{row[b]['ndcg@10']['mean']:.4f}" if row[b]["users"] else "–"
                for b in buckets
            )
            + " |"
        )
    lines += ["", "Paired tests, NDCG@10 (model − competitor) on the same users:", "",
              "| model | competitor | users | n | difference [95% CI] | p (Wilcoxon) |", "|---|---|---|---|---|---|"]  # fmt: skip
    for t in metrics["paired_tests"]:
        lines.append(f"| {t['model']} | {t['competitor']} | {t['group']} | {t['users']} | {t['mean_difference']:+.4f} "
                     f"[{t['ci_low']:+.4f}, {t['ci_high']:+.4f}] | {t['p_wilcoxon']:.2g} |")  # fmt: skip
    return "\n".join(lines)


def write_docs(section: str) -> None:
    path = ROOT / "docs" / "benchmarks.md"
    text = path.read_text()
    start, end = "<!-- quality:start -->", "<!-- quality:end -->"
    block = f"{start}\n{section}\n{end}"
    text = (
        text[: text.index(start)] + block + text[text.index(end) + len(end) :]
        if start in text
        else text + "\n" + block + "\n"
    )
    path.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data",
        default="../shared/data/ml-100k",
        help="a MovieLens folder or release name",
    )
    parser.add_argument(
        "--workdir", default=str(ROOT / "benchmarks" / "results" / "quality_run")
    )
    parser.add_argument(
        "--params",
        default="",
        help='extra run parameters, JSON (e.g. \'{"pretraining": {"epochs": 60}}\')',
    )
    parser.add_argument(
        "--json", default=str(ROOT / "benchmarks" / "results" / "quality.json")
    )
    parser.add_argument(
        "--write-docs",
        action="store_true",
        help="replace the quality section of docs/benchmarks.md",
    )
    args = parser.parse_args()

    workdir = Path(args.workdir)
    seconds = run_project(
        workdir, args.data, json.loads(args.params) if args.params else {}
    )
    metrics = json.loads(
        (workdir / "data/08_reporting/evaluation_metrics.json").read_text()
    )
    report = json.loads(
        (workdir / "data/08_reporting/data_quality_report.json").read_text()
    )
    info = machine()
    header = (f"Data: `{args.data}` ({report['kept']['rows']:,} ratings, {report['kept']['users']} users, {report['kept']['items']} items); "
              f"leave-one-out by time, 10% cold-start users; full ranking, seen items excluded. Whole `kedro run`: {seconds:.0f} s on "
              f"{info.get('gpu', info['cpu'])} ({info['threads']} threads), peak RSS {peak_rss_mib():.0f} MiB. Command: "
              f"`python benchmarks/quality.py --data {args.data}{' --params ' + repr(args.params) if args.params else ''}`.")  # fmt: skip
    section = header + "\n\n" + tables(metrics)
    print(section)
    write_json(
        args.json,
        {
            "machine": info,
            "seconds": seconds,
            "peak_rss_mib": peak_rss_mib(),
            "metrics": metrics,
        },
    )
    if args.write_docs:
        write_docs(section)


if __name__ == "__main__":
    main()
