"""Training speed and memory of every training objective, per variant of the training flags.

    python benchmarks/train_speed.py --data ../shared/data/ml-100k --env ml100k --epochs 4 \\
        --variants default no_packing --json benchmarks/results/train_speed.json
    python benchmarks/train_speed.py --data sample --params "sample.n_users=6040,sample.n_items=3700,sample.n_ratings=1000000,sample.seed=1"

A variant is a set of runtime parameters of the real code (`training.packing`, the item
softmax `loss.softmax`; the device is --device), given as `kedro run --params` gives them.
Each variant runs in a fresh process (the allocator setting `fit` makes is process-wide):
the project's pretraining pipeline, `fine_tune_pretrained_node` and `train_sasrec_node`
for --epochs epochs each (early stopping off), in a scratch copy of the project, with
--env and --params as `kedro run` takes them. From each history: the median training
seconds of epochs 2..N (epoch 1 warms up), training sequences per second, the median
validation scoring seconds of an epoch, and the process's peak RSS.

Baseline in the same run: one epoch of Cloze batch preparation, the project's vectorised
masking against a per-sequence Python loop (how RecBole's BERT4Rec builds its batches).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    SPLIT_DATASETS,
    ScratchProject,
    arguments,
    dotlist,
    join_params,
    peak_rss_mib,
    print_table,
    run_params,
    stage_nodes,
    write_json,
)

VARIANTS = {  # --params strings
    "default": "",
    "no_packing": "training.packing=false",
    "no_recency_bias": "model.recency_bias=false",  # what the ALiBi-style bias costs
    "fixed_recency_slopes": "model.recency_slopes=fixed",  # ... when its slopes are not learned
    "cpu_bf16": "training.cpu_bf16=true",  # bf16 autocast on the CPU (AVX512-BF16 / AMX)
    # the item softmax of every training stage (models/losses.py); `default` is full
    **{f"{kind}_loss": f"loss.softmax={kind}" for kind in ("chunked", "sampled")},
}
# the stages timed, in order: the model each trains (fine-tuning starts from the one pretrained before it)
STAGES = {"pretrained": (), "fine_tuned": ("pretrained_model",), "sasrec": ()}


def child(args: argparse.Namespace) -> dict:
    """One variant: train each stage for --epochs epochs and read its history."""
    schedule = {"schedule": {"epochs": args.epochs, "patience": args.epochs + 1}}
    every = dotlist(
        schedule=schedule["schedule"],
        pretraining=schedule,
        fine_tuning=schedule,
        sasrec=schedule,
    )
    params = join_params(args.base_params, VARIANTS[args.child], every)
    project = ScratchProject(Path(args.workdir) / args.child, args.env or None, params)
    project.run(["data_processing", "data_split"])
    stages = {}
    for name, starts_from in STAGES.items():
        started = time.perf_counter()
        project.run(["__default__"], stage_nodes("__default__", [f"{name}_model"], (*SPLIT_DATASETS, *starts_from)))  # fmt: skip
        history = project.load(f"{name}_history")
        timed = history[history["epoch"] >= 2]
        stages[name] = {
            "train_seconds_per_epoch": float(timed["train_seconds"].median()),
            "validation_seconds_per_epoch": float((timed["seconds"] - timed["train_seconds"]).median()),
            "sequences_per_second": float(timed["sequences_per_second"].median()),
            "stage_wall_seconds": time.perf_counter() - started,
            "valid_ndcg@10_last_epoch": float(history["ndcg@10"].iloc[-1]),
        }  # fmt: skip
    train = project.load("train_sequences")["item_ids"].tolist()
    settings = project.parameters()
    n_items = len(project.load("item_features"))
    peak = matmul_peak()
    packing = settings["training"].packing if isinstance(settings["training"].packing, bool) else args.device == "cpu"  # fmt: skip
    for name, work in epoch_flops(train, settings, n_items, packing).items():
        achieved = work["flops_per_epoch"] / stages[name]["train_seconds_per_epoch"]
        stages[name] |= work | {"achieved_flop_per_s": achieved, "share_of_matmul_peak": achieved / peak}  # fmt: skip
    return {"variant": args.child, "stages": stages, "peak_rss_mib": peak_rss_mib(), "matmul_peak_flop_per_s": peak,
            "masking": masking_comparison(train, settings["pretraining"].model.max_len),
            "layout": layout_report(train, settings)}  # fmt: skip


def matmul_peak(size: int = 2048, repeats: int = 16) -> float:
    """What this machine's fp32 matrix product reaches (FLOP/s), with torch's threads:
    the ceiling a training step's FLOP/s is compared with. The fastest of `repeats`
    products, not their mean: the machine's speed drifts within a run, and a mean taken in
    a slow spell (116 GFLOP/s on 2026-12-07, where the AMD EPYC's ceiling is 150-180) made
    the epochs' shares of it look larger than they were."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b  # warm-up
    fastest = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        a @ b
        fastest = min(fastest, time.perf_counter() - started)
    return 2 * size**3 / fastest


def epoch_flops(sequences: list, settings: dict, n_items: int, packing: bool) -> dict[str, dict]:  # fmt: skip
    """Each stage's FLOPs in one training epoch, from the model's shapes and the epoch's
    real batches (as `fit` lays them out: packed on the CPU): per layer and token, the
    projections 8 d^2 and the feed-forward 4 d f, per pair of positions in a row 4 d
    (scores and the weighted sum); per labelled position the head 2 d^2 and the item
    softmax 2 d N; the backward pass twice the forward. A term not read causally runs
    its last layer at the labelled positions only (`SequenceRecModel.states_at`): there
    every token costs the keys and values (4 d^2) and each row's query slots (as many as
    the batch's most labelled row) the rest. An estimate: LayerNorm, dropout, the
    softmax's exponentials and the optimizer are left out."""
    from types import SimpleNamespace

    from maskrec.model_input import training_windows
    from maskrec.models.packing import IGNORE, SequenceBatch, pack
    from maskrec.training.objectives import CausalObjective, ClozeObjective
    from maskrec.training.stages import fine_tuning_objective

    config = SimpleNamespace(mask_id=n_items + 1, n_items=n_items)
    pretraining, fine_tuning = settings["pretraining"], settings["fine_tuning"]
    stages = {
        "pretrained": (pretraining, ClozeObjective(pretraining.mask_prob, n_items + 1, n_items, pretraining.bert_replacement)),
        "fine_tuned": (fine_tuning, fine_tuning_objective(config, fine_tuning)),
        "sasrec": (settings["sasrec"], CausalObjective()),
    }  # fmt: skip
    work = {}
    for name, (spec, objective) in stages.items():
        model, length = spec.model, spec.model.max_len
        windows = training_windows(sequences, objective.window_length(length))
        d, f, layers = model.hidden_size, model.intermediate_size, model.num_layers
        forward = tokens = labelled = 0
        for parts in objective.batches(windows, spec.schedule.batch_size, torch.Generator().manual_seed(0)):  # fmt: skip
            for part in parts:
                batch = SequenceBatch(part.inputs, part.labels)
                batch = pack(batch, length) if packing else batch
                rows, width = batch.inputs.shape
                per_row = (batch.labels != IGNORE).sum(1)
                causal = objective.causal if part.causal is None else part.causal
                # the layers computed at every position; a term not read causally runs the
                # last one's keys and values everywhere and the rest at its query slots
                full = layers if causal else layers - 1
                forward += full * rows * width * (8 * d * d + 4 * d * f + 4 * d * width)
                if not causal:
                    slots = rows * int(per_row.max())
                    forward += rows * width * 4 * d * d + slots * (4 * d * d + 4 * d * f + 4 * d * width)  # fmt: skip
                tokens, labelled = tokens + rows * width, labelled + int(per_row.sum())
        forward += labelled * (2 * d * d + 2 * d * n_items)
        work[name] = {"flops_per_epoch": 3 * forward, "tokens_per_epoch": tokens, "labelled_per_epoch": labelled}  # fmt: skip
    return work


def layout_report(sequences: list, settings: dict) -> dict:
    """One epoch of each objective's batches: the share of batch cells that hold an item
    (the rest is padding the transformer still computes on), with batches as drawn and
    as `fit` packs them on the CPU."""
    from maskrec.model_input import training_windows
    from maskrec.models.packing import SequenceBatch, pack
    from maskrec.training.objectives import CausalObjective, ClozeObjective

    max_len = settings["pretraining"].model.max_len
    batch_size = settings["pretraining"].schedule.batch_size
    objectives = {
        "cloze": ClozeObjective(0.2, 10**6, 10**6 - 1),
        "causal": CausalObjective(),
    }
    report = {}
    for name, objective in objectives.items():
        windows = training_windows(sequences, objective.window_length(max_len))
        items = drawn = packed = 0
        for parts in objective.batches(
            windows, batch_size, torch.Generator().manual_seed(0)
        ):
            batch = SequenceBatch(parts[0].inputs, parts[0].labels)
            items += int((batch.inputs != 0).sum())
            drawn += batch.inputs.numel()
            packed += pack(batch, max_len).inputs.numel()
        report[name] = {"as drawn": items / drawn, "packed": items / packed}
    return report


def masking_comparison(sequences: list, max_len: int, mask_prob: float = 0.2) -> dict:
    """One epoch of Cloze batch preparation: vectorised (ours) against a per-sequence
    Python loop, the way RecBole's BERT4Rec prepares its batches."""
    from maskrec.model_input import training_windows
    from maskrec.training.objectives import cloze_mask

    windows = training_windows(sequences, max_len)
    mask_id = int(windows.max()) + 1
    generator = torch.Generator().manual_seed(0)
    started = time.perf_counter()
    for batch in windows.split(32):
        cloze_mask(batch, mask_prob, mask_id, generator)
    vectorised = time.perf_counter() - started
    rng = np.random.default_rng(0)
    started = time.perf_counter()
    for row in windows.tolist():
        items = [i for i in row if i]
        masked, labels = list(items), []
        for position, item in enumerate(items):
            if rng.random() < mask_prob:
                masked[position] = mask_id
                labels.append(item)
        if not labels:
            masked[-1], labels = mask_id, [items[-1]]
        torch.tensor([0] * (max_len - len(masked)) + masked)
    looped = time.perf_counter() - started
    return {"windows": len(windows), "vectorised_s": vectorised, "per_sequence_loop_s": looped,
            "speedup": looped / vectorised}  # fmt: skip


def main() -> None:
    parser = arguments(__doc__, "train_speed_run")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    parser.add_argument("--epochs", type=int, default=4, help="epochs per stage (the first is not timed)")  # fmt: skip
    parser.add_argument("--variants", nargs="+", default=["default", "no_packing"], choices=list(VARIANTS))  # fmt: skip
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--child-json", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.epochs < 2:
        raise SystemExit("--epochs must be at least 2 (the first epoch is not timed)")
    args.base_params = run_params(args, training={"device": args.device, "checkpoint_dir": None})  # fmt: skip
    if args.child:
        Path(args.child_json).write_text(json.dumps(child(args)))
        return

    runs, started = [], time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        for variant in args.variants:
            out = Path(folder) / f"{variant}.json"
            command = [sys.executable, __file__, "--data", args.data, "--env", args.env, "--params", args.params,
                       "--device", args.device, "--epochs", str(args.epochs), "--workdir", args.workdir,
                       "--child", variant, "--child-json", str(out)]  # fmt: skip
            subprocess.run(command, check=True)
            runs.append(json.loads(out.read_text()))
            print(f"{variant}: done", file=sys.stderr)
    rows = []
    for run in runs:
        for stage, result in run["stages"].items():
            first = runs[0]["stages"][stage]["train_seconds_per_epoch"]
            rows.append({"variant": run["variant"], "model": stage,
                         "train s/epoch": round(result["train_seconds_per_epoch"], 2),
                         "vs first": round(first / result["train_seconds_per_epoch"], 2),
                         "seq/s": round(result["sequences_per_second"]),
                         "GFLOP/epoch": round(result["flops_per_epoch"] / 1e9, 1),
                         "GFLOP/s": round(result["achieved_flop_per_s"] / 1e9, 1),
                         "of matmul peak": f"{result['share_of_matmul_peak']:.0%}",
                         "validation s/epoch": round(result["validation_seconds_per_epoch"], 2),
                         "peak RSS MiB": round(run["peak_rss_mib"])})  # fmt: skip
    print_table(rows, list(rows[0]))
    peaks = ", ".join(
        f"{run['variant']} {run['matmul_peak_flop_per_s'] / 1e9:.0f}" for run in runs
    )
    print(f"\nfp32 matrix-product peak of this machine (2048 x 2048, torch's threads, the fastest of "
          f"16 products, measured in each variant's process): {peaks} GFLOP/s")  # fmt: skip
    masking = runs[0]["masking"]
    print(f"\nCloze batch preparation, one epoch of {masking['windows']} windows: vectorised {masking['vectorised_s']:.4f} s, "
          f"per-sequence loop {masking['per_sequence_loop_s']:.3f} s ({masking['speedup']:.1f}x)")  # fmt: skip
    print(
        "\nShare of batch cells that hold an item, one epoch per objective (the rest is padding):"
    )
    layout = runs[0]["layout"]
    print_table([{"objective": k, **{c: round(v, 3) for c, v in row.items()}} for k, row in layout.items()],
                ["objective", *next(iter(layout.values()))])  # fmt: skip
    print(f"{time.perf_counter() - started:.0f} s in all")
    write_json(args.json, {"epochs": args.epochs, "runs": runs})


if __name__ == "__main__":
    main()
