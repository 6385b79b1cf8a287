"""Peak RSS and time of a few epochs of Cloze pretraining and causal fine-tuning on ML-100K.

    python benchmarks/memory_probe.py --data ../shared/data/ml-100k --epochs 4 [--bucketing]
    MALLOC_MMAP_THRESHOLD_=4194304 python benchmarks/memory_probe.py ...   # glibc settings

The `conf/ml100k` architecture (max_len 200) and fine-tuning objective, few epochs, CPU:
a quick way to see what an allocator setting or a batching change does to memory and
speed without the whole race. Prints a table and writes JSON (--json).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import peak_rss_mib, prepare, print_table, write_json  # noqa: E402

from maskrec.params import (  # noqa: E402
    FineTuningParams,
    ModelParams,
    PretrainingParams,
    SplitParams,
)
from maskrec.pipelines.fine_tuning.nodes import Teacher, fine_tune_pretrained  # noqa: E402
from maskrec.pipelines.pretraining.nodes import init_model, pretrain  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", default="../shared/data/ml-100k")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument(
        "--bucketing", action="store_true", help="length_bucketing: true"
    )
    parser.add_argument("--json", default=None)
    args = parser.parse_args()  # fmt: skip

    data = prepare(args.data, split_params=SplitParams(cold_user_fraction=0.0))
    rows = [
        {
            "stage": "data",
            "seconds": 0.0,
            "peak_rss_mib": peak_rss_mib(),
            "valid_ndcg@10": None,
        }
    ]
    common = {"device": "cpu", "checkpoint_dir": None, "eval_batch_size": 64, "epochs": args.epochs,
              "patience": args.epochs, "length_bucketing": args.bucketing}  # fmt: skip
    model = init_model(
        data["item_features"],
        ModelParams(max_len=200, hidden_dropout=0.2, attention_dropout=0.1),
    )
    started = time.perf_counter()
    model, history = pretrain(
        model, data["train"], data["valid"], PretrainingParams(mask_prob=0.2, **common)
    )
    rows.append({"stage": "pretraining", "seconds": time.perf_counter() - started,
                 "peak_rss_mib": peak_rss_mib(), "valid_ndcg@10": history["ndcg@10"].max()})  # fmt: skip
    started = time.perf_counter()
    _, history = fine_tune_pretrained(model, Teacher(), data["train"], data["valid"],
                                      FineTuningParams(objective="causal", cloze_weight=0.5, mask_prob=0.5,
                                                       learning_rate=0.0005, **common))  # fmt: skip
    rows.append({"stage": "fine_tuning", "seconds": time.perf_counter() - started,
                 "peak_rss_mib": peak_rss_mib(), "valid_ndcg@10": history["ndcg@10"].max()})  # fmt: skip
    print_table(rows, ["stage", "seconds", "peak_rss_mib", "valid_ndcg@10"])
    malloc = {k: v for k, v in os.environ.items() if k.startswith("MALLOC_")}
    write_json(
        args.json,
        {
            "epochs": args.epochs,
            "bucketing": args.bucketing,
            "malloc_env": malloc,
            "stages": rows,
        },
    )


if __name__ == "__main__":
    main()
