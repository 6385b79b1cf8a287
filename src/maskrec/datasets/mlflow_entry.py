"""The MLflow model's code (MLflow's "models from code"): MLflow stores this file with
the model and runs it on loading, so a logged model holds no pickled object."""

import mlflow

from maskrec.datasets.mlflow_model import RecommenderModel

mlflow.models.set_model(RecommenderModel())
