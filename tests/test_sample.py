from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from maskrec.sample import SampleSpec, generate_sample


@pytest.fixture(scope="module")
def sample():
    return generate_sample(SampleSpec())


def test_default_size_and_shape(sample):
    ratings, movies = sample
    assert len(ratings) == 60_000
    assert ratings["userId"].nunique() == 1000
    assert ratings["movieId"].nunique() > 1400
    assert list(ratings.columns) == ["userId", "movieId", "rating", "timestamp"]
    assert list(movies.columns) == ["movieId", "title", "genres"]
    assert (
        ratings["rating"].between(0.5, 5.0).all()
        and (ratings["rating"] * 2 % 1 == 0).all()
    )
    assert not ratings.duplicated(["userId", "movieId"]).any()
    assert movies["title"].str.match(r".+ \(\d{4}\)$").all()


def test_same_spec_same_data_other_seed_other_data(sample):
    again = generate_sample(SampleSpec())
    assert sample[0].equals(again[0]) and sample[1].equals(again[1])
    other = generate_sample(dataclasses.replace(SampleSpec(), seed=1))
    assert not sample[0].equals(other[0])


def test_timestamps_increase_along_each_history(sample):
    ratings, _ = sample
    assert (ratings.groupby("userId")["timestamp"].diff().dropna() >= 0).all()


def test_popularity_has_a_long_tail(sample):
    counts = sample[0]["movieId"].value_counts().to_numpy()
    top_share = counts[: len(counts) // 10].sum() / counts.sum()
    assert top_share > 0.4  # the top 10% of items take a large share of ratings


def test_next_item_is_predictable_from_the_previous_item_beyond_popularity(sample):
    """The structure a sequence model can learn: a first-order transition table fitted on
    the first half of the users predicts the second half's next items far better than
    global popularity does."""
    ratings, _ = sample
    users = ratings["userId"].unique()
    fit = ratings[ratings["userId"].isin(users[: len(users) // 2])]
    held = ratings[~ratings["userId"].isin(users[: len(users) // 2])]

    def transitions(frame):
        prev = frame.groupby("userId")["movieId"].shift()
        keep = prev.notna()
        return prev[keep].astype(int).to_numpy(), frame.loc[keep, "movieId"].to_numpy()

    p_fit, n_fit = transitions(fit)
    table: dict[int, dict[int, int]] = {}
    for p, n in zip(p_fit, n_fit, strict=True):
        table.setdefault(p, {}).setdefault(n, 0)
        table[p][n] += 1
    popular = fit["movieId"].value_counts().index[:10].to_numpy()
    p_held, n_held = transitions(held)
    hits_seq = np.mean(
        [
            n in sorted(table.get(p, {}), key=table.get(p, {}).get)[-10:]
            for p, n in zip(p_held, n_held, strict=True)
        ]
    )
    hits_pop = np.mean(np.isin(n_held, popular))
    assert hits_seq > 3 * hits_pop


def test_ratings_follow_taste(sample):
    """A user's most-watched genre gets ratings above that user's own average."""
    ratings, movies = sample
    main = movies.set_index("movieId")["genres"].str.split("|").str[0]
    frame = ratings.assign(genre=ratings["movieId"].map(main))
    share = frame.groupby(["userId", "genre"]).size() / frame.groupby("userId").size()
    mean = frame.groupby(["userId", "genre"])["rating"].mean()
    table = share.to_frame("share").join(mean.to_frame("mean")).reset_index()
    table["deviation"] = table["mean"] - table.groupby("userId")["mean"].transform(
        "mean"
    )
    favourite = table.loc[table.groupby("userId")["share"].idxmax()]
    assert favourite["deviation"].mean() > 0.1
    assert np.corrcoef(table["share"], table["deviation"])[0, 1] > 0.05


def test_invalid_spec_is_explained():
    with pytest.raises(ValueError, match="n_ratings=10 is below"):
        SampleSpec(n_ratings=10)
