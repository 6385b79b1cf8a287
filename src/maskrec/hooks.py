"""Project hooks: checks that span parameter groups, before any node runs.

Kedro validates each `params:<group>` against its pydantic type on its own; constraints
between groups (a fine-tuning setting that depends on the architecture, a device that must
exist) are checked here so that a bad combination fails in seconds, not after pretraining.
"""

from __future__ import annotations

from typing import Any

from kedro.framework.hooks import hook_impl

from maskrec.params import (
    FineTuningParams,
    ModelParams,
    PretrainingParams,
    SASRecParams,
)
from maskrec.training.loop import resolve_device


def _load(catalog: Any, name: str, kind: type) -> Any:
    key = f"params:{name}"
    if key not in catalog:
        return None
    value = catalog.load(key)
    return value if isinstance(value, kind) else kind(**value)


def check_parameters(
    model: ModelParams | None,
    pretraining: PretrainingParams | None,
    fine_tuning: FineTuningParams | None,
    sasrec: SASRecParams | None = None,
) -> None:
    """Raise ValueError naming the parameter when groups disagree."""
    groups = (
        ("pretraining", pretraining),
        ("fine_tuning", fine_tuning),
        ("sasrec", sasrec),
    )
    for group, params in groups:
        if params is not None:
            try:
                resolve_device(params.device)
            except ValueError as exc:
                raise ValueError(f"{group}.device: {exc}") from exc
    if (
        model is not None
        and sasrec is not None
        and model.hidden_size % sasrec.num_heads
    ):
        raise ValueError(
            f"sasrec.num_heads ({sasrec.num_heads}) must divide model.hidden_size ({model.hidden_size})"
        )
    if model is None or fine_tuning is None:
        return
    if fine_tuning.freeze_layers > model.num_layers:
        raise ValueError(
            f"fine_tuning.freeze_layers ({fine_tuning.freeze_layers}) exceeds model.num_layers ({model.num_layers})"
        )
    teacher = fine_tuning.distillation
    if teacher.weight > 0 and teacher.teacher_hidden_size % model.num_heads:
        raise ValueError(
            f"fine_tuning.distillation.teacher_hidden_size ({teacher.teacher_hidden_size}) must be "
            f"divisible by model.num_heads ({model.num_heads})"
        )


class ParameterChecks:
    @hook_impl
    def before_pipeline_run(
        self, run_params: dict, pipeline: Any, catalog: Any
    ) -> None:
        check_parameters(
            _load(catalog, "model", ModelParams),
            _load(catalog, "pretraining", PretrainingParams),
            _load(catalog, "fine_tuning", FineTuningParams),
            _load(catalog, "sasrec", SASRecParams),
        )
