"""Rating prediction on a MovieLens release: RMSE and MAE of every rating model, on the
next rating in time and on Surprise's 5-fold random split, against Surprise's table.

    python benchmarks/ratings.py --data ../shared/data/ml-100k --seeds 3 \\
        --json benchmarks/results/ratings_ml100k.json

Each seed is the project's own `kedro run --pipelines rating_prediction` (data_processing,
the rating splits, every model of `ratings.models`, evaluation) in a scratch project, with
ratings.seed = the seed (the folds and the models' initial weights) and --env / --params
as `kedro run` takes them. Printed: mean ± std over seeds of RMSE and MAE per protocol and
model, seed 0's 95% interval, the paired tests of seed 0, the seconds per seed; beside
them, scikit-surprise's published 5-fold numbers for the same release.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    FinishedSeeds,
    ScratchProject,
    arguments,
    peak_rss_mib,
    print_table,
    run_params,
    write_json,
)

# scikit-surprise's benchmark table (README; default settings, 5-fold random split): RMSE, MAE
SURPRISE = {
    "ml-100k": {"random (NormalPredictor)": (1.518, 1.219), "biases (BaselineOnly)": (0.944, 0.748),
                "svd": (0.934, 0.737), "svdpp": (0.919, 0.721), "k-NN baseline (user-based, MSD)": (0.931, 0.733)},
    "ml-1m": {"random (NormalPredictor)": (1.504, 1.206), "biases (BaselineOnly)": (0.909, 0.719),
              "svd": (0.873, 0.686), "svdpp": (0.862, 0.672), "k-NN baseline (user-based, MSD)": (0.895, 0.706)},
}  # fmt: skip


def one_seed(project: ScratchProject, seed: int) -> dict:
    started = time.perf_counter()
    project.run(["rating_prediction"], None, f"ratings.seed={seed}")
    history = project.load("rating_history")
    stages = history.groupby("model").agg(best_epoch=("best_epoch", "first"), seconds=("seconds", "sum"))  # fmt: skip
    kind = stages.index.to_series().str.extract(r"_(pretrained|fine_tuned|scratch)$")[0].to_numpy()  # fmt: skip
    per_kind = stages.groupby(kind).agg(best_epoch=("best_epoch", "mean"), seconds=("seconds", "sum"))  # fmt: skip
    return {"metrics": project.load("rating_metrics"), "seconds": time.perf_counter() - started,
            "sequence_stages": per_kind.to_dict("index")}  # fmt: skip


def main() -> None:
    parser = arguments(__doc__, "ratings_run", env="")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--fresh", action="store_true", help="retrain seeds an earlier run of the same command finished")  # fmt: skip
    args = parser.parse_args()
    params = run_params(args)
    project = ScratchProject(Path(args.workdir), args.env or None, params)
    project.parameters()  # a bad value stops here
    kept = FinishedSeeds(Path(args.workdir), {**vars(args), "seeds": None, "json": None}, args.fresh)  # fmt: skip
    runs = [
        kept.get(seed, lambda s: one_seed(project, s)) for seed in range(args.seeds)
    ]
    rows = []
    first = runs[0]["metrics"]["protocols"]
    for protocol, models in first.items():
        for model in models:
            entry = {"protocol": protocol, "model": model}
            for metric in ("rmse", "mae"):
                values = np.array([r["metrics"]["protocols"][protocol][model]["all"][metric]["mean"] for r in runs])  # fmt: skip
                entry[metric] = float(values.mean())
                entry[f"{metric}_std"] = (
                    float(values.std(ddof=1)) if len(values) > 1 else 0.0
                )
                entry[f"{metric}_per_seed"] = values.tolist()  # to compare seed by seed
            interval = models[model]["all"]["rmse"]
            entry["rmse_ci_seed0"] = [interval["ci_low"], interval["ci_high"]]
            sparse = next(k for k in models[model] if k.startswith("history<="))
            entry[f"rmse_{sparse}"] = float(np.mean([r["metrics"]["protocols"][protocol][model][sparse]["rmse"]["mean"] for r in runs]))  # fmt: skip
            rows.append(entry)
    print(f"\nrating prediction on {args.data}, mean ± std over {args.seeds} seed(s)")
    print_table([{"protocol": r["protocol"], "model": r["model"], "RMSE": f"{r['rmse']:.4f} ± {r['rmse_std']:.4f}",
                  "MAE": f"{r['mae']:.4f} ± {r['mae_std']:.4f}", "RMSE 95% CI (seed 0)": "[{:.4f}, {:.4f}]".format(*r["rmse_ci_seed0"]),
                  **{k: round(v, 4) for k, v in r.items() if k.startswith("rmse_history")}} for r in rows],
                ["protocol", "model", "RMSE", "MAE", "RMSE 95% CI (seed 0)", *[k for k in rows[0] if k.startswith("rmse_history")]])  # fmt: skip
    release = Path(args.data).name.lower()
    published = next((v for k, v in SURPRISE.items() if k in release), None)
    if published:
        print(f"\nscikit-surprise's published table ({release}, 5-fold random):")
        print_table([{"model": k, "RMSE": v[0], "MAE": v[1]} for k, v in published.items()], ["model", "RMSE", "MAE"])  # fmt: skip
    tests = [t for t in runs[0]["metrics"]["paired_tests"] if t["users"]]
    every_seed = [[t for t in r["metrics"]["paired_tests"] if t["users"]] for r in runs]
    print(
        "\npaired tests, seed 0 (per-user mean squared error; negative: the model errs less):"
    )
    print_table(tests, ["protocol", "model", "competitor", "group", "users", "mean_difference", "p_value", "p_adjusted"])  # fmt: skip
    if len(runs) > 1:  # does each seed agree with seed 0?
        print(
            "\nthe same tests in every seed: mean differences, and the largest adjusted p"
        )
        print_table([{**{k: t[k] for k in ("protocol", "model", "competitor", "group")},
                      "mean differences": ", ".join(f"{s[i]['mean_difference']:+.4f}" for s in every_seed),
                      "largest p_adjusted": max(s[i]["p_adjusted"] for s in every_seed)}
                     for i, t in enumerate(tests)],
                    ["protocol", "model", "competitor", "group", "mean differences", "largest p_adjusted"])  # fmt: skip
    stages = runs[0].get("sequence_stages", {})
    if stages:
        print("\nsequence models' training, seed 0 (mean best epoch over protocols and folds; seconds summed):")  # fmt: skip
        print_table([{"stage": k, "best epoch": round(v["best_epoch"], 1), "seconds": round(v["seconds"])} for k, v in stages.items()],
                    ["stage", "best epoch", "seconds"])  # fmt: skip
    seconds = [r["seconds"] for r in runs]
    print(f"\nseconds per seed: {', '.join(f'{s:.0f}' for s in seconds)}; peak RSS {peak_rss_mib():.0f} MiB")  # fmt: skip
    write_json(args.json, {"data": args.data, "env": args.env, "runtime_params": params,
                           "seeds": args.seeds, "rows": rows, "paired_tests_seed0": tests, "paired_tests_by_seed": every_seed,
                           "seconds_per_seed": seconds,
                           "sequence_stages_seed0": stages,
                           "surprise_published": published})  # fmt: skip


if __name__ == "__main__":
    main()
