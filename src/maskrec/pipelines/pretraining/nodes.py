"""Masked-item (Cloze) pretraining on the target's training sequences only (the stage
itself: `training.stages.pretrain`)."""

from __future__ import annotations

from maskrec.training.stages import named, pretrain

pretrain_on_target = named(pretrain, "pretrained")
