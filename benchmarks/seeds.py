"""The same configuration trained with several seeds, compared by the `seeds` pipeline.

    python benchmarks/seeds.py --data sample --seeds 0 1 2 --json benchmarks/results/seeds_sample.json

Runs the default `kedro run` once per `training.seed` in one scratch copy of the project
(common.ScratchProject; each run saves a new version of the evaluation), then
`kedro run --pipelines seeds`, and prints and writes what that pipeline reports: each
model's test NDCG@10 per seed with a t interval over the seeds, and every comparison's paired
test per seed with the t interval of its difference. (--data, --env and --params as for
every benchmark.)

With --compare-only nothing is trained: the `seeds` pipeline compares the evaluations
already saved in --workdir (e.g. `benchmarks/tuned.py`'s), the newest at or before the
version --until names (a folder of data/08_reporting/model_stats.json/) if given:

    python benchmarks/seeds.py --compare-only --workdir /tmp/tuned_run --seeds 0 1 2 \
        --until 2026-12-05T06.21.17.824Z --json benchmarks/results/seeds_tuned.json
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ScratchProject, arguments, run_params, write_json  # noqa: E402


def main() -> None:
    parser = arguments(__doc__, "seeds_run")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--compare-only", action="store_true", help="train nothing: compare the evaluations saved in --workdir")  # fmt: skip
    parser.add_argument("--until", default=None, help="the newest saved evaluation to compare, by version (seeds.until)")  # fmt: skip
    args = parser.parse_args()
    if args.compare_only and not (Path(args.workdir) / "conf").is_dir():
        raise SystemExit(f"--compare-only: {args.workdir} is no scratch project (no conf/)")  # fmt: skip
    project = ScratchProject(Path(args.workdir), args.env or None, run_params(args), fresh=not args.compare_only)  # fmt: skip
    compare = f"seeds.runs={len(args.seeds)}" + (f",seeds.until={args.until}" if args.until else "")  # fmt: skip
    project.parameters(compare)  # a bad value stops here
    seconds = {}
    for seed in [] if args.compare_only else args.seeds:
        seconds[seed] = project.run(["__default__"], params=f"training.seed={seed}")
        print(f"seed {seed}: {seconds[seed]:.0f} s", file=sys.stderr, flush=True)
    project.run(["seeds"], params=compare)
    comparison, summary = project.load("seed_comparison", "seed_summary")
    print(summary)
    write_json(args.json, {"run_seconds": seconds, "seed_comparison": comparison})


if __name__ == "__main__":
    main()
