"""Peak memory and seconds of one training step at a large catalogue, per item softmax.

    python benchmarks/train_memory.py --json benchmarks/results/train_memory.json
    python benchmarks/train_memory.py --items 87585 --batch 128 --length 200 --limit-gib 22

What issue 11 asks about ML-32M's catalogue: 87,585 items, a batch of 128 sequences of
200 items. Each run is the project's own training stage (`training.stages.pretrain` or
`train_sasrec`: `fit`, the objective and the loss of the real code) for one epoch of exactly one batch, on the CPU,
in a fresh process whose address space is capped at --limit-gib (a variant that needs
more fails with an allocation error, recorded, instead of waking the kernel's OOM killer).

Variants: the item softmax (`loss`: full, chunked, sampled with `negatives`) for the two
objectives that label the most positions: Cloze pretraining (mask_prob of the 200
positions) and SASRec (all 200 positions, next item). Model: the project's architecture
(`model` in parameters_pretraining.yml) with max_len = --length. Data: --batch users with
--length training events and a validation target each (`common.synthetic_sequences`:
items by a Zipf law like a real release's popularity; generated, nothing read).

Printed: the RSS before training, the process's peak RSS, the difference (what the step
and one validation pass need), and the step's seconds (the epoch's training seconds).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    ROOT,
    dotlist,
    kedro_params,
    print_table,
    synthetic_sequences,
    write_json,
)

LOSSES = ("full", "chunked", "sampled")
OBJECTIVES = ("pretraining", "sasrec")


def child(args: argparse.Namespace) -> dict:
    """One (objective, loss) in this process, under the address-space cap."""
    cap = int(args.limit_gib * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    import numpy as np

    from maskrec.config import load_parameters
    from maskrec.training.setup import init_model
    from maskrec.training.stages import pretrain, train_sasrec

    rng = np.random.default_rng(args.seed)
    length = args.length
    lengths = np.full(
        args.batch, length + 1
    )  # `length` training events and a validation target
    items, train_sequences, valid = synthetic_sequences(args.items, lengths, rng)
    valid = valid.head(16)
    stage = {"schedule": {"epochs": 1, "batch_size": args.batch, "patience": 1}}
    settings = dotlist(model={"max_len": length}, loss={"softmax": args.loss}, pretraining=stage, sasrec=stage,
                       training={"device": "cpu", "checkpoint_dir": None, "seed": args.seed})  # fmt: skip
    groups = load_parameters(ROOT / "conf", "local", kedro_params(settings))
    training = groups["training"]
    before = _rss_mib()
    if args.objective == "pretraining":  # the pipelines' own stage functions
        model = init_model(items, groups["pretraining"])
        _, history = pretrain(model, train_sequences, valid, groups["pretraining"], training, "pretraining")  # fmt: skip
    else:
        _, history = train_sasrec(items, train_sequences, valid, groups["sasrec"], training, "sasrec")  # fmt: skip
    epoch = history[history["epoch"] == 1].iloc[0]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"rss_before_mib": before, "peak_rss_mib": peak, "step_seconds": float(epoch["train_seconds"])}  # fmt: skip


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--items", type=int, default=87_585)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--length", type=int, default=200)
    parser.add_argument("--limit-gib", type=float, default=22.0, help="address-space cap of each run")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--losses", nargs="+", default=list(LOSSES), choices=LOSSES)
    parser.add_argument("--objectives", nargs="+", default=list(OBJECTIVES), choices=OBJECTIVES)  # fmt: skip
    parser.add_argument("--json", default=None)
    parser.add_argument("--objective", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--loss", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.objective:
        print(json.dumps(child(args)))
        return

    rows = []
    for objective in args.objectives:
        for loss in args.losses:
            command = [sys.executable, __file__, "--objective", objective, "--loss", loss,
                       "--items", str(args.items), "--batch", str(args.batch), "--length", str(args.length),
                       "--limit-gib", str(args.limit_gib), "--seed", str(args.seed)]  # fmt: skip
            done = subprocess.run(
                command, check=False, capture_output=True, text=True
            )  # a failure is a result
            row = {"objective": objective, "loss": loss}
            if done.returncode == 0:
                row |= json.loads(done.stdout.strip().splitlines()[-1])
                row["step_mib"] = row["peak_rss_mib"] - row["rss_before_mib"]
            else:
                tail = done.stderr.strip().splitlines()[-1:] or ["(no message)"]
                row["failed"] = tail[0][:200]
            rows.append(row)
            print(row, file=sys.stderr, flush=True)
    table = [{
        "objective": r["objective"], "loss": r["loss"],
        "peak RSS GiB": f"{r['peak_rss_mib'] / 1024:.2f}" if "peak_rss_mib" in r else f"> {args.limit_gib:g} (failed)",
        "step + validation GiB": f"{r['step_mib'] / 1024:.2f}" if "step_mib" in r else "–",
        "step s": f"{r['step_seconds']:.1f}" if "step_seconds" in r else "–",
    } for r in rows]  # fmt: skip
    print(f"\none training step: {args.items:,} items, batch {args.batch} x length {args.length}, CPU")  # fmt: skip
    print_table(table, list(table[0]))
    write_json(args.json, {"settings": vars(args), "runs": rows})


if __name__ == "__main__":
    main()
