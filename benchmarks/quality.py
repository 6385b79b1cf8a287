"""Quality of every model on a MovieLens folder: the project's own default `kedro run`.

    python benchmarks/quality.py --data ../shared/data/ml-100k [--env ml100k] [--params ...] [--write-docs]

Runs every pipeline (leave-one-out by time, 10% cold-start users, the parameters of
conf/base or of --env, plus --params in `kedro run --params` syntax) in a scratch copy of
the project (common.ScratchProject), then prints the run's own summary (reporting
pipeline: every model's test HR/NDCG/MRR@10 with bootstrap intervals, NDCG@10 by history
length, cold-start users, paired permutation tests with FDR adjustment), writes it into
docs/benchmarks.md between the `quality` markers (--write-docs) and to --json.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    RESULTS,
    ROOT,
    ScratchProject,
    arguments,
    machine,
    peak_rss_mib,
    run_params,
    write_json,
)


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
    parser = arguments(__doc__, "quality_run")
    parser.add_argument("--write-docs", action="store_true", help="replace the quality section of docs/benchmarks.md")  # fmt: skip
    parser.set_defaults(json=str(RESULTS / "quality.json"))
    args = parser.parse_args()

    params = run_params(args)
    project = ScratchProject(Path(args.workdir), args.env or None, params)
    seconds = project.run(["__default__"])
    summary, metrics, report = project.load("summary_markdown", "evaluation_metrics", "data_quality_report")  # fmt: skip
    info = machine()
    command = f"python benchmarks/quality.py --data {args.data}" + (f" --env {args.env}" if args.env else "") + (
        f" --params '{args.params}'" if args.params else "")  # fmt: skip
    kept = report["kept"]
    header = (f"Data: `{args.data}` ({kept['rows']:,} ratings, {kept['users']} users, {kept['items']} items). Whole `kedro run`: "
              f"{seconds:.0f} s on {info.get('gpu', info['cpu'])} ({info['threads']} threads), peak RSS {peak_rss_mib():.0f} MiB. "
              f"Command: `{command}`.")  # fmt: skip
    body = summary.split("\n", 2)[2].strip()  # the run's summary.md without its title
    section = header + "\n\n" + body
    print(section)
    write_json(args.json, {"seconds": seconds, "peak_rss_mib": peak_rss_mib(), "metrics": metrics})  # fmt: skip
    if args.write_docs:
        write_docs(section)


if __name__ == "__main__":
    main()
