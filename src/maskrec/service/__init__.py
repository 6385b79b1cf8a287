"""The recommendation service (`maskrec serve`): a trained model behind HTTP, with a page."""

from maskrec.service.app import create_app
from maskrec.service.recommender import Catalogue, Recommender, load_recommender

__all__ = ["Catalogue", "Recommender", "create_app", "load_recommender"]
