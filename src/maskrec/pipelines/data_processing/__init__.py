"""Raw MovieLens data -> clean, k-core filtered, contiguous-id tables."""

from maskrec.pipelines.data_processing.pipeline import create_pipeline

__all__ = ["create_pipeline"]
