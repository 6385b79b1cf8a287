"""The rating head (issue 14): rated tokens, rating questions, the rating objective, the
head on pretrained weights, its loss against a hand computation, and that the one `fit`
trains it to read a user's ratings (against a predictor that cannot)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from maskrec.model_input import rating_set, right_aligned, sequence_table
from maskrec.models.losses import LossSettings
from maskrec.models.packing import IGNORE
from maskrec.models.rating_tokens import RATING_CODES, rated_tokens, split_tokens
from maskrec.models.sequence import SequenceRecModel
from maskrec.scoring import rate
from maskrec.training import distributed
from maskrec.training.loop import batch_loss
from maskrec.training.objectives import Part, RatingObjective
from maskrec.training.stages import fine_tune_ratings
from tests.helpers import params
from tests.models.test_sequence import N_ITEMS, tiny_config, training


def test_rated_tokens_carry_item_and_half_stars_and_reject_other_scales():
    tokens = rated_tokens(np.array([1, 7, 40]), np.array([0.5, 3.0, 5.0]))
    items, buckets = split_tokens(torch.from_numpy(tokens))
    assert items.tolist() == [1, 7, 40] and buckets.tolist() == [1, 6, 10]
    with pytest.raises(ValueError, match="ratings must lie in 0.5"):
        rated_tokens(np.array([1]), np.array([0.0]))


HISTORY = pd.DataFrame({"user_id": [1, 1, 1, 2], "item_id": [3, 4, 5, 6],
                        "rating": [4.0, 5.0, 1.5, 3.0], "timestamp": [1, 2, 3, 1]})  # fmt: skip


def test_a_question_sits_at_its_time_among_the_users_rated_history():
    questions = pd.DataFrame({"user_id": [1, 1, 2, 9], "item_id": [7, 8, 9, 10],
                              "rating": [2.0, 3.0, 4.0, 5.0], "timestamp": [2, 9, 0, 1]})  # fmt: skip
    asked = rating_set(HISTORY, questions, length=3)
    items, buckets = split_tokens(asked.contexts)
    # user 1 at time 2: after items 3 and 4, before 5; the window keeps 4, 7, 5
    assert items[0].tolist() == [4, 7, 5] and buckets[0].tolist() == [10, 0, 3]
    # after all of user 1's history: the window ends with the question
    assert items[1].tolist() == [4, 5, 8] and asked.positions[1] == 2
    # before user 2's only rating, right-aligned; an unknown user: the question alone
    assert items[2].tolist() == [0, 9, 6] and asked.positions[2] == 1
    assert items[3].tolist() == [0, 0, 10] and asked.positions[3] == 2
    assert items[torch.arange(4), asked.positions].tolist() == [7, 8, 9, 10]
    assert (buckets[torch.arange(4), asked.positions] == 0).all()  # hidden
    assert asked.targets.tolist() == [2.0, 3.0, 4.0, 5.0]
    table = sequence_table(HISTORY, ratings=True)
    assert table["rating_codes"][0].tolist() == (np.array([3, 4, 5]) * RATING_CODES + [8, 10, 3]).tolist()  # fmt: skip


def one_question_at_a_time(
    history: pd.DataFrame, question, length: int
) -> tuple[list[int], int]:
    """The window of one question, built the plain way: the user's sequence with the
    question inserted after the events at or before its time, cut around it."""
    mine = history[history["user_id"] == question.user_id]
    tokens = list(rated_tokens(mine["item_id"].to_numpy(), mine["rating"].to_numpy()))
    cut = int((mine["timestamp"] <= question.timestamp).sum())
    sequence = tokens[:cut] + [question.item_id * RATING_CODES] + tokens[cut:]
    first = min(max(0, cut - length // 2), max(0, len(sequence) - length))
    window = sequence[first : first + length]
    return [0] * (length - len(window)) + window, length - len(window) + cut - first


@pytest.mark.parametrize("length", [1, 4, 7])
def test_every_question_gets_the_window_the_plain_construction_gives(length):
    rng = np.random.default_rng(length)
    history = pd.DataFrame({"user_id": rng.integers(0, 12, 200), "item_id": rng.integers(1, 40, 200),
                            "rating": rng.integers(1, 11, 200) / 2, "timestamp": rng.integers(0, 30, 200)})  # fmt: skip
    history = history.sort_values(["user_id", "timestamp"], kind="stable").reset_index(
        drop=True
    )
    questions = pd.DataFrame(
        {
            "user_id": rng.integers(0, 15, 300),
            "item_id": rng.integers(1, 40, 300),
            "timestamp": rng.integers(-5, 35, 300),
        }
    )  # fmt: skip (users 12-14: no history)
    asked = rating_set(history, questions, length)
    for row, question in enumerate(questions.itertuples()):
        window, position = one_question_at_a_time(history, question, length)
        assert (
            asked.contexts[row].tolist() == window
            and int(asked.positions[row]) == position
        ), row
    assert np.isnan(asked.targets.numpy()).all()  # questions without ratings
    empty = rating_set(history.iloc[:0], questions.iloc[:3], length)
    assert (
        split_tokens(empty.contexts)[0][:, -1]
        == torch.tensor(questions["item_id"][:3].to_numpy())
    ).all()


def test_the_rating_objective_hides_ratings_and_asks_for_them_showing_every_item():
    rows = torch.from_numpy(rated_tokens(np.arange(1, 25), np.tile([1.0, 2.0, 3.0, 4.0, 5.0, 4.5], 4))).reshape(3, 8)  # fmt: skip
    rows[2, :5] = 0  # a short, left-padded window
    (part,) = RatingObjective(0.3).parts(rows, torch.zeros(3, dtype=torch.long), torch.Generator().manual_seed(0))  # fmt: skip
    items, buckets = split_tokens(rows)
    asked = part.rating_labels != IGNORE
    assert torch.equal(part.inputs, items)  # every item shown
    assert (part.labels == IGNORE).all()  # no item targets
    assert asked.any(dim=1).all() and not asked[items == 0].any()
    assert torch.equal(part.rating_labels[asked], buckets[asked])  # the true ratings
    assert (part.ratings[asked] == 0).all() and torch.equal(part.ratings[~asked], buckets[~asked])  # fmt: skip
    assert torch.equal(part.targets(), asked)


def test_a_rating_head_keeps_the_weights_it_is_put_on_and_starts_at_the_mean():
    torch.manual_seed(0)
    base = SequenceRecModel(tiny_config())
    rater = base.with_rating_head(3.6, (1.0, 5.0)).eval()
    for name, value in base.state_dict().items():
        assert torch.equal(rater.state_dict()[name], value), name
    asked = rating_set(HISTORY, HISTORY.assign(timestamp=9), length=8)
    np.testing.assert_allclose(rate(rater, asked, 512), 3.6, atol=1e-6)


def questions_by_hand(loss: str, stars: list[float]):
    """A rating model whose head says something (random weights), a batch of the rating
    objective over 16 items rated `stars` in turn, and by hand the states of its hidden
    ratings: item embeddings (+ genres: none here) + rating embeddings, into the encoder.
    Returns the model, the batch part, and the asked positions' states, items and stars."""
    torch.manual_seed(1)
    model = SequenceRecModel(tiny_config()).with_rating_head(3.0, (1.0, 5.0), loss).eval()  # fmt: skip
    with torch.no_grad():
        for p in model.rating_head.parameters():
            p.normal_(0, 0.3)
        model.rating_item_bias.weight.normal_(0, 0.5)
    rows = torch.from_numpy(rated_tokens(np.arange(1, 17), np.tile(stars, 4))).reshape(2, 8)  # fmt: skip
    (part,) = RatingObjective(0.5).parts(rows, torch.zeros(2, dtype=torch.long), torch.Generator().manual_seed(3))  # fmt: skip
    embeds = model.item_embedding(part.inputs) + model.rating_embedding.weight[part.ratings]  # fmt: skip
    hidden = model.encode(part.inputs, inputs_embeds=embeds, causal=False)
    asked = part.rating_labels != IGNORE
    return model, part, hidden[asked], part.inputs[asked], part.rating_labels[asked] / 2


def test_the_rating_loss_is_the_squared_error_of_predictions_made_by_hand():
    model, part, state, item, stars = questions_by_hand("squared", [1.0, 3.0, 5.0, 2.0])
    predicted = model.rating_offset + model.rating_item_bias.weight[item, 0] + model.rating_head(state)[:, 0]  # fmt: skip
    expected = ((predicted - stars) ** 2).mean()
    loss = batch_loss(model, [part._replace(weight=0.7)], LossSettings())
    torch.testing.assert_close(loss, 0.7 * expected)
    assert float(F.mse_loss(predicted, stars).detach()) == pytest.approx(float(expected.detach()))  # fmt: skip


@pytest.mark.parametrize("loss", ["distribution", "ordinal"])
@pytest.mark.parametrize(("mean", "scale"), [(3.6, (1.0, 5.0)), (1.2, (0.5, 5.0)), (4.9, (1.0, 5.0))])  # fmt: skip
def test_a_distribution_or_ordinal_head_starts_at_the_mean_over_the_half_stars_of_its_range(
    mean, scale, loss
):
    torch.manual_seed(0)
    rater = SequenceRecModel(tiny_config()).with_rating_head(mean, scale, loss).eval()
    assert rater.config.rating_values == [b / 2 for b in range(round(2 * scale[0]), 11)]
    asked = rating_set(HISTORY, HISTORY.assign(timestamp=9), length=8)
    np.testing.assert_allclose(rate(rater, asked, 512), mean, atol=1e-4)
    probabilities = rater.rating_distribution(asked.contexts, asked.positions)
    assert probabilities.shape == (4, len(rater.config.rating_values))
    torch.testing.assert_close(probabilities.sum(1), torch.ones(4))
    assert (probabilities >= 0).all()
    if (
        loss == "ordinal"
    ):  # the same start as the distribution head's, through its cut-points
        other = SequenceRecModel(tiny_config()).with_rating_head(mean, scale, "distribution").eval()  # fmt: skip
        torch.testing.assert_close(probabilities, other.rating_distribution(asked.contexts, asked.positions), atol=1e-4, rtol=0)  # fmt: skip
    with pytest.raises(ValueError, match="rating_loss must be"):
        SequenceRecModel(tiny_config()).with_rating_head(3.0, scale, "hinge")
    with pytest.raises(ValueError, match="predicts one number"):
        SequenceRecModel(tiny_config()).with_rating_head(3.0, scale).rating_distribution(asked.contexts, asked.positions)  # fmt: skip


def test_the_distribution_loss_is_cross_entropy_plus_the_squared_error_of_its_mean_by_hand():
    model, part, state, item, stars = questions_by_hand("distribution", [1.0, 3.5, 5.0, 2.0])  # fmt: skip
    logits = model.rating_offset + model.rating_item_bias.weight[item] + model.rating_head(state)  # fmt: skip
    values = torch.arange(1.0, 5.01, 0.5)  # the nine half stars from 1 to 5
    p = logits.softmax(-1)
    mean = p @ values
    # cross-entropy by hand: minus the log-probability of each true value's column
    column = ((stars - 1.0) * 2).long()
    expected = -torch.log(p[torch.arange(len(column)), column]).mean() + ((mean - stars) ** 2).mean()  # fmt: skip
    loss = batch_loss(model, [part._replace(weight=0.7)], LossSettings())
    torch.testing.assert_close(loss, 0.7 * expected)


def test_the_ordinal_loss_is_the_cumulative_link_likelihood_plus_the_squared_error_by_hand():
    """OrdRec's model: P(rating <= v_k) = sigmoid(c_k - s), with c_1 < ... < c_8 between
    the nine half stars; the cut-points are made uneven here, so that the order the
    parametrisation keeps (the first, then softplus gaps) is what is checked."""
    model, part, state, item, stars = questions_by_hand("ordinal", [1.0, 3.5, 5.0, 2.0])
    with torch.no_grad():
        model.rating_cutpoints.copy_(torch.tensor([-2.0, 0.3, -1.0, 0.8, 0.1, 1.5, -0.4, 0.9]))  # fmt: skip
    score = model.rating_offset + model.rating_item_bias.weight[item, 0] + model.rating_head(state)[:, 0]  # fmt: skip
    raw = model.rating_cutpoints.detach()
    cuts = [float(raw[0])]
    for gap in raw[1:]:
        cuts.append(cuts[-1] + float(np.log1p(np.exp(float(gap)))))
    assert all(a < b for a, b in zip(cuts, cuts[1:]))
    values = torch.arange(1.0, 5.01, 0.5)
    rows = []
    for s in score:
        below = [1 / (1 + np.exp(-(c - float(s)))) for c in cuts] + [1.0]
        rows.append([below[0]] + [below[k] - below[k - 1] for k in range(1, 9)])
    p = torch.tensor(rows, dtype=torch.float32)
    torch.testing.assert_close(p.sum(1), torch.ones(len(p)))
    column = ((stars - 1.0) * 2).long()
    expected = -torch.log(p[torch.arange(len(column)), column]).mean() + ((p @ values - stars) ** 2).mean()  # fmt: skip
    loss = batch_loss(model, [part._replace(weight=0.7)], LossSettings())
    torch.testing.assert_close(loss.detach(), 0.7 * expected, rtol=1e-5, atol=1e-6)
    loss.backward()  # every part of the head learns, the cut-points included
    assert model.rating_cutpoints.grad.abs().sum() > 0


def test_sharing_a_rating_batch_between_processes_counts_rating_targets():
    labels = torch.full((4, 3), IGNORE)
    rating_labels = torch.full((4, 3), IGNORE)
    rating_labels[0, :3] = 8  # 3 asked ratings in row 0, 1 in each other row
    rating_labels[1:, 0] = 6
    part = Part(torch.ones(4, 3, dtype=torch.long), labels, 1.0, False, torch.ones(4, 3, dtype=torch.long), rating_labels)  # fmt: skip
    first, second = (distributed.share([part], r, 2)[0] for r in (0, 1))
    assert float(first.weight) == pytest.approx(2 * 4 / 6) and float(second.weight) == pytest.approx(2 * 2 / 6)  # fmt: skip
    assert torch.equal(second.rating_labels, rating_labels[2:]) and second.ratings.shape == (2, 3)  # fmt: skip


def taste_data(n_users: int = 160, per_user: int = 16, seed: int = 0):
    """Ratings = 3 + the user's taste (+1 or -1) + the item's quality (-0.5..0.5): the
    same item gets 4.5 from one user and 2.5 from another. A model must read the user's
    other ratings to know which."""
    rng = np.random.default_rng(seed)
    taste = rng.choice([-1.0, 1.0], n_users)
    quality = np.linspace(-0.5, 0.5, N_ITEMS)
    rows = []
    for user in range(n_users):
        for t, item in enumerate(rng.choice(N_ITEMS, per_user, replace=False)):
            rows.append((user, item + 1, np.clip(np.round((3 + taste[user] + quality[item]) * 2) / 2, 1, 5), t))  # fmt: skip
    return pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])


@pytest.mark.parametrize("loss", ["squared", "distribution", "ordinal"])
def test_fit_teaches_the_head_to_read_a_users_ratings_and_keeps_the_lowest_rmse_epoch(
    loss,
):
    data = taste_data()
    last = data.groupby("user_id").cumcount(ascending=False) == 0
    fitted, valid = data[~last], data[last]
    torch.manual_seed(0)
    model = SequenceRecModel(tiny_config(max_len=16)).with_rating_head(fitted["rating"].mean(), (1.0, 5.0), loss)  # fmt: skip
    head = params("ratings", head={"mask_prob": 0.3, "schedule": {
        "epochs": 12, "batch_size": 16, "learning_rate": 0.005, "patience": 12, "warmup_ratio": 0.0}}).head  # fmt: skip
    questions = rating_set(fitted, valid, 16)
    model, history = fine_tune_ratings(model, sequence_table(fitted, ratings=True), questions, head, training(), "taste")  # fmt: skip
    error = rate(model, questions, 512) - valid["rating"].to_numpy()
    rmse = float(np.sqrt(np.mean(error**2)))
    # an independent predictor that knows each item's mean rating but not the user's taste
    item_mean = fitted.groupby("item_id")["rating"].mean()
    blind = (
        valid["item_id"].map(item_mean).fillna(fitted["rating"].mean())
        - valid["rating"]
    )
    assert rmse < 0.5 * float(np.sqrt(np.mean(blind**2)))
    assert history["rmse"].iloc[0] > rmse  # epoch 0 (the untrained head) did worse
    best = int(history["rmse"].idxmin())
    assert (history["best_epoch"] == history["epoch"][best]).all()
    assert rmse == pytest.approx(float(history["rmse"].min()), abs=1e-5)


@pytest.mark.parametrize("loss", ["squared", "distribution", "ordinal"])
def test_a_saved_rating_model_predicts_the_same_after_loading(tmp_path, loss):
    torch.manual_seed(2)
    model = (
        SequenceRecModel(tiny_config()).with_rating_head(3.2, (1.0, 5.0), loss).eval()
    )
    with torch.no_grad():
        model.rating_head[-1].weight.normal_(0, 0.5)
    model.save_pretrained(tmp_path)
    loaded = SequenceRecModel.from_pretrained(tmp_path).eval()
    asked = rating_set(HISTORY, HISTORY.assign(timestamp=9), length=8)
    np.testing.assert_array_equal(rate(model, asked, 512), rate(loaded, asked, 512))
    assert (
        loaded.config.rating_range == (1.0, 5.0) and loaded.config.rating_loss == loss
    )


def test_a_packed_rating_batch_gives_the_unpacked_loss():
    torch.manual_seed(4)
    model = SequenceRecModel(tiny_config()).with_rating_head(3.0, (1.0, 5.0)).eval()
    with torch.no_grad():
        model.rating_head[-1].weight.normal_(0, 0.5)
    rows = right_aligned([rated_tokens(np.arange(1, n + 1), np.full(n, 4.0)) for n in (2, 3, 8, 1, 5)], 8)  # fmt: skip
    parts = RatingObjective(0.4).parts(rows, torch.zeros(5, dtype=torch.long), torch.Generator().manual_seed(1))  # fmt: skip
    packed = batch_loss(model, parts, LossSettings(), packing=True)
    torch.testing.assert_close(packed, batch_loss(model, parts, LossSettings(), packing=False))  # fmt: skip
