"""Validation-only hyper-parameter search for the MovieLens 100K race.

    python benchmarks/tune_ml100k.py --data ../shared/data/ml-100k \
        --targets ../shared/data/ml-100k/recbole_loo_targets.csv \
        --grid benchmarks/grids/ml100k.yml --seeds 3 --workers 1 --json benchmarks/results/tune.json

A grid file has `base` overrides and a list of `trials`, each a name plus overrides in the
race's `--params` format (groups `model`, `pretraining`, `fine_tuning`, `sasrec`), merged
onto `base` group by group. A trial pretrains a Cloze model, then fine-tunes it if its
overrides (or the base) name `fine_tuning`; a trial whose overrides name `sasrec` trains
SASRec instead. Every number printed is a best *validation* NDCG@10/HR@10: the test
targets are dropped before any trial starts, so choosing settings here cannot leak the test
split. Results are appended to --json as each trial-seed finishes (a long search that is
stopped keeps what it found), and trials already there are skipped when it is rerun.

--workers > 1 runs trial-seeds in parallel processes, each with cpu_count/workers threads
(useful on a GPU machine, where one small model leaves the device mostly idle).
"""

from __future__ import annotations

import argparse
import copy
import json
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

import pandas as pd
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import prepare, print_table  # noqa: E402

from maskrec.params import (  # noqa: E402
    FineTuningParams,
    ModelParams,
    PretrainingParams,
    SASRecParams,
    SplitParams,
)
from maskrec.pipelines.data_split.nodes import split_with_given_targets  # noqa: E402

CONF = Path(__file__).resolve().parents[1] / "conf" / "base"
GROUPS = {"model": ("pretraining", "model"), "pretraining": ("pretraining", "pretraining"),
          "fine_tuning": ("fine_tuning", "fine_tuning"), "sasrec": ("baselines", "sasrec")}  # fmt: skip


def deep_merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def conf(group: str) -> dict:
    file, key = GROUPS[group]
    return yaml.safe_load((CONF / f"parameters_{file}.yml").read_text())[key]


def best_epoch(history: pd.DataFrame) -> dict:
    """The row early stopping chose, with the time it took to get there."""
    best = int(history["best_epoch"].iloc[0])
    row = history[history["epoch"] == best].iloc[0]
    trained = history[(history["epoch"] >= 1) & (history["epoch"] <= best)]
    return {"ndcg@10": float(row["ndcg@10"]), "hr@10": float(row["hr@10"]), "best_epoch": best,
            "epochs_run": int(history["epoch"].max()), "seconds_to_best": float(trained["seconds"].sum())}  # fmt: skip


def trial_params(overrides: dict, seed: int, device: str) -> dict:
    """Every parameter group a trial uses, validated (pydantic names a bad key or value)."""
    common = {"device": device, "seed": seed, "checkpoint_dir": None}
    group = lambda name: deep_merge(conf(name), overrides.get(name, {}))  # noqa: E731
    params = {"model": ModelParams(**group("model") | {"seed": seed})}
    if "sasrec" in overrides:
        params["sasrec"] = SASRecParams(**group("sasrec") | common)
        return params
    params["pretraining"] = PretrainingParams(**group("pretraining") | common)
    if "fine_tuning" in overrides:
        params["fine_tuning"] = FineTuningParams(**group("fine_tuning") | common)
    return params


def run_trial(job: tuple) -> dict:
    """One trial, one seed: train, read the validation history, return the best epoch."""
    name, overrides, seed, device, data, threads = job
    import torch

    from maskrec.pipelines.baselines.nodes import train_sasrec
    from maskrec.pipelines.fine_tuning.nodes import Teacher, fine_tune_pretrained
    from maskrec.pipelines.pretraining.nodes import init_model, pretrain

    torch.set_num_threads(threads)
    params = trial_params(overrides, seed, device)
    train, valid, features = data["train"], data["valid"], data["item_features"]
    started, result = time.perf_counter(), {"trial": name, "seed": seed}
    if "sasrec" in params:
        _, history = train_sasrec(
            features, train, valid, params["model"], params["sasrec"]
        )
        result["sasrec"] = best_epoch(history)
    else:
        model = init_model(features, params["model"])
        model, history = pretrain(model, train, valid, params["pretraining"])
        result["pretrained"] = best_epoch(history)
        if "fine_tuning" in params:
            _, history = fine_tune_pretrained(
                model, Teacher(), train, valid, params["fine_tuning"]
            )
            result["fine_tuned"] = best_epoch(history)
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
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", default="../shared/data/ml-100k")
    parser.add_argument(
        "--targets", default=None, help="a CSV like recbole_loo_targets.csv"
    )
    parser.add_argument("--grid", required=True, help="YAML with `base` and `trials`")
    parser.add_argument("--only", default="", help="comma-separated trial names to run")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument(
        "--json", required=True, help="results, appended as they finish"
    )
    args = parser.parse_args()  # fmt: skip

    grid = yaml.safe_load(Path(args.grid).read_text())
    base = grid.get("base", {})
    wanted = {n for n in args.only.split(",") if n}
    trials = [(t["name"], deep_merge(base, t.get("overrides", {}))) for t in grid["trials"]
              if not wanted or t["name"] in wanted]  # fmt: skip
    for _, overrides in trials:  # a typo stops the search before any training
        unknown = set(overrides) - set(GROUPS)
        if unknown:
            raise SystemExit(
                f"{args.grid}: unknown parameter group(s) {sorted(unknown)}; use {sorted(GROUPS)}"
            )
    for name, overrides in trials:  # ... and so does a bad value, e.g. a misspelt key
        try:
            trial_params(overrides, 0, args.device)
        except ValueError as error:
            raise SystemExit(f"{args.grid}: trial {name!r}: {error}") from error

    data = prepare(args.data, split_params=SplitParams(cold_user_fraction=0.0))
    if args.targets:
        data["train"], data["valid"], _ = split_with_given_targets(
            data["interactions"], pd.read_csv(args.targets), data["user_map"], data["item_map"])  # fmt: skip
    data = {
        k: data[k] for k in ("train", "valid", "item_features")
    }  # no test split in here

    out = Path(args.json)
    done = (
        [json.loads(line) for line in out.read_text().splitlines()]
        if out.is_file()
        else []
    )
    finished = {(r["trial"], r["seed"]) for r in done}
    threads = max(1, (os.cpu_count() or 1) // args.workers)
    jobs = [(name, overrides, seed, args.device, data, threads) for name, overrides in trials
            for seed in range(args.seeds) if (name, seed) not in finished]  # fmt: skip
    print(
        f"{len(jobs)} trial-seeds to run, {len(finished)} already in {out}",
        file=sys.stderr,
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    results = list(done)
    pool = mp.get_context("spawn").Pool(args.workers) if args.workers > 1 else None
    mapped = pool.imap_unordered(run_trial, jobs) if pool else map(run_trial, jobs)
    with out.open("a") as sink:
        for result in mapped:
            results.append(result)
            sink.write(json.dumps(result) + "\n")
            sink.flush()
            stages = {
                k: round(v["ndcg@10"], 4)
                for k, v in result.items()
                if isinstance(v, dict) and "ndcg@10" in v
            }
            print(f"{result['trial']} seed {result['seed']}: {stages} ({result['seconds']:.0f} s)", file=sys.stderr, flush=True)  # fmt: skip
    if pool:
        pool.close()
    names = {name for name, _ in trials}
    rows = summarise([r for r in results if r["trial"] in names])
    print_table(
        rows,
        [
            "trial",
            "model",
            "seeds",
            "valid NDCG@10",
            "± std",
            "valid HR@10",
            "best epoch",
            "s to best",
        ],
    )
    print(
        f"best by mean validation NDCG@10: {rows[0]['trial']} ({rows[0]['model']})"
        if rows
        else "no results"
    )


if __name__ == "__main__":
    main()
