"""Pretraining on another release (the source) for the target, and its competitors."""

from maskrec.pipelines.transfer.pipeline import SOURCE, create_pipeline

__all__ = ["SOURCE", "create_pipeline"]
