"""The fair fight: every compared model tuned with the same budget on validation, then
the tuned models, and the shipped configuration, on the test split, seed by seed.

    python benchmarks/tuned.py --data sample --seeds 0 1 2 \\
        --params "tuning.trials=8,tuning.epochs=20" --json benchmarks/results/tuned_sample.json

Phase 1, validation only: `kedro run --pipelines tuning` in a scratch copy of the project
(its studies, trials and the winners as the scratch project's conf/tuned). This script
reads nothing of the test split in this phase, and the tuning pipeline cannot (its inputs).
Phase 2, once the winners are fixed: for each seed (`training.seed`), the default run
twice, with the tuned environment and with the shipped `conf/base`, each evaluated by
the evaluation pipeline (the test split's one reader). Reported: each model's test
NDCG@10 and HR@10 (means over seeds at the top level of the JSON, per seed below), the
per-seed differences fine_tuned - sasrec and fine_tuned - scratch with each seed's paired
test, and a t interval over the seeds of each difference.

--env is not taken: the tuned environment is written over `conf/base` (Kedro stacks one
environment on base), so the study runs on `conf/base` with --params.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    ScratchProject,
    arguments,
    print_table,
    run_params,
    write_json,
)

PAIRS = (("fine_tuned", "sasrec"), ("fine_tuned", "scratch"))
METRICS = ("ndcg@10", "hr@10")


def evaluated(project: ScratchProject, env: str | None, seed: int) -> dict:
    """The default run under `env` with `training.seed=seed`: each model's test metrics
    and validation NDCG@10, and the paired tests of PAIRS on all users."""
    runner = ScratchProject(project.folder, env, project.params, fresh=False)
    seconds = runner.run(["__default__"], params=f"training.seed={seed}")
    metrics = runner.load("evaluation_metrics")
    models = {name: {m: float(v["all"][m]["mean"]) for m in METRICS} | {"valid_ndcg@10": v.get("valid_ndcg@10")}
              for name, v in metrics["models"].items()}  # fmt: skip
    tests = {f"{t['model']} - {t['competitor']}": {k: t[k] for k in ("mean_difference", "ci_low", "ci_high", "p_value")}
             for t in metrics["paired_tests"] if t["group"] == "all" and t["metric"] == "ndcg@10"
             and (t["model"], t["competitor"]) in PAIRS}  # fmt: skip
    return {"models": models, "paired_tests": tests, "seconds": seconds}


def across_seeds(runs: list[dict]) -> dict:
    """Means over seeds per model, and each PAIRS difference per seed with a t interval
    over the seeds (one value per seed: seeds, not users, are the replicates)."""
    names = runs[0]["models"]
    means = {n: {m: float(np.mean([r["models"][n][m] for r in runs])) for m in METRICS} for n in names}  # fmt: skip
    differences = {}
    for model, competitor in PAIRS:
        per_seed = [r["models"][model]["ndcg@10"] - r["models"][competitor]["ndcg@10"] for r in runs]  # fmt: skip
        mean = float(np.mean(per_seed))
        if len(per_seed) > 1:
            half = float(stats.t.ppf(0.975, len(per_seed) - 1) * np.std(per_seed, ddof=1) / np.sqrt(len(per_seed)))  # fmt: skip
            interval = [mean - half, mean + half]
        else:
            interval = None
        differences[f"{model} - {competitor}"] = {"per_seed": per_seed, "mean": mean, "t_interval_95": interval,
                                                  "paired_test_per_seed": [r["paired_tests"].get(f"{model} - {competitor}") for r in runs]}  # fmt: skip
    return {"models": means, "differences": differences}


def main() -> None:
    parser = arguments(__doc__, "tuned")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    if args.env:
        raise SystemExit("--env: the tuned environment is written over conf/base; give settings with --params")  # fmt: skip
    params = run_params(args, training={"checkpoint_dir": None})
    project = ScratchProject(Path(args.workdir), None, params)
    tuning = project.parameters()["tuning"]  # a bad value stops here

    tuning_seconds = project.run(["tuning"])  # phase 1: validation only
    summary = project.load("tuning_summary")
    environment = (project.folder / "conf/tuned/parameters.yml").read_text()

    tuned = [evaluated(project, "tuned", seed) for seed in args.seeds]  # phase 2
    shipped = [evaluated(project, None, seed) for seed in args.seeds]
    result = {"tuned": across_seeds(tuned), "shipped": across_seeds(shipped)}

    for label, runs in (("tuned", tuned), ("shipped conf/base", shipped)):
        print(f"\n{label}: test NDCG@10 by seed")
        print_table([{"model": n, **{f"seed {s}": round(r["models"][n]["ndcg@10"], 4) for s, r in zip(args.seeds, runs, strict=True)},
                      "mean": round(float(np.mean([r["models"][n]["ndcg@10"] for r in runs])), 4)}
                     for n in runs[0]["models"]], ["model", *(f"seed {s}" for s in args.seeds), "mean"])  # fmt: skip
    print("\ndifferences of test NDCG@10, per seed, and a t interval over the seeds:")
    print_table([{"setting": label, "pair": pair, "per seed": " ".join(f"{d:+.4f}" for d in v["per_seed"]),
                  "mean": f"{v['mean']:+.4f}", "95% over seeds": "–" if v["t_interval_95"] is None else "[{:+.4f}, {:+.4f}]".format(*v["t_interval_95"])}
                 for label, r in result.items() for pair, v in r["differences"].items()],
                ["setting", "pair", "per seed", "mean", "95% over seeds"])  # fmt: skip
    print("\ntuning (validation only):")
    print_table([{"model": m, "best valid NDCG@10": round(s.get("valid_ndcg@10", float("nan")), 4), "trials": s["trials"],
                  "epochs": s["epochs"], "CPU s": round(s["seconds"])} for m, s in summary.items()],
                ["model", "best valid NDCG@10", "trials", "epochs", "CPU s"])  # fmt: skip
    write_json(args.json, {
        **{name: values for name, values in result["tuned"]["models"].items()},
        "budget": {"trials": tuning.trials, "epochs": tuning.epochs, "space": tuning.model_dump()["space"]},
        "tuning": summary, "tuning_seconds": tuning_seconds, "environment": environment,
        "seeds": args.seeds, "tuned": result["tuned"], "shipped": result["shipped"],
        "runs": {"tuned": tuned, "shipped": shipped}, "runtime_params": params,
    })  # fmt: skip


if __name__ == "__main__":
    main()
