"""What each CPU speed change bought: epochs of every training objective on MovieLens 100K,
with the changes switched on one after another.

    python benchmarks/cpu_speed.py --data ../shared/data/ml-100k --json benchmarks/results/cpu_speed.json

The conf/ml100k settings (max_len 200, batch 32, hidden dropout 0.2, attention dropout 0.1;
SASRec with its conf/base settings at max_len 200), seed 0. Each variant runs in a fresh
process, because the allocator setting is process-wide. Variants, cumulative:

  torch_dropout      torch's dropout (what SDPA's CPU path did), batches only trimmed
  cheap_dropout      + models/cpu_dropout.py
  packing            + several sequences per row (models/packing.py), also when scoring
  repeating_sizes    + output-layer rows rounded to repeating sizes (models/sequence.py)
  keep_freed_memory  + glibc keeps freed memory (training/loop.keep_freed_memory): what fit does

Scoring only items 1..N in training (no padding column) is in every variant. Per objective:
median training seconds of epochs 2..N (epoch 1 warms up), minor page faults over those
epochs; validation scoring: median of 3 passes over the 943 validation contexts, batch 64.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, peak_rss_mib, prepare, print_table, write_json  # noqa: E402
from race_ml100k import conf, env_overrides, merged  # noqa: E402

from maskrec.models import cpu_dropout, sequence  # noqa: E402
from maskrec.models.sequence import SequenceRecModel  # noqa: E402
from maskrec.params import ModelParams, SplitParams  # noqa: E402
from maskrec.pipelines.pretraining.nodes import init_model, model_config  # noqa: E402
from maskrec.training.data import eval_set, training_windows  # noqa: E402
from maskrec.training.loop import LossSettings, batch_loss, keep_freed_memory  # noqa: E402
from maskrec.training.objectives import CausalObjective, ClozeObjective  # noqa: E402

VARIANTS = [
    "torch_dropout",
    "cheap_dropout",
    "packing",
    "repeating_sizes",
    "keep_freed_memory",
]


def _epochs(model, objective, windows, epochs: int, packing: bool) -> dict:
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-4, weight_decay=0.01)
    model.train()
    seconds, faults = [], 0
    for epoch in range(1, epochs + 1):
        torch.manual_seed(epoch)
        generator = torch.Generator().manual_seed(epoch)
        before, started = (
            resource.getrusage(resource.RUSAGE_SELF).ru_minflt,
            time.perf_counter(),
        )
        for parts in objective.batches(windows, 32, generator):
            loss = batch_loss(model, parts, LossSettings(), packing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
        if epoch > 1:
            seconds.append(time.perf_counter() - started)
            faults += resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    return {
        "seconds_per_epoch": statistics.median(seconds),
        "minor_faults_per_epoch": faults / len(seconds),
    }


def _scoring(model, valid, packing: bool) -> float:
    model.eval()
    times = []
    for _ in range(3):
        started = time.perf_counter()
        for start in range(0, len(valid), 64):
            model.score_next(valid.contexts[start : start + 64], packing=packing)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def child(variant: str, data_path: str, epochs: int) -> dict:
    level = VARIANTS.index(variant)
    if (
        level < 1
    ):  # SDPA's CPU math path drew its attention-dropout mask with bernoulli_ too
        cpu_dropout.fast_dropout = lambda x, p, training=True: F.dropout(x, p, training)
    if level < 3:
        sequence.repeating_size = lambda count: count
    if level >= 4:
        keep_freed_memory()
    packing = level >= 2
    data = prepare(data_path, split_params=SplitParams(cold_user_fraction=0.0))
    overrides = env_overrides("ml100k")
    model_params = ModelParams(
        **merged(conf("pretraining", "model"), overrides.get("model", {}))
    )
    pre = merged(conf("pretraining", "pretraining"), overrides.get("pretraining", {}))
    fine = merged(conf("fine_tuning", "fine_tuning"), overrides.get("fine_tuning", {}))
    sasrec = conf("baselines", "sasrec")
    train = data["train"]["item_ids"].tolist()
    features = data["item_features"]
    valid = eval_set(data["valid"], model_params.max_len)

    results = {}
    model = init_model(features, model_params)
    mask_id = model.config.mask_id
    cloze = ClozeObjective(pre["mask_prob"], mask_id, model.config.n_items)
    results["pretraining"] = _epochs(
        model, cloze, training_windows(train, model_params.max_len), epochs, packing
    )
    results["pretraining"]["scoring_seconds"] = _scoring(model, valid, packing)
    model = init_model(features, model_params)
    model.config.causal = True
    causal = CausalObjective(fine["cloze_weight"], fine["mask_prob"], mask_id)
    windows = training_windows(train, model_params.max_len + 1)
    results["fine_tuning"] = _epochs(model, causal, windows, epochs, packing)
    results["fine_tuning"]["scoring_seconds"] = _scoring(model, valid, packing)
    torch.manual_seed(0)
    sasrec_model = SequenceRecModel(model_config(
        features, model_params, causal=True, num_heads=sasrec["num_heads"],
        hidden_dropout=sasrec["hidden_dropout"], attention_dropout=sasrec["attention_dropout"]))  # fmt: skip
    results["sasrec"] = _epochs(
        sasrec_model, CausalObjective(), windows, epochs, packing
    )
    results["sasrec"]["scoring_seconds"] = _scoring(sasrec_model, valid, packing)
    return {"variant": variant, "stages": results, "peak_rss_mib": peak_rss_mib()}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", default="../shared/data/ml-100k")
    parser.add_argument(
        "--epochs",
        type=int,
        default=4,
        help="epochs per objective (the first is not timed)",
    )
    parser.add_argument("--variants", nargs="+", default=VARIANTS, choices=VARIANTS)
    parser.add_argument("--json", default=None)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--child-json", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()  # fmt: skip
    if args.epochs < 2:
        raise SystemExit("--epochs must be at least 2 (the first epoch is not timed)")
    if args.child:
        Path(args.child_json).write_text(
            json.dumps(child(args.child, args.data, args.epochs))
        )
        return

    runs = []
    with tempfile.TemporaryDirectory() as folder:
        for variant in args.variants:
            out = Path(folder) / f"{variant}.json"
            command = [sys.executable, __file__, "--data", args.data, "--epochs", str(args.epochs),
                       "--child", variant, "--child-json", str(out)]  # fmt: skip
            subprocess.run(command, check=True)
            runs.append(json.loads(out.read_text()))
            print(f"{variant}: done", file=sys.stderr)
    rows = []
    for run in runs:
        for stage, result in run["stages"].items():
            first = runs[0]["stages"][stage]["seconds_per_epoch"]
            rows.append({"variant": run["variant"], "objective": stage,
                         "train s/epoch": round(result["seconds_per_epoch"], 2),
                         "speed-up": round(first / result["seconds_per_epoch"], 2),
                         "minor faults/epoch": int(result["minor_faults_per_epoch"]),
                         "scoring s": round(result["scoring_seconds"], 3),
                         "peak RSS MiB": round(run["peak_rss_mib"])})  # fmt: skip
    print_table(rows, list(rows[0]))
    write_json(args.json, {"machine": machine(), "epochs": args.epochs, "runs": runs})


if __name__ == "__main__":
    main()
