"""The new-film mixture (`maskrec.models.new_items`): a proper distribution that keeps the
model's own order of known films, a fit that finds a planted signal from training events
alone, deterministic, and a temperature checked against a direct numpy computation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from maskrec.model_input import history_set, right_aligned
from maskrec.models.baselines import NewestFirst
from maskrec.models.new_items import NewItems, simulated_targets
from maskrec.scoring import TEMPERATURES, fit_temperature

N_TRAINED = 80
NEVER = [81, 82, 83, 84]  # in the catalogue, never in training: the newest releases
N = N_TRAINED + len(NEVER)


def catalogue() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Years (item i released 1950 + i / 2; the never-trained films 1991), genres (two:
    even and odd ids) and catalogue position (id order), by id 0..N."""
    ids = np.arange(N + 1)
    years = np.where(ids > 0, 1950 + ids // 2, 0).astype(float)
    years[NEVER] = 1991
    genres = np.zeros((N + 1, 2), dtype=np.float32)
    genres[1:, 0] = ids[1:] % 2 == 0
    genres[1:, 1] = ids[1:] % 2 == 1
    return years, genres, ids / N


def histories() -> tuple[list[list[int]], list[list[int]]]:
    """200 users, user u active around time 10u, each watching the 12 films released most
    recently by then (film i appears at time 24i): later users watch newer films, and
    a film's first rating is its release."""
    sequences, times = [], []
    for user in range(200):
        now = 10 * user
        newest = int(np.clip(now // 24, 12, N_TRAINED))
        items = list(range(newest - 11, newest + 1))
        sequences.append(items)
        times.append([now + k for k in range(12)])
    return sequences, times


def fitted() -> NewItems:
    sequences, times = histories()
    years, genres, position = catalogue()
    contexts, targets = simulated_targets(sequences, 5)
    return NewItems.fit(sequences, times, right_aligned(contexts, 50), targets, years,
                        genres, position, fraction=0.1, recent=10, profile=50)  # fmt: skip


@pytest.fixture(scope="module")
def model() -> NewItems:
    return fitted()


def test_simulated_targets_are_each_users_last_events_with_at_least_three_before():
    contexts, targets = simulated_targets([[1, 2, 3, 4, 5, 6], [7, 8, 9]], 5)
    assert targets == [6, 5, 4]  # the second user has too few events for any
    assert contexts == [[1, 2, 3, 4, 5], [1, 2, 3, 4], [1, 2, 3]]


def test_the_fit_reads_the_planted_signal_from_training_events(model):
    # the simulated hold-out: the newest 10% of the 80 trained films by first rating
    assert model.config["held_out_films"] == 8 and model.config["new_targets"] > 0
    assert model.untrained().nonzero().squeeze(1).tolist() == NEVER
    late, early = right_aligned([list(range(69, 81))], 50), right_aligned([list(range(1, 13))], 50)  # fmt: skip
    assert float(model.gate(late)) > 5 * float(model.gate(early))
    # among the never-trained films (all 1991), each equally new: content cannot tell them
    # apart by year; the probabilities are a distribution over them
    log_p = model.content_log_probs(late, torch.tensor(NEVER))
    assert torch.isclose(log_p.exp().sum(), torch.tensor(1.0))


def test_the_fit_is_deterministic(model):
    again = fitted()
    assert again.config == model.config
    for name, array in model.arrays.items():
        assert np.array_equal(array, again.arrays[name])


def test_the_mixture_is_a_distribution_over_unseen_films_that_keeps_the_models_order(
    model,
):
    torch.manual_seed(0)
    contexts = right_aligned([list(range(69, 81)), list(range(1, 13))], 50)
    scores = torch.randn(2, N + 1)
    seen = torch.zeros(2, N + 1, dtype=torch.bool)
    seen[0, 69:81], seen[1, 1:13] = True, True
    seen[:, 0] = True
    mixed = model.mix(scores, contexts, temperature=0.7, seen=seen)
    assert torch.isneginf(mixed[:, 0]).all()
    total = mixed.masked_fill(seen, -torch.inf).exp().sum(1)
    torch.testing.assert_close(total, torch.ones(2))
    gate = model.gate(contexts)
    new = mixed[:, NEVER].exp().sum(1)
    torch.testing.assert_close(new, gate)
    # known films keep the model's order; the late user's mixture gives new films more
    known = [i for i in range(1, N_TRAINED + 1)]
    assert torch.equal(mixed[:, known].argsort(dim=1), scores[:, known].argsort(dim=1))
    assert new[0] > 5 * new[1]


def test_films_a_model_met_elsewhere_share_their_content_probability_by_its_own_order(
    model,
):
    """A transfer model met films 81 and 82 in its source: as a group they keep what the
    content model gives them, split by the model's softmax at the temperature (seen ones
    excluded); the other new films and the trained films do not move."""
    torch.manual_seed(1)
    contexts = right_aligned(
        [list(range(69, 81)), list(range(1, 13)), [5, 6, 7, 82]], 50
    )
    scores = torch.randn(3, N + 1)
    seen = torch.zeros(3, N + 1, dtype=torch.bool)
    seen[0, 69:81], seen[1, 1:13], seen[2, [5, 6, 7, 82]] = True, True, True
    seen[:, 0] = True
    plain = model.mix(scores, contexts, temperature=0.7, seen=seen)
    known = torch.ones(N + 1, dtype=torch.bool)
    known[[0, 83, 84]] = False  # the model met 81 and 82; 83 and 84 nowhere
    mixed = model.mix(scores, contexts, temperature=0.7, seen=seen, known=known)
    group, rest = [81, 82], [83, 84] + list(range(1, N_TRAINED + 1))
    torch.testing.assert_close(mixed[:, rest], plain[:, rest])
    # users 0 and 1 saw neither film: the group's mass is content's, split as the model says
    share = plain[:2, group].exp().sum(1)
    torch.testing.assert_close(mixed[:2, group].exp().sum(1), share)
    within = torch.softmax(scores[:2, group] / 0.7, dim=1)
    torch.testing.assert_close(mixed[:2, group].exp() / share[:, None], within)
    # user 2 saw 82: 81 takes the content probability 81 had, alone
    assert torch.isneginf(mixed[2, 82])
    torch.testing.assert_close(mixed[2, 81], plain[2, 81])
    # a model that met none of the new films (trained on this data only) changes nothing
    only_here = torch.ones(N + 1, dtype=torch.bool)
    only_here[NEVER] = False
    torch.testing.assert_close(model.mix(scores, contexts, 0.7, seen, only_here), plain)


def test_models_record_every_item_they_train_on_and_old_ones_say_they_did_not(
    tmp_path,
):
    """`known_items`: what `train` marks, in any data, kept through a save; None for a model
    without content saved before models recorded it (its buffer was all True)."""
    from maskrec.datasets import ModelFolderDataset
    from maskrec.models.sequence import SequenceRecModel
    from tests.models.test_sequence import tiny_config

    model = SequenceRecModel(tiny_config(records_trained_items=True))
    assert not model.known_items().any()
    model.mark_known([3, 5])  # a source
    model.mark_known([5, 7])  # then the target
    assert torch.nonzero(model.known_items()).squeeze(1).tolist() == [3, 5, 7]
    dataset = ModelFolderDataset(filepath=str(tmp_path / "m"))
    dataset.save(model)
    assert torch.equal(dataset.load().known_items(), model.known_items())
    assert SequenceRecModel(tiny_config()).known_items() is None


def test_the_temperature_maximises_the_validation_likelihood_as_numpy_computes_it():
    years, _, _ = catalogue()
    newest = NewestFirst.fit(
        years
    )  # scores = newness: a softmax over them has an optimum
    histories_, targets = [[1, 2], [40, 41], [10]], [3, 60, 12]
    data = history_set(histories_, 4)
    data.targets = torch.tensor(targets)
    trained = torch.ones(N + 1, dtype=torch.bool)
    trained[NEVER] = False
    trained[0] = False
    chosen = fit_temperature(newest, data, batch_size=2, trained=trained)
    scores = newest.arrays["newness"].astype(np.float64)
    likelihood = []
    for t in TEMPERATURES:
        total = 0.0
        for history, target in zip(histories_, targets, strict=True):
            candidates = [i for i in range(1, N + 1) if trained[i] and i not in history]
            logits = scores[candidates] / t
            total += scores[target] / t - np.log(np.exp(logits).sum())
        likelihood.append(total)
    assert chosen == pytest.approx(TEMPERATURES[int(np.argmax(likelihood))], rel=1e-6)


def test_a_fit_without_any_held_out_target_has_a_constant_gate():
    sequences = [[1, 2, 3, 4]] * 3
    times = [[1, 2, 3, 4]] * 3
    years, genres, position = catalogue()
    contexts, targets = simulated_targets(sequences, 1)
    model = NewItems.fit(sequences, times, right_aligned(contexts, 50), targets, years,
                         genres, position, fraction=0.25)  # fmt: skip
    # film 4 is the one held out (newest by first rating) and every target: one class
    assert model.config["gate_coef"] == [0.0] * 7
    gates = model.gate(right_aligned([[1], [2, 3]], 50))
    assert torch.allclose(gates, gates[0])
