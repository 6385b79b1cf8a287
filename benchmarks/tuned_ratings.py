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

Without --folds, the next-rating protocol is scored: its test ratings (each user's last)
are in neither the fitted nor the validation ratings of the tuning. Surprise's random folds
put every rating in some fold's test, so one set of tuned settings is clean for no fold
but the one it was tuned in. With --folds, each random fold is tuned and tested in turn
(nested cross-validation, `tuning.rating_fold`):

    python benchmarks/tuned_ratings.py --data ../shared/data/ml-100k --seeds 0 --folds 0 1 2 3 4 \
        --params "tuning.trials=8,tuning.epochs=20,tuning.pretraining_epochs=20" \
        --json benchmarks/results/tuned_ratings_ml100k_folds.json

fold k's studies (`<tuning.study>_fold<k>`) fit on fold k's training ratings less the
held-out `ratings.valid_fraction` they score on (the ratings the rating pipeline's fold k
fits its heads on and stops them on), and fold k's namespace of the rating pipeline then
runs with its winners and with conf/base, tested on fold k's test ratings alone. The seed
(`ratings.seed`) draws the folds, so each seed has its own studies
(`<tuning.study>_seed<s>_fold<k>` beyond seed 0). Reported:
each model's RMSE over every fold's test ratings (each rating once, as Surprise's 5-fold
table pools them) and per fold, the per-fold differences with each fold's paired t-test
over users and a t interval over the folds. --env is not taken: the tuned environment is
written over `conf/base` (Kedro stacks one environment on base).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
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

from maskrec.metrics import t_interval  # noqa: E402
from maskrec.pipeline_registry import register_pipelines  # noqa: E402

NAMESPACE = "rating_next_in_time"
TUNED = ("rating_head", "svd", "svdpp")
PAIRS = (("fine_tuned", "svdpp"), ("fine_tuned", "svd"), ("svdpp", "svd"))


def tested(project: ScratchProject, env: str | None, seed: int, namespace: str = NAMESPACE) -> dict:  # fmt: skip
    """The rating pipeline's `namespace` (a protocol-fold) under `env` with
    `ratings.seed=seed`: each model's test RMSE and MAE, the paired t-test of PAIRS over
    users, and each user's sum of squared errors and count by model (to pool folds)."""
    runner = under_environment(project, env)
    nodes = ["split_ratings_node"] + [n.name for n in register_pipelines()["rating_prediction"].nodes if n.namespace == namespace]  # fmt: skip
    seconds = runner.run(["rating_prediction"], nodes, f"ratings.seed={seed}")
    predictions = runner.load(f"{namespace}.rating_predictions")
    errors = predictions.assign(error=predictions["prediction"] - predictions["rating"])
    errors = errors.assign(squared=errors["error"] ** 2)
    models = {m: {"rmse": float(np.sqrt(np.mean(g["squared"]))), "mae": float(np.mean(np.abs(g["error"]))), "ratings": len(g)}
              for m, g in errors.groupby("model", sort=False)}  # fmt: skip
    per_user = errors.groupby(["model", "user_id"])["squared"].agg(["sum", "count"])
    return {"models": models, "paired_tests": paired(per_user), "seconds": seconds,
            "per_user": per_user.reset_index().to_dict("list")}  # fmt: skip


def paired(per_user) -> dict:
    """PAIRS' paired t-tests over users of per-user mean squared error (`per_user`: each
    (model, user)'s sum of squared errors and count)."""
    squared = (per_user["sum"] / per_user["count"]).unstack("model")
    tests = {}
    for model, competitor in PAIRS:
        result = stats.ttest_rel(squared[model], squared[competitor])
        tests[f"{model} - {competitor}"] = {"mean_squared_error_difference": float((squared[model] - squared[competitor]).mean()), "p_value": float(result.pvalue)}  # fmt: skip
    return tests


def pooled(runs: list[dict]) -> dict:
    """Fold runs (`tested`) as one: each model's RMSE and MAE over every fold's test
    ratings, and the paired tests over users on the pooled per-user errors."""
    models = {}
    for name in runs[0]["models"]:
        count = sum(r["models"][name]["ratings"] for r in runs)
        models[name] = {"rmse": float(np.sqrt(sum(r["models"][name]["rmse"] ** 2 * r["models"][name]["ratings"] for r in runs) / count)),
                        "mae": float(sum(r["models"][name]["mae"] * r["models"][name]["ratings"] for r in runs) / count), "ratings": count}  # fmt: skip
    per_user = pd.concat([pd.DataFrame(r["per_user"]) for r in runs]).groupby(["model", "user_id"])[["sum", "count"]].sum()  # fmt: skip
    return {"models": models, "paired_tests": paired(per_user)}


def fold_difference(runs: list[dict], model: str, competitor: str) -> float:
    """A fold's test RMSE difference model - competitor, its mean over the seeds' runs."""
    return float(np.mean([r["models"][model]["rmse"] - r["models"][competitor]["rmse"] for r in runs]))  # fmt: skip


def by_fold(project: ScratchProject, args, tuning, kept) -> dict:
    """--folds: for each fold and seed, its studies (validation ratings of its own
    training ratings), then its namespace of the rating pipeline under the winners and
    conf/base; the folds pooled and compared.

    `ratings.seed` draws the folds, so each seed is tuned on its own: settings tuned on
    seed 0's fold k have seen the ratings another seed puts in its fold k's test. A seed's
    studies are `<tuning.study>_fold<k>` (seed 0) or `<tuning.study>_seed<s>_fold<k>`."""
    studies, runs = {}, {}
    chosen = {"tuned": "tuned"} | ({} if args.no_shipped else {"shipped": None})
    for fold in args.folds:
        for seed in args.seeds:
            name = f"{tuning.study}_fold{fold}" if seed == 0 else f"{tuning.study}_seed{seed}_fold{fold}"  # fmt: skip
            fold_params = (
                f"ratings.seed={seed},tuning.rating_fold={fold},tuning.study={name}"
            )
            seconds = sum(project.run(["tuning"], params=f"tuning.models=[{model}],{fold_params}") for model in TUNED)  # fmt: skip
            summary = project.load("tuning_summary")
            studies.setdefault(fold, {})[seed] = {"tuning": summary, "tuning_seconds": study_seconds(summary, seconds),
                                                  "environment": (project.folder / "conf/tuned/parameters.yml").read_text()}  # fmt: skip
            for label, env in chosen.items():
                runs.setdefault(label, {}).setdefault(fold, []).append(
                    kept.get(f"{label}-fold{fold}-{seed}", lambda _, e=env, s=seed, f=fold: tested(project, e, s, f"rating_fold_{f}")))  # fmt: skip
    result = {}
    for label, folds in runs.items():
        per_seed = [
            pooled([folds[f][i] for f in args.folds]) for i in range(len(args.seeds))
        ]
        result[label] = {"pooled": across_seeds(per_seed, PAIRS, "rmse", ("rmse", "mae")),
                         "pooled_paired_tests_per_seed": [r["paired_tests"] for r in per_seed],
                         "per_fold": {f: across_seeds(folds[f], PAIRS, "rmse", ("rmse", "mae")) for f in args.folds},
                         "over_folds": {f"{a} - {b}": t_interval([fold_difference(folds[f], a, b) for f in args.folds]) for a, b in PAIRS}}  # fmt: skip
        print(
            f"\n{CONFIGURATION_LABELS[label]}: test RMSE, every fold's test ratings pooled, by seed"
        )
        print_seeds(CONFIGURATION_LABELS[label], per_seed, args.seeds, "rmse")
        print_table([{"model": m, **{f"fold {f}": round(float(np.mean([r["models"][m]["rmse"] for r in folds[f]])), 4) for f in args.folds}}
                     for m in per_seed[0]["models"]], ["model", *(f"fold {f}" for f in args.folds)])  # fmt: skip
    print_differences({label: r["pooled"] for label, r in result.items()}, "rmse")
    for label, r in result.items():
        print(
            f"\n{CONFIGURATION_LABELS[label]}: t interval over the folds of each fold's RMSE difference"
        )
        print_table([{"pair": pair, "95% over folds": "–" if v is None else "[{:+.4f}, {:+.4f}]".format(*v)} for pair, v in r["over_folds"].items()], ["pair", "95% over folds"])  # fmt: skip
    print("\ntuning (validation only), by fold:")
    print_table([{"fold": f, "seed": seed, "model": m, "best valid RMSE": round(s.get("valid_rmse", float("nan")), 4), "trials": json.dumps(s["trials"]),
                  "CPU s": round(s["seconds"]), "point": json.dumps(s.get("point"))}
                 for f, by_seed in studies.items() for seed, st in by_seed.items() for m, s in st["tuning"].items()],
                ["fold", "seed", "model", "best valid RMSE", "trials", "CPU s", "point"])  # fmt: skip
    return {"folds": args.folds, "studies": studies, "result": result,
            "runs": {label: {f: [{k: v for k, v in r.items() if k != "per_user"} for r in rs] for f, rs in folds.items()} for label, folds in runs.items()}}  # fmt: skip


def main() -> None:
    args, params, project, tuning, kept = tuned_project(__doc__, "tuned_ratings", folds=True)  # fmt: skip

    project.run(["data_processing"])
    if args.folds:
        done = by_fold(project, args, tuning, kept)
        write_json(args.json, {"budget": {"trials": tuning.trials, "epochs": tuning.epochs, "pretraining_epochs": tuning.pretraining_epochs,
                                          "space": {m: tuning.model_dump()["space"][m] for m in TUNED}},
                               "seeds": args.seeds, **done, "runtime_params": params})  # fmt: skip
        return
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
