"""The same configuration trained with several seeds, compared by the `seeds` pipeline.

    python benchmarks/seeds.py --data sample --seeds 0 1 2 --json benchmarks/results/seeds_sample.json

Runs the default `kedro run` once per `training.seed` in one scratch copy of the project
(common.ScratchProject; each run saves a new version of the evaluation), then
`kedro run --pipelines seeds`, and prints and writes what that pipeline reports: each
model's test NDCG@10 per seed with a t interval over the seeds, and every comparison's paired
test per seed with the t interval of its difference. (--data, --env and --params as for
every benchmark.)
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ScratchProject, arguments, run_params, write_json  # noqa: E402


def main() -> None:
    parser = arguments(__doc__, "seeds_run")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    project = ScratchProject(Path(args.workdir), args.env or None, run_params(args))
    project.parameters()  # a bad value stops here
    seconds = {}
    for seed in args.seeds:
        seconds[seed] = project.run(["__default__"], params=f"training.seed={seed}")
        print(f"seed {seed}: {seconds[seed]:.0f} s", file=sys.stderr, flush=True)
    project.run(["seeds"], params=f"seeds.runs={len(args.seeds)}")
    comparison, summary = project.load("seed_comparison", "seed_summary")
    print(summary)
    write_json(args.json, {"run_seconds": seconds, "seed_comparison": comparison})


if __name__ == "__main__":
    main()
