"""The fair fight for rating prediction: the rating head (with its Cloze pretraining),
SVD and SVD++ tuned with the same budget on validation RMSE, then the tuned and the
shipped settings on the next-rating protocol's test ratings, seed by seed.

    python benchmarks/tuned_ratings.py --data ../shared/data/ml-100k --seeds 0 1 2 \\
        --params "tuning.trials=8,tuning.epochs=20" --json benchmarks/results/tuned_ratings_ml100k.json

Phase 1, validation only: `kedro run --pipelines tuning` once per rating model
(`tuning.models=[<model>]`, one study name, so the winners gather in one environment),
every trial scored by RMSE on the next-rating protocol's validation ratings (each user's
rating before the last), fitted on the ratings before those. Phase 2, once the winners are
fixed: for each seed (`ratings.seed`: the rating models' initial weights and head; this
protocol has no random part), the next-rating protocol's namespace of `kedro run
--pipelines rating_prediction` with the tuned environment and with the shipped
`conf/base`. Reported: every model's test RMSE and MAE per seed and their means; the
per-seed differences of RMSE fine_tuned - svdpp and fine_tuned - svd, each seed's paired
t-test over users (one test rating per user: its squared error) and a t interval over
the seeds.

Only the next-rating protocol is scored: its test ratings (each user's last) are in
neither the fitted nor the validation ratings of the tuning. Surprise's random folds are
not clean for tuned settings (every rating is some fold's test, so any validation
ratings are), so they are left out here; `kedro run --env tuned --pipelines
rating_prediction` still runs them. --env is not taken: the tuned environment is
written over `conf/base` (Kedro stacks one environment on base).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    CONFIGURATION_LABELS,
    ScratchProject,
    across_seeds,
    configurations,
    print_differences,
    print_seeds,
    print_table,
    study_seconds,
    tuned_project,
    under_environment,
    write_json,
)

from maskrec.pipeline_registry import register_pipelines  # noqa: E402

NAMESPACE = "rating_next_in_time"
TUNED = ("rating_head", "svd", "svdpp")
PAIRS = (("fine_tuned", "svdpp"), ("fine_tuned", "svd"), ("svdpp", "svd"))


def tested(project: ScratchProject, env: str | None, seed: int) -> dict:
    """The next-rating protocol under `env` with `ratings.seed=seed`: each model's test
    RMSE and MAE, and the paired t-test of PAIRS over users."""
    runner = under_environment(project, env)
    nodes = ["split_ratings_node"] + [n.name for n in register_pipelines()["rating_prediction"].nodes if n.namespace == NAMESPACE]  # fmt: skip
    seconds = runner.run(["rating_prediction"], nodes, f"ratings.seed={seed}")
    predictions = runner.load(f"{NAMESPACE}.rating_predictions")
    errors = predictions.assign(error=predictions["prediction"] - predictions["rating"])
    squared = errors.assign(squared=errors["error"] ** 2).pivot_table(index="user_id", columns="model", values="squared", aggfunc="mean")  # fmt: skip
    models = {m: {"rmse": float(np.sqrt(np.mean(g["error"] ** 2))), "mae": float(np.mean(np.abs(g["error"]))), "ratings": len(g)}
              for m, g in errors.groupby("model", sort=False)}  # fmt: skip
    tests = {}
    for model, competitor in PAIRS:
        result = stats.ttest_rel(squared[model], squared[competitor])
        tests[f"{model} - {competitor}"] = {"mean_squared_error_difference": float((squared[model] - squared[competitor]).mean()), "p_value": float(result.pvalue)}  # fmt: skip
    return {"models": models, "paired_tests": tests, "seconds": seconds}


def main() -> None:
    args, params, project, tuning, kept = tuned_project(__doc__, "tuned_ratings")

    project.run(["data_processing"])
    tuning_seconds = sum(project.run(["tuning"], params=f"tuning.models=[{model}]") for model in TUNED)  # phase 1  # fmt: skip
    summary = project.load("tuning_summary")
    environment = (project.folder / "conf/tuned/parameters.yml").read_text()

    # phase 2
    runs = configurations(args, kept, lambda env, seed: tested(project, env, seed))
    result = {label: across_seeds(done, PAIRS, "rmse", ("rmse", "mae")) for label, done in runs.items()}  # fmt: skip

    for label, done in runs.items():
        print_seeds(CONFIGURATION_LABELS[label], done, args.seeds, "rmse")
    print_differences(result, "rmse")
    print("\ntuning (validation only):")
    print_table([{"model": m, "best valid RMSE": round(s.get("valid_rmse", float("nan")), 4), "trials": json.dumps(s["trials"]),
                  "CPU s": round(s["seconds"]), "point": json.dumps(s.get("point"))} for m, s in summary.items()],
                ["model", "best valid RMSE", "trials", "CPU s", "point"])  # fmt: skip
    write_json(args.json, {
        "budget": {"trials": tuning.trials, "epochs": tuning.epochs, "pretraining_epochs": tuning.pretraining_epochs, "space": {m: tuning.model_dump()["space"][m] for m in TUNED}},
        "tuning": summary, "tuning_seconds": study_seconds(summary, tuning_seconds), "environment": environment,
        "seeds": args.seeds, "tuned": result["tuned"], "shipped": result.get("shipped"),
        "runs": runs, "runtime_params": params,
    })  # fmt: skip


if __name__ == "__main__":
    main()
