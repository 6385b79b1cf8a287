"""Typed parameter groups, one per pipeline (`conf/base/parameters_<pipeline>.yml`).

Kedro 1.7 validates a `params:<group>` input against the pydantic type its node declares
when the run starts, before any node executes; a bad value stops the run with a message
that names the parameter. `extra="forbid"` turns a misspelt key into an error instead of a
silently ignored setting.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataProcessingParams(_Params):
    """Cleaning rules applied to the raw interactions, in this order."""

    positive_threshold: float | None = Field(
        None, ge=0.5, le=5.0, description="keep ratings >= this; None keeps all"
    )
    min_user_interactions: int = Field(5, ge=1, description="k-core: per user")
    min_item_interactions: int = Field(1, ge=1, description="k-core: per item")


class SplitParams(_Params):
    """How interactions become training sequences and evaluation targets."""

    strategy: Literal["leave_one_out", "temporal", "random"] = "leave_one_out"
    cold_user_fraction: float = Field(
        0.0, ge=0.0, lt=1.0, description="users held out of training entirely"
    )
    seed: int = 0
    # temporal: global cut points as quantiles of all timestamps
    temporal_valid_quantile: float = Field(0.8, gt=0.0, lt=1.0)
    temporal_test_quantile: float = Field(0.9, gt=0.0, lt=1.0)
    # random: per-user fractions held out for validation and test
    random_valid_ratio: float = Field(0.1, gt=0.0, lt=1.0)
    random_test_ratio: float = Field(0.1, gt=0.0, lt=1.0)

    @model_validator(mode="after")
    def _check_order(self) -> SplitParams:
        if self.temporal_valid_quantile >= self.temporal_test_quantile:
            raise ValueError(
                "temporal_valid_quantile must be below temporal_test_quantile, got "
                f"{self.temporal_valid_quantile} >= {self.temporal_test_quantile}"
            )
        if self.random_valid_ratio + self.random_test_ratio >= 1.0:
            raise ValueError("random_valid_ratio + random_test_ratio must be below 1")
        return self
