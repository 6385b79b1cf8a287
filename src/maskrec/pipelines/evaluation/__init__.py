"""Every model against the test split, with intervals, breakdowns and paired tests."""

from maskrec.pipelines.evaluation.pipeline import create_pipeline

__all__ = ["create_pipeline"]
