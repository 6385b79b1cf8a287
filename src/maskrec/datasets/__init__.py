"""Custom Kedro datasets: MovieLens sources, trained model folders, fitted baselines,
tuning studies."""

from maskrec.datasets.array_model import ArrayModelDataset
from maskrec.datasets.histories import HistoriesDataset
from maskrec.datasets.model_folder import ModelFolderDataset
from maskrec.datasets.movielens import MovieLensDataset
from maskrec.datasets.new_films import NewFilmsDataset
from maskrec.datasets.sequence_table import SequenceTableDataset
from maskrec.datasets.split_targets import SplitTargetsDataset
from maskrec.datasets.study import OptunaStorageDataset
from maskrec.datasets.trained_models import TrainedModelsDataset

__all__ = [
    "ArrayModelDataset",
    "HistoriesDataset",
    "ModelFolderDataset",
    "MovieLensDataset",
    "NewFilmsDataset",
    "OptunaStorageDataset",
    "SequenceTableDataset",
    "SplitTargetsDataset",
    "TrainedModelsDataset",
]
