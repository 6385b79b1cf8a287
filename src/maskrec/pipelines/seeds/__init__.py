"""Evaluations of several training seeds compared: per-seed paired tests and an interval
over the seeds for every comparison."""

from maskrec.pipelines.seeds.pipeline import create_pipeline

__all__ = ["create_pipeline"]
