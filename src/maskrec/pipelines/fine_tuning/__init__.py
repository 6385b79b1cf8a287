"""Regularized next-item fine-tuning of the pretrained model, and the scratch ablation."""

from maskrec.pipelines.fine_tuning.pipeline import create_pipeline

__all__ = ["create_pipeline"]
