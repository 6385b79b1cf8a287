"""Masked-item (Cloze) pretraining of the sequence encoder."""

from maskrec.pipelines.pretraining.pipeline import create_pipeline

__all__ = ["create_pipeline"]
