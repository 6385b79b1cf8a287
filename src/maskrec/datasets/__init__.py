"""Custom Kedro datasets: MovieLens sources and trained model folders."""

from maskrec.datasets.model_folder import ModelFolderDataset
from maskrec.datasets.movielens import MovieLensDataset

__all__ = ["ModelFolderDataset", "MovieLensDataset"]
