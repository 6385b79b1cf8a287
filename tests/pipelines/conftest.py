"""Models trained once per test session by their own pipelines (tests/helpers.py), for the
pipelines that read trained models."""

from __future__ import annotations

from pathlib import Path

import pytest

from maskrec.datasets import ArrayModelDataset, ModelFolderDataset
from maskrec.registry import models
from tests.helpers import train_every_model


@pytest.fixture(scope="session")
def trained() -> dict:
    return train_every_model()


@pytest.fixture(scope="session")
def models_folder(trained, tmp_path_factory) -> Path:
    """The trained models saved the way the catalog saves them (data/06_models)."""
    folder = tmp_path_factory.mktemp("06_models")
    for model in models():
        kind = ModelFolderDataset if model.family == "sequence" else ArrayModelDataset
        kind(filepath=str(folder / model.dataset)).save(trained[model.dataset])
    return folder
