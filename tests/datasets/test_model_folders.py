"""Model folders on any fsspec filesystem, versioned as Kedro versions files, each with
its own catalogue readable without the weights (issue 28)."""

from __future__ import annotations

import fsspec
import pytest
import torch
from kedro.io import DatasetError, Version

from maskrec.catalogue import ItemCatalogue
from maskrec.datasets import ArrayModelDataset, ModelFolderDataset
from maskrec.datasets.trained_models import TrainedModelsDataset
from maskrec.models.baselines import MostPopular, interaction_matrix
from maskrec.models.sequence import SequenceRecModel
from tests.models.test_sequence import N_ITEMS, tiny_config


def sequence_model(seed: int) -> SequenceRecModel:
    torch.manual_seed(seed)
    ids = list(range(101, 101 + N_ITEMS))
    return SequenceRecModel(tiny_config(item_ids=ids, item_titles=[f"Film {i}" for i in ids])).eval()  # fmt: skip


def popular() -> MostPopular:
    model = MostPopular.fit(interaction_matrix([[1, 2, 3], [1]], n_items=3))
    model.catalogue = ItemCatalogue([7, 8, 9], ["A", "B", "C"], [1990, None, 2000], [2, 1, 1])  # fmt: skip
    return model


def scores(model: SequenceRecModel) -> torch.Tensor:
    with torch.no_grad():
        return model.score_next(torch.tensor([[1, 2, 3]]))


@pytest.fixture
def memory():
    """An in-memory fsspec filesystem, emptied after each test."""
    fs = fsspec.filesystem("memory")
    yield fs
    fs.store.clear()
    fs.pseudo_dirs.clear()
    fs.pseudo_dirs.append("")


def test_a_model_folder_round_trips_through_a_non_local_filesystem(memory):
    model = sequence_model(0)
    dataset = ModelFolderDataset(filepath="memory:///bucket/models/fine_tuned_model")
    assert not dataset.exists()
    dataset.save(model)
    assert dataset.exists() and memory.isfile("/bucket/models/fine_tuned_model/model.safetensors")  # fmt: skip
    assert dataset.path is None  # nothing local to log as an artifact
    assert torch.equal(scores(dataset.load()), scores(model))
    assert dataset.catalogue().titles[:2] == ["Film 101", "Film 102"]

    baseline = ArrayModelDataset(
        filepath="memory:///bucket/models/most_popular_baseline"
    )
    baseline.save(popular())
    loaded = baseline.load()
    assert loaded.catalogue == popular().catalogue and loaded.arrays["counts"].tolist() == popular().arrays["counts"].tolist()  # fmt: skip
    # the inference's view of the same folder: lazy, catalogue first
    saved = TrainedModelsDataset("memory:///bucket/models").load()
    assert saved["most_popular"].catalogue().original_ids == [7, 8, 9]
    assert torch.equal(scores(saved["fine_tuned"]()), scores(model))


def test_versions_are_kept_and_an_earlier_one_is_loaded_by_name(tmp_path):
    path = str(tmp_path / "fine_tuned_model")
    first, second = sequence_model(0), sequence_model(1)
    ModelFolderDataset(filepath=path, version=Version(None, "2026-12-01T00.00.00.000Z")).save(first)  # fmt: skip
    ModelFolderDataset(filepath=path, version=Version(None, "2026-12-02T00.00.00.000Z")).save(second)  # fmt: skip
    latest = ModelFolderDataset(filepath=path, version=Version(None, None))
    assert latest.list_versions(full_path=False) == ["2026-12-02T00.00.00.000Z", "2026-12-01T00.00.00.000Z"]  # fmt: skip
    assert torch.equal(scores(latest.load()), scores(second))
    earlier = ModelFolderDataset(filepath=path, version=Version("2026-12-01T00.00.00.000Z", None))  # fmt: skip
    assert torch.equal(scores(earlier.load()), scores(first))
    # the same through the inference's loaders: every model at one run's version
    models = TrainedModelsDataset(str(tmp_path), version=Version("2026-12-01T00.00.00.000Z", None)).load()  # fmt: skip
    assert torch.equal(scores(models["fine_tuned"]()), scores(first))
    assert models["fine_tuned"].path.parent.name == "2026-12-01T00.00.00.000Z"
    missing = ModelFolderDataset(filepath=path, version=Version("2026-11-30T00.00.00.000Z", None))  # fmt: skip
    with pytest.raises(DatasetError, match="no saved model here"):
        missing.load()


def test_a_failed_save_leaves_the_good_model_in_place(tmp_path, monkeypatch):
    dataset = ModelFolderDataset(filepath=str(tmp_path / "m"))
    good = sequence_model(0)
    dataset.save(good)

    def broken(self, folder):
        (folder / "config.json").write_text("{}")
        raise OSError("disk full")

    monkeypatch.setattr(SequenceRecModel, "save_pretrained", broken)
    with pytest.raises(DatasetError, match="disk full"):
        dataset.save(sequence_model(1))
    monkeypatch.undo()
    assert torch.equal(scores(dataset.load()), scores(good))


def test_a_loaded_model_owns_aligned_weights(tmp_path):
    """Weights left as views into the memory-mapped safetensors file sit at offsets its
    header decides; on AVX2 CPUs the kernels then round otherwise than for the saved model
    (scores 4e-8 apart). The equality tests above catch that only on such a CPU; this holds
    the cause on every machine (torch names no file for such views, so alignment is the
    mark)."""
    dataset = ModelFolderDataset(filepath=str(tmp_path / "m"))
    dataset.save(sequence_model(0))
    loaded = dataset.load()
    for name, tensor in (*loaded.named_parameters(), *loaded.named_buffers()):
        assert tensor.data_ptr() % 64 == 0, f"{name} is not 64-byte aligned"
