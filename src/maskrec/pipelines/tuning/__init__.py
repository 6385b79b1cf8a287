"""Equal-budget hyper-parameter search of the compared models (Optuna), on training and
validation data only."""

from maskrec.pipelines.tuning.pipeline import create_pipeline

__all__ = ["create_pipeline"]
