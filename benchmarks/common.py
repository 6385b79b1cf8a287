"""Shared benchmark plumbing: data through the project's own nodes, tables and JSON out."""

from __future__ import annotations

import json
import platform
import resource
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from maskrec.datasets import MovieLensDataset
from maskrec.params import DataProcessingParams, SplitParams
from maskrec.pipelines.data_processing import nodes as processing
from maskrec.pipelines.data_split.nodes import split_interactions


def prepare(
    source: str,
    cache_dir: str = "data/01_raw",
    sample_args: dict | None = None,
    processing_params: DataProcessingParams | None = None,
    split_params: SplitParams | None = None,
) -> dict[str, Any]:
    """Run data_processing and data_split in memory, exactly as the pipelines do."""
    raw = MovieLensDataset(
        source=source, cache_dir=cache_dir, sample_args=sample_args
    ).load()
    processing_params = processing_params or DataProcessingParams()
    cleaned, c1 = processing.clean_interactions(raw, processing_params)
    kcore, c2 = processing.filter_k_core(cleaned, processing_params)
    interactions, user_map, item_map = processing.remap_ids(kcore)
    features = processing.build_item_features(raw, item_map)
    train, valid, test, cold = split_interactions(
        interactions, split_params or SplitParams(cold_user_fraction=0.0)
    )
    return {"raw": raw, "interactions": interactions, "user_map": user_map, "item_map": item_map,
            "item_features": features, "train": train, "valid": valid, "test": test, "cold": cold}  # fmt: skip


def machine() -> dict[str, Any]:
    info = {"python": platform.python_version(), "torch": torch.__version__, "cpu": platform.processor() or platform.machine(),
            "threads": torch.get_num_threads()}  # fmt: skip
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def print_table(rows: list[dict], columns: list[str]) -> None:
    frame = pd.DataFrame(rows)[columns]
    print(
        frame.to_markdown(index=False, floatfmt=".4g")
        if _has_tabulate()
        else frame.to_string(index=False)
    )


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
    except ImportError:
        return False
    return True


def write_json(path: str | None, payload: dict) -> None:
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(payload, indent=2, default=str))
        print(f"wrote {path}", file=sys.stderr)
