"""Validation-only hyper-parameter search for the MovieLens 100K race.

    python benchmarks/tune_ml100k.py --data ../shared/data/ml-100k \\
        --targets ../shared/data/ml-100k/recbole_loo_targets.csv \\
        --grid benchmarks/grids/ml100k.yml --seeds 3 --workers 1 --json benchmarks/results/tune.jsonl

A grid file has `base` overrides and a list of `trials`, each a name plus overrides; both
are parameter groups as `kedro run --params` would set them (model, training, pretraining,
fine_tuning, sasrec), merged key by key onto the Kedro environment --env (default ml100k).
A trial runs the project's pretraining pipeline and then fine-tunes
(`fine_tune_pretrained_node`) if its overrides (or the base) name `fine_tuning`; a trial
whose overrides name `sasrec` runs `train_sasrec_node` instead. Every number printed is a
best *validation* NDCG@10/HR@10: the data pipelines run once, the test targets are deleted
before any trial, and no trial runs the evaluation pipeline, so choosing settings here
cannot leak the test split. Every trial's parameters are validated before any training.
Results are appended to --json as each trial-seed finishes (a stopped search keeps what it
found), and trial-seeds already there are skipped when it is rerun.

--workers > 1 runs trial-seeds in parallel processes, each in its own copy of the project
with cpu_count/workers threads (useful on a GPU machine, where one small model leaves the
device mostly idle).
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import shutil
import sys
import time
from pathlib import Path

import pandas as pd
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    ScratchProject,
    arguments,
    merge,
    parse_params,
    print_table,
    source,
)

GROUPS = ("model", "training", "pretraining", "fine_tuning", "sasrec")
_WORKER: dict = {}  # this process's copy of the project


def best_epoch(history: pd.DataFrame) -> dict:
    """The row early stopping chose, with the time it took to get there."""
    best = int(history["best_epoch"].iloc[0])
    row = history[history["epoch"] == best].iloc[0]
    trained = history[(history["epoch"] >= 1) & (history["epoch"] <= best)]
    return {"ndcg@10": float(row["ndcg@10"]), "hr@10": float(row["hr@10"]), "best_epoch": best,
            "epochs_run": int(history["epoch"].max()), "seconds_to_best": float(trained["seconds"].sum())}  # fmt: skip


def trial_params(overrides: dict, seed: int, device: str) -> dict:
    return merge(overrides, {"training": {"seed": seed, "device": device, "checkpoint_dir": None}})  # fmt: skip


def _project(prepared: Path, env: str | None, params: dict) -> ScratchProject:
    """This process's own copy of the prepared project (data included)."""
    if "project" not in _WORKER:
        project = ScratchProject(prepared.with_name(f"{prepared.name}-{os.getpid()}"), env, params)  # fmt: skip
        shutil.copytree(prepared / "data", project.folder / "data")
        _WORKER["project"] = project
    return _WORKER["project"]


def run_trial(job: tuple) -> dict:
    """One trial, one seed: train on the prepared data, read the validation histories."""
    name, overrides, seed, device, prepared, env, params, threads = job
    import torch

    torch.set_num_threads(threads)
    project = _project(prepared, env, params)
    settings = trial_params(overrides, seed, device)
    started, result = time.perf_counter(), {"trial": name, "seed": seed}
    if "sasrec" in overrides:
        project.run(["baselines"], ["train_sasrec_node"], settings)
        result["sasrec"] = best_epoch(project.load("sasrec_history", params=settings))
    else:
        project.run(["pretraining"], None, settings)
        result["pretrained"] = best_epoch(project.load("pretrained_history", params=settings))  # fmt: skip
        if "fine_tuning" in overrides:
            project.run(["fine_tuning"], ["train_teacher_node", "fine_tune_pretrained_node"], settings)  # fmt: skip
            result["fine_tuned"] = best_epoch(project.load("fine_tuned_history", params=settings))  # fmt: skip
    result["seconds"] = time.perf_counter() - started
    result["overrides"] = overrides
    return result


def summarise(results: list[dict]) -> list[dict]:
    rows = []
    for trial, group in pd.DataFrame(results).groupby("trial", sort=False):
        for stage in ("pretrained", "fine_tuned", "sasrec"):
            if stage not in group or group[stage].isna().all():
                continue
            best = pd.DataFrame(group[stage].dropna().tolist())
            rows.append({"trial": trial, "model": stage, "seeds": len(best),
                         "valid NDCG@10": best["ndcg@10"].mean(), "± std": best["ndcg@10"].std(ddof=1) if len(best) > 1 else 0.0,
                         "valid HR@10": best["hr@10"].mean(), "best epoch": best["best_epoch"].mean(),
                         "s to best": best["seconds_to_best"].mean()})  # fmt: skip
    return sorted(rows, key=lambda r: -r["valid NDCG@10"])


def main() -> None:
    parser = arguments(__doc__, "tune_run", env="ml100k")
    parser.add_argument("--targets", default=None, help="a CSV like recbole_loo_targets.csv")  # fmt: skip
    parser.add_argument("--grid", required=True, help="YAML with `base` and `trials`")
    parser.add_argument("--only", default="", help="comma-separated trial names to run")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    if not args.json:
        raise SystemExit(
            "--json is required: results are appended there as they finish"
        )

    grid = yaml.safe_load(Path(args.grid).read_text())
    base = grid.get("base", {})
    wanted = {n for n in args.only.split(",") if n}
    trials = [(t["name"], merge(base, t.get("overrides", {}))) for t in grid["trials"]
              if not wanted or t["name"] in wanted]  # fmt: skip

    params = {"source": source(args.data), "data_split": {"cold_user_fraction": 0.0}, **parse_params(args.params)}  # fmt: skip
    if args.targets:
        params["data_split"]["strategy"] = "given"
        params["split_targets"] = str(Path(args.targets).resolve())
    prepared = ScratchProject(Path(args.workdir), args.env or None, params)
    for (
        name,
        overrides,
    ) in trials:  # a typo or a bad value stops the search before any training
        unknown = set(overrides) - set(GROUPS)
        if unknown:
            raise SystemExit(f"{args.grid}: trial {name!r}: unknown parameter group(s) {sorted(unknown)}; use {list(GROUPS)}")  # fmt: skip
        try:
            prepared.parameters(trial_params(overrides, 0, args.device))
        except ValueError as error:
            raise SystemExit(f"{args.grid}: trial {name!r}: {error}") from error

    prepared.run(["data_processing", "data_split"])
    (
        prepared.folder / "data" / "05_model_input" / "test_targets.parquet"
    ).unlink()  # never used here

    out = Path(args.json)
    done = [json.loads(line) for line in out.read_text().splitlines()] if out.is_file() else []  # fmt: skip
    finished = {(r["trial"], r["seed"]) for r in done}
    threads = max(1, (os.cpu_count() or 1) // args.workers)
    env = args.env or None
    jobs = [(name, overrides, seed, args.device, prepared.folder, env, params, threads) for name, overrides in trials
            for seed in range(args.seeds) if (name, seed) not in finished]  # fmt: skip
    print(f"{len(jobs)} trial-seeds to run, {len(finished)} already in {out}", file=sys.stderr)  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    results = list(done)
    pool = mp.get_context("spawn").Pool(args.workers) if args.workers > 1 else None
    mapped = pool.imap_unordered(run_trial, jobs) if pool else map(run_trial, jobs)
    with out.open("a") as sink:
        for result in mapped:
            results.append(result)
            sink.write(json.dumps(result) + "\n")
            sink.flush()
            stages = {k: round(v["ndcg@10"], 4) for k, v in result.items() if isinstance(v, dict) and "ndcg@10" in v}  # fmt: skip
            print(f"{result['trial']} seed {result['seed']}: {stages} ({result['seconds']:.0f} s)", file=sys.stderr, flush=True)  # fmt: skip
    if pool:
        pool.close()
    names = {name for name, _ in trials}
    rows = summarise([r for r in results if r["trial"] in names])
    print_table(rows, ["trial", "model", "seeds", "valid NDCG@10", "± std", "valid HR@10", "best epoch", "s to best"])  # fmt: skip
    print(f"best by mean validation NDCG@10: {rows[0]['trial']} ({rows[0]['model']})" if rows else "no results")  # fmt: skip


if __name__ == "__main__":
    main()
