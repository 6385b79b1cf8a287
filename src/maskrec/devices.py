"""Which device a run trains and scores on, and its precision: one place, below every
layer that computes (training, scoring, the run-start checks)."""

from __future__ import annotations

import torch


def resolve_device(name: str) -> torch.device:
    """`auto` picks cuda, then mps, then cpu; an explicit device must exist."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            "device='cuda' was requested but no CUDA device is available; use 'auto' or 'cpu'"
        )
    if name == "mps" and not torch.backends.mps.is_available():
        raise ValueError(
            "device='mps' was requested but MPS is not available; use 'auto' or 'cpu'"
        )
    return torch.device(name)


def autocast(device: torch.device, bf16: bool):
    """bf16 autocast on CUDA or the CPU when asked (`TrainingParams.autocast_bf16` says
    when a run asks); a no-op context elsewhere."""
    return torch.autocast(
        device_type=device.type,
        dtype=torch.bfloat16,
        enabled=bf16 and device.type in ("cuda", "cpu"),
    )
