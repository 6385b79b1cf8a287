"""Regularized fine-tuning of the pretrained model and of the scratch ablation (same
initial weights, same fine-tuning, no pretraining), optionally distilled from a wider
Cloze-trained teacher. The stages themselves: `training.stages`."""

from __future__ import annotations

from maskrec.training.stages import Teacher, fine_tune, named, train_teacher, warm_start

__all__ = [
    "Teacher",
    "fine_tune_pretrained",
    "fine_tune_scratch",
    "train_teacher",
    "warm_start",
]

fine_tune_pretrained = named(fine_tune, "fine_tuned")
fine_tune_scratch = named(fine_tune, "scratch")
