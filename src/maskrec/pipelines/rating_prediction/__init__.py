"""Rating prediction: RMSE and MAE of the classic rating models on two protocols."""

from maskrec.pipelines.rating_prediction.pipeline import create_pipeline

__all__ = ["create_pipeline"]
