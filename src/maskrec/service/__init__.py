"""The recommendation service (`maskrec serve`): a trained model behind HTTP, with a page."""

from maskrec.service.app import create_app
from maskrec.service.recommender import (
    Catalogue,
    Recommender,
    load_recommender,
    load_recommender_from_uri,
)

__all__ = ["Catalogue", "Recommender", "create_app", "load_recommender", "load_recommender_from_uri"]  # fmt: skip
