"""How much target data each model needs: fine-tuning on nested fractions of the target's
training users, with and without source pretraining, and SASRec on the same users."""

from maskrec.pipelines.data_efficiency.pipeline import MODELS, create_pipeline

__all__ = ["MODELS", "create_pipeline"]
