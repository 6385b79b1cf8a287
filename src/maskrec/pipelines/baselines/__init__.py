"""Classic baselines (most popular, ItemKNN, EASE, ALS matrix factorisation)."""

from maskrec.pipelines.baselines.pipeline import create_pipeline

__all__ = ["create_pipeline"]
