"""Plotly figures (previewed by kedro-viz) and the summary table."""

from maskrec.pipelines.reporting.pipeline import create_pipeline

__all__ = ["create_pipeline"]
