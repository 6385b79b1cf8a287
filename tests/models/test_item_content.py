"""Item content (`item_content`): items without training interactions are scored by their
genres, decade and title words; their id embeddings neither count nor train; they stay
out of the training softmax."""

from __future__ import annotations

import pandas as pd
import torch

from maskrec.datasets import ModelFolderDataset
from maskrec.model_input import right_aligned
from maskrec.models.losses import LossSettings
from maskrec.models.packing import IGNORE
from maskrec.models.sequence import SequenceRecModel
from maskrec.training.loop import batch_loss
from maskrec.training.objectives import Part
from maskrec.training.setup import title_words, train
from tests.helpers import params
from tests.models.test_sequence import tiny_config

N = 8
TITLES = ["Red Star", "Red Star II", "Blue Moon", "Blue Moon Rising", "Green Field", "Dark Star", "Red Moon", "Quiet Field"]  # fmt: skip


def content_model(**overrides) -> SequenceRecModel:
    torch.manual_seed(0)
    config = tiny_config(
        n_items=N, hidden_size=16, intermediate_size=32, max_len=6, n_genres=3,
        item_genres=[[i % 3] for i in range(N)], item_years=[1990 + i for i in range(N)],
        item_content=True, title_buckets=64, item_title_words=[title_words(t, 64) for t in TITLES],
        **overrides,
    )  # fmt: skip
    return SequenceRecModel(config).eval()


def test_items_start_unknown_with_zero_id_embeddings_and_content_only():
    model = content_model()
    assert (
        not model.item_known[1 : N + 1].any() and model.item_known[N + 1]
    )  # [MASK] known
    assert (model.item_embedding.weight[1 : N + 1] == 0).all()
    weight, _ = model.output_items()
    torch.testing.assert_close(weight, model.content(torch.arange(1, N + 1)))


def test_content_starts_at_embedding_scale_so_the_first_loss_is_near_uniform():
    """Every content table (the title EmbeddingBag included) starts like an embedding
    (std 0.02) and the content bias at zero: with torch's N(0, 1) default for the
    EmbeddingBag, the first losses on ML-100K were ~3x log(N) and SASRec never learned."""
    model = content_model()
    for table in (model.title_embedding, model.year_embedding, model.genre_embedding):
        assert float(table.weight.std()) < 0.03
    assert (model.content_bias.weight == 0).all()
    model.mark_known(range(1, N + 1))
    context = right_aligned([[1, 2, 3], [4, 5, 6, 7]], 6)
    with torch.no_grad():
        log_probs = model.score_next(context).log_softmax(-1)[:, 1 : N + 1]
    assert float(-log_probs.mean()) < 1.5 * torch.log(torch.tensor(float(N)))


def test_an_unknown_item_is_scored_by_its_content_and_not_its_id():
    model = content_model()
    model.mark_known([1, 2, 3, 4, 5])
    context = right_aligned([[1, 2, 3]], 6)
    with torch.no_grad():
        before = model.score_next(context)
        model.item_embedding.weight[6].fill_(3.0)  # unknown item 6: its id is ignored
        model.item_embedding.weight[1].fill_(3.0)  # known item 1: its id counts
        after = model.score_next(context)
        assert after[0, 6] == before[0, 6] and after[0, 1] != before[0, 1]
        word = model.item_title_words[6, 0]
        model.title_embedding.weight[word].add_(1.0)  # its title words do count
        assert model.score_next(context)[0, 6] != after[0, 6]


def test_unknown_items_stay_out_of_the_training_softmax():
    model = content_model()
    model.mark_known([1, 2, 3, 4, 5, 6])  # 7 and 8 have no interactions
    inputs = right_aligned([[1, 2, 3, 4], [5, 6, 1]], 6)
    labels = torch.full_like(inputs, IGNORE)
    labels[:, -1] = torch.tensor([5, 2])
    hidden = model.encode(inputs)[labels != IGNORE]
    logits = model.item_logits(hidden)[:, :6]  # columns of items 1..6 only
    log_p = torch.log_softmax(logits, dim=-1)
    nll = -log_p[[0, 1], [4, 1]].mean()
    for eps in (0.0, 0.2):
        expected = (1 - eps) * nll + eps * (-log_p.mean())
        got = batch_loss(
            model, [Part(inputs, labels)], LossSettings(label_smoothing=eps)
        )
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_training_marks_the_items_it_trains_on_and_unknown_ids_do_not_move():
    model = content_model()
    sequences = pd.DataFrame({"user_id": [0, 1], "item_ids": [[1, 2, 3, 4], [2, 3, 4, 5]], "timestamps": [[1, 2, 3, 4]] * 2})  # fmt: skip
    valid = pd.DataFrame({"user_id": [0, 1], "context": [[1, 2, 3, 4], [2, 3, 4, 5]], "target_item": [5, 1]})  # fmt: skip
    schedule = params(
        "pretraining", schedule={"epochs": 2, "batch_size": 2}, mask_prob=0.5
    )
    from maskrec.training.objectives import ClozeObjective

    trained, _ = train(model, ClozeObjective(0.5, N + 1, N), sequences, valid, schedule,
                       params("training", device="cpu", checkpoint_dir=None), "content")  # fmt: skip
    assert trained.item_known[1 : N + 1].tolist() == [True] * 5 + [False] * 3
    assert (
        trained.item_embedding.weight[6:9] == 0
    ).all()  # never trained, still content
    assert (trained.item_embedding.weight[1:6] != 0).any()


def test_content_models_round_trip_with_what_they_know(tmp_path):
    model = content_model()
    model.mark_known([2, 4])
    dataset = ModelFolderDataset(filepath=str(tmp_path / "m"))
    dataset.save(model)
    loaded = dataset.load()
    assert torch.equal(loaded.item_known, model.item_known)
    assert torch.equal(loaded.item_title_words, model.item_title_words)
    context = right_aligned([[2, 4, 1]], 6)
    torch.testing.assert_close(loaded.score_next(context), model.score_next(context))


def test_title_words_hash_stably_and_share_buckets_across_titles():
    assert title_words("Red Star", 64) == title_words("red star!", 64)
    assert set(title_words("Red Star", 64)) & set(title_words("Red Moon", 64))
    assert all(1 <= b < 64 for b in title_words("A Long Title With Many Words", 64))


def test_content_dropout_drops_known_ids_in_training_steps_only():
    """DropoutNet: in a training forward a share of the known items is seen by content
    alone (on the output side here); scoring (eval mode) always uses every known id."""
    model = content_model()
    model.mark_known(range(1, N + 1))
    with torch.no_grad():
        model.item_embedding.weight[1 : N + 1].fill_(1.0)
    content = model.content(torch.arange(1, N + 1))
    model.content_dropout = 0.5
    torch.testing.assert_close(
        model.output_items()[0], content + 1.0
    )  # eval: nothing dropped
    model.train()
    torch.manual_seed(1)
    dropped = [((model.output_items()[0] - content).abs().sum(-1) < 1e-6) for _ in range(200)]  # fmt: skip
    share = torch.stack(dropped).float().mean()
    assert 0.4 < float(share) < 0.6
    model.content_dropout = 0.0
    assert not (model.output_items()[0] - content).abs().sum(-1).lt(1e-6).any()


def test_content_dropout_needs_item_content():
    import pytest

    with pytest.raises(ValueError, match="content_dropout .* needs model.item_content"):
        params("fine_tuning", regularizers={"content_dropout": 0.5})


def test_exact_years_tell_apart_films_of_one_decade(tmp_path):
    model = content_model(exact_years=True)
    assert (
        model.item_year_buckets[1] == model.item_year_buckets[2]
    )  # 1990, 1991: one decade
    assert model.item_exact_years[1] != model.item_exact_years[2]
    before = model.content(torch.tensor([1]))
    with torch.no_grad():
        model.exact_year_embedding.weight[model.item_exact_years[1]].add_(1.0)
    assert not torch.equal(model.content(torch.tensor([1])), before)  # its year counts
    dataset = ModelFolderDataset(filepath=str(tmp_path / "m"))
    dataset.save(model)
    assert torch.equal(dataset.load().item_exact_years, model.item_exact_years)
