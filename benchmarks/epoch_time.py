"""Seconds per training epoch and peak memory at a generated ML-20M-sized log, per stage;
on one device, or data-parallel under torchrun.

    python benchmarks/epoch_time.py --device cuda --json benchmarks/results/epoch_time_ml20m.json
    torchrun --nproc-per-node 2 benchmarks/epoch_time.py --device cuda --users 6040 \\
        --items 3700 --ratings 1000000 --stages pretraining --json ...

What issue 11 asks of a GPU: seconds per epoch of pretraining and fine-tuning at ML-20M
size (138,493 users, 26,744 items, 20M ratings, max length 200), and the GPU memory they
take; what issue 15 asks: throughput of one process against two. Each stage is the
pipelines' own stage function (`training.stages.pretrain`, then `fine_tune` from the
pretrained weights: `fit`, objective, loss and validation of the real code) for --epochs
epochs with early stopping off; an epoch's training seconds and its validation seconds
(NDCG@10 over every user) come from the run's history, epoch 1 (warm-up) apart.

Data: one sequence per user, lengths log-normal around the mean the sizes imply (at least
5 events), items by a Zipf law (`common.synthetic_sequences`); the last event is the
validation target. Shapes decide the cost, not the content, so quality is not reported.

Parameters: conf/base with this script's settings (device, seed, epochs and the
ML-20M batch) and --params after them, as `kedro run --params` reads them, resolved by the
project's loader. A machine without Kedro (the lent GPU machines) reads them from a JSON
that `--write-params` wrote here (with the same --device, --seed and --epochs).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    ROOT,
    machine,
    peak_rss_mib,
    print_table,
    synthetic_sequences,
    write_json,
)

STAGES = ("pretraining", "fine_tuning")
# issue 11's setting for ML-20M: batch 128 x length 200, no per-epoch checkpoint files
DEFAULT_PARAMS = "model.max_len=200,schedule.batch_size=128,pretraining.schedule.batch_size=128,training.checkpoint_dir=null"  # fmt: skip


def parameters(args: argparse.Namespace) -> dict:
    """The validated parameter groups: from --params-json, else Kedro's loader."""
    from maskrec.params import GROUPS

    if args.params_json:
        raw = json.loads(Path(args.params_json).read_text())
        return {group: GROUPS[group](**values) for group, values in raw.items()}
    from common import dotlist, kedro_params

    from maskrec.config import load_parameters

    run = {stage: {"schedule": {"epochs": args.epochs, "patience": args.epochs + 1}} for stage in STAGES}  # fmt: skip
    settings = dotlist(training={"device": args.device, "seed": args.seed}, **run)
    return load_parameters(ROOT / "conf", "local", kedro_params(DEFAULT_PARAMS, settings, args.params))  # fmt: skip


def lengths_for(users: int, ratings: int, rng: np.random.Generator) -> np.ndarray:
    """Per-user sequence lengths, log-normal (MovieLens-like spread), summing to about
    `ratings`, each at least 5."""
    raw = rng.lognormal(0.0, 1.0, users)
    lengths = np.maximum(5, np.round(raw / raw.sum() * ratings)).astype(np.int64)
    return lengths


@contextlib.contextmanager
def profiled(args: argparse.Namespace, stage: str):
    """With --profile: torch.profiler over the stage, then the operators that take the
    most device time and the most host time (launch and Python overhead show there), printed
    and written beside --json."""
    if not args.profile:
        yield
        return
    from torch.profiler import ProfilerActivity, profile

    cuda = torch.cuda.is_available() and args.device != "cpu"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as prof:
        yield
    averages = prof.key_averages()
    tables = [f"{stage}: {args.profile} steps an epoch, {args.epochs} epochs, validation included"]  # fmt: skip
    for key in (["self_device_time_total"] if cuda else []) + ["self_cpu_time_total"]:
        tables.append(f"by {key}:\n" + averages.table(sort_by=key, row_limit=20, max_name_column_width=60))  # fmt: skip
    text = "\n\n".join(tables)
    print(text, file=sys.stderr, flush=True)
    if args.json:
        path = Path(args.json).with_suffix(f".profile_{stage}.txt")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def run_stages(args: argparse.Namespace, groups: dict) -> list[dict]:
    """Rank 0's work: generate, then each stage; one row per stage."""
    from maskrec.training.setup import init_model
    from maskrec.training.stages import Teacher, fine_tune, pretrain

    started = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    items, train, valid = synthetic_sequences(args.items, lengths_for(args.users, args.ratings, rng), rng)  # fmt: skip
    generated = time.perf_counter() - started
    print(f"generated {args.users:,} users, {args.items:,} items, "
          f"{int(train['item_ids'].map(len).sum() + len(valid)):,} events in {generated:.0f} s", file=sys.stderr)  # fmt: skip
    training = groups["training"]
    rows, model = [], init_model(items, groups["pretraining"])
    for stage in args.stages:
        params = groups[stage]
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        if args.profile:  # each epoch is its first --profile steps
            schedule = params.schedule.model_copy(update={"max_steps_per_epoch": args.profile})  # fmt: skip
            params = params.model_copy(update={"schedule": schedule})
        clock = time.perf_counter()
        with profiled(args, stage):
            if stage == "pretraining":
                model, history = pretrain(
                    model, train, valid, params, training, "pretrained"
                )
            else:
                model, history = fine_tune(model, Teacher(), train, valid, params, training, "fine_tuned")  # fmt: skip
        epochs = history[history["epoch"] >= (2 if args.epochs > 1 else 1)]
        row = {
            "stage": stage, "processes": int(os.environ.get("WORLD_SIZE", "1")),
            "batch": params.schedule.batch_size, "loss": params.loss.softmax, "epochs": args.epochs,
            "stage_seconds": time.perf_counter() - clock,
            "train_seconds_per_epoch": float(epochs["train_seconds"].median()),
            "valid_seconds_per_epoch": float((epochs["seconds"] - epochs["train_seconds"]).median()),
            "sequences_per_second": float(epochs["sequences_per_second"].median()),
            "last_valid_ndcg10": float(history["ndcg@10"].iloc[-1]),
        }  # fmt: skip
        if torch.cuda.is_available() and args.device != "cpu":
            row["gpu_peak_allocated_gib"] = torch.cuda.max_memory_allocated() / 2**30
            row["gpu_peak_reserved_gib"] = torch.cuda.max_memory_reserved() / 2**30
        row["host_peak_rss_gib"] = peak_rss_mib() / 1024
        print(row, file=sys.stderr, flush=True)
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--users", type=int, default=138_493)
    parser.add_argument("--items", type=int, default=26_744)
    parser.add_argument("--ratings", type=int, default=20_000_263)
    parser.add_argument("--stages", nargs="+", default=list(STAGES), choices=STAGES)
    parser.add_argument("--epochs", type=int, default=2, help="epochs per stage (the first warms up)")  # fmt: skip
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--params", default="", help=f"overrides after {DEFAULT_PARAMS}"
    )
    parser.add_argument("--params-json", default=None, help="resolved parameters (no Kedro needed)")  # fmt: skip
    parser.add_argument("--write-params", default=None, help="write the resolved parameters there and stop")  # fmt: skip
    parser.add_argument("--json", default=None)
    parser.add_argument("--profile", type=int, default=0, help="profile each stage with epochs of this many steps (torch.profiler); the timings then describe those short epochs")  # fmt: skip
    args = parser.parse_args()
    groups = parameters(args)
    if args.write_params:
        payload = {
            group: value.model_dump(mode="json") for group, value in groups.items()
        }
        Path(args.write_params).write_text(json.dumps(payload, indent=1))
        return

    from maskrec.training import distributed
    from maskrec.training.loop import serve_training_jobs

    group = distributed.join_from_environment()  # under torchrun; None alone
    if group is not None and group.rank > 0:
        distributed.quiet_worker()
        serve_training_jobs()
        distributed.leave()
        return
    try:
        rows = run_stages(args, groups)
    finally:
        distributed.stop_workers()
    print(
        f"\n{args.users:,} users, {args.items:,} items, ~{args.ratings:,} ratings; {machine()}"
    )
    print_table(rows, [c for c in ("stage", "processes", "batch", "loss", "train_seconds_per_epoch", "valid_seconds_per_epoch",
                                   "sequences_per_second", "gpu_peak_allocated_gib", "host_peak_rss_gib") if c in rows[0]])  # fmt: skip
    write_json(args.json, {"settings": vars(args), "rows": rows})


if __name__ == "__main__":
    main()
