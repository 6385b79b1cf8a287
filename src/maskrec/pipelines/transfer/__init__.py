"""Pretraining on another release (the source) for the target, and its competitors."""

from maskrec.pipelines.transfer.pipeline import create_pipeline

__all__ = ["create_pipeline"]
