"""Training throughput of pretraining (Cloze) and fine-tuning (next-item) per device and dataset.

    python benchmarks/train_speed.py --ml100k ../shared/data/ml-100k --devices cpu --json benchmarks/results/train_speed.json

Datasets: MovieLens 100K (read from the given folder) and generated data the size of
ML-1M (6,040 users, 3,700 items, 1,000,000 ratings). Each stage runs a few epochs of the
project's own training loop with the parameters in conf/base (epochs and early stopping
aside); the first epoch is a warm-up and is not counted. "Sequences" are training rows: a
window for Cloze pretraining, a (prefix + Cloze) pair for fine-tuning.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine, prepare, print_table, write_json  # noqa: E402

from maskrec.params import FineTuningParams, ModelParams, PretrainingParams  # noqa: E402
from maskrec.pipelines.fine_tuning.nodes import Teacher, fine_tune_pretrained  # noqa: E402
from maskrec.pipelines.pretraining.nodes import init_model, pretrain  # noqa: E402

CONF = Path(__file__).resolve().parents[1] / "conf" / "base"
ML1M_SIZE = {"n_users": 6040, "n_items": 3700, "n_ratings": 1_000_000, "seed": 1}


def load_params(name: str, key: str) -> dict:
    return yaml.safe_load((CONF / f"parameters_{name}.yml").read_text())[key]


def measure(
    dataset: str, data: dict, device: str, epochs: int, max_len: int | None
) -> list[dict]:
    model_settings = load_params("pretraining", "model") | (
        {"max_len": max_len} if max_len else {}
    )
    overrides = {
        "epochs": epochs,
        "patience": epochs + 1,
        "device": device,
        "checkpoint_dir": None,
    }
    stages = {
        "pretraining": PretrainingParams(
            **(load_params("pretraining", "pretraining") | overrides)
        ),
        "fine_tuning": FineTuningParams(
            **(load_params("fine_tuning", "fine_tuning") | overrides)
        ),
    }
    model = init_model(data["item_features"], ModelParams(**model_settings))
    rows = []
    for stage, params in stages.items():
        started = time.perf_counter()
        if stage == "pretraining":
            model, history = pretrain(model, data["train"], data["valid"], params)
        else:
            model, history = fine_tune_pretrained(
                model, Teacher(), data["train"], data["valid"], params
            )
        timed = history[history["epoch"] >= 2]
        rows.append({
            "dataset": dataset, "stage": stage, "device": device, "max_len": model.config.max_len,
            "batch_size": params.batch_size, "sequences_per_second": float(timed["sequences_per_second"].mean()),
            "train_s_per_epoch": float(timed["train_seconds"].mean()),
            "s_per_epoch_with_validation": float(timed["seconds"].mean()),
            "wall_s": time.perf_counter() - started,
        })  # fmt: skip
        print_table(rows[-1:], list(rows[-1]))
    return rows


def masking_comparison(
    dataset: str, data: dict, max_len: int, mask_prob: float = 0.2
) -> dict:
    """One epoch of Cloze batch preparation: vectorised (ours) against a per-sequence Python
    loop, the way RecBole's BERT4Rec prepares its batches (the baseline in the same run)."""
    import numpy as np

    from maskrec.training.data import training_windows
    from maskrec.training.objectives import cloze_mask

    windows = training_windows(data["train"]["item_ids"].tolist(), max_len)
    mask_id = int(windows.max()) + 1
    generator = torch.Generator().manual_seed(0)
    started = time.perf_counter()
    for batch in windows.split(32):
        cloze_mask(batch, mask_prob, mask_id, generator)
    vectorised = time.perf_counter() - started

    rng = np.random.default_rng(0)
    started = time.perf_counter()
    for batch in windows.numpy().reshape(-1, windows.shape[1])[: len(windows)].tolist():
        items = [i for i in batch if i]
        masked, labels = list(items), []
        for position, item in enumerate(items):
            if rng.random() < mask_prob:
                masked[position] = mask_id
                labels.append(item)
        if not labels:
            masked[-1], labels = mask_id, [items[-1]]
        torch.tensor([0] * (max_len - len(masked)) + masked)
    looped = time.perf_counter() - started
    return {"dataset": dataset, "windows": len(windows), "vectorised_s": vectorised, "per_sequence_loop_s": looped,
            "speedup": looped / vectorised}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--ml100k", default="../shared/data/ml-100k", help="folder with MovieLens 100K"
    )
    parser.add_argument(
        "--devices",
        nargs="+",
        default=["cpu"] + (["cuda"] if torch.cuda.is_available() else []),
    )
    parser.add_argument(
        "--epochs", type=int, default=3, help="epochs per stage (the first is warm-up)"
    )
    parser.add_argument(
        "--max-len", type=int, default=None, help="override model.max_len"
    )
    parser.add_argument("--skip-ml1m", action="store_true", help="only MovieLens 100K")
    parser.add_argument("--json", default=None, help="write the results here")
    args = parser.parse_args()

    datasets = {"ml-100k": prepare(args.ml100k)}
    if not args.skip_ml1m:
        datasets["generated ML-1M size"] = prepare("sample", sample_args=ML1M_SIZE)
    rows = [
        row
        for name, data in datasets.items()
        for device in args.devices
        for row in measure(name, data, device, args.epochs, args.max_len)
    ]
    masking = [
        masking_comparison(
            name, data, args.max_len or load_params("pretraining", "model")["max_len"]
        )
        for name, data in datasets.items()
    ]
    print("\nTraining throughput")
    print_table(rows, list(rows[0]))
    print(
        "\nCloze batch preparation for one epoch, vectorised vs per-sequence loop (CPU)"
    )
    print_table(masking, list(masking[0]))
    write_json(
        args.json,
        {
            "machine": machine(),
            "command": " ".join(sys.argv),
            "results": rows,
            "masking": masking,
        },
    )


if __name__ == "__main__":
    main()
