"""Clean interactions -> training sequences and leak-free validation/test targets."""

from maskrec.pipelines.data_split.pipeline import create_pipeline

__all__ = ["create_pipeline"]
