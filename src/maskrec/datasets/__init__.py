"""Custom Kedro datasets: MovieLens sources, trained model folders, fitted baselines."""

from maskrec.datasets.array_model import ArrayModelDataset
from maskrec.datasets.model_folder import ModelFolderDataset
from maskrec.datasets.movielens import MovieLensDataset

__all__ = ["ArrayModelDataset", "ModelFolderDataset", "MovieLensDataset"]
