"""Top-K recommendations for every user and for a given history."""

from maskrec.pipelines.inference.pipeline import create_pipeline

__all__ = ["create_pipeline"]
