"""Custom Kedro datasets: MovieLens sources and (later) model folders."""

from maskrec.datasets.movielens import MovieLensDataset

__all__ = ["MovieLensDataset"]
