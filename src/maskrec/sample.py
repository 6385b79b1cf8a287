"""Deterministic MovieLens-style data: the project's embedded default source.

The generator writes `ratings.csv` and `movies.csv` in the ml-latest-small layout, so the
sample goes through exactly the same reader and validation as a real release.

What it models, and why each part is there:
- long-tail item popularity (Zipf), so that "most popular" is a real baseline;
- genres and years per item, users with tastes over genres, ratings that follow taste;
- **sequential structure**: items live in a small latent space (clustered by main genre);
  an item's "related" items are its nearest neighbours there. After watching an item a
  user moves to an unseen related item with probability `follow_prob`, otherwise to the
  next item of their taste order. Relatedness is smooth, as with real films (sequels, same
  director, same mood), so item embeddings can learn it; popularity and taste cannot.
- user activity with a long tail (log-normal), timestamps that increase along each history.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

GENRES = (
    "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
    "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi",
    "Thriller", "War", "Western",
)  # fmt: skip

_WORDS = (
    "Night", "River", "Star", "Shadow", "City", "Garden", "Winter", "Summer", "Ghost",
    "Empire", "Dream", "Storm", "Island", "Road", "Heart", "Secret", "Fire", "Glass",
    "Silver", "Last", "First", "Lost", "Wild", "Quiet", "Broken", "Golden", "Dark",
    "Little", "Long", "Red", "Blue", "Iron", "Paper", "Stone", "Midnight", "Crimson",
)  # fmt: skip


@dataclass(frozen=True)
class SampleSpec:
    """Size and shape of the generated data; every field is part of the cache key."""

    n_users: int = 1000
    n_items: int = 1500
    n_ratings: int = 60000
    seed: int = 42
    follow_prob: float = 0.6
    n_related: int = 8
    latent_dim: int = 8
    min_user_ratings: int = 8
    # Users drawn from their own random stream: two specs that differ only here share
    # the same films (ids, titles, genres, structure) with different users, like two
    # MovieLens releases (a transfer source and its target). None: one stream, as always.
    user_seed: int | None = None

    def __post_init__(self) -> None:
        if self.n_users < 2 or self.n_items < 10:
            raise ValueError(
                f"sample: n_users must be >= 2 and n_items >= 10, got "
                f"n_users={self.n_users}, n_items={self.n_items}"
            )
        if self.n_ratings < self.n_users * self.min_user_ratings:
            raise ValueError(
                f"sample: n_ratings={self.n_ratings} is below n_users * "
                f"min_user_ratings = {self.n_users * self.min_user_ratings}"
            )
        if self.n_ratings > self.n_users * self.n_items // 2:
            raise ValueError(
                f"sample: n_ratings={self.n_ratings} would fill more than half of the "
                f"{self.n_users} x {self.n_items} matrix; raise n_items or n_users"
            )
        if not 0.0 <= self.follow_prob <= 1.0:
            raise ValueError(
                f"sample: follow_prob must be in [0, 1], got {self.follow_prob}"
            )

    def key(self) -> str:
        """A folder name that changes whenever any field changes."""
        return "sample-" + "-".join(
            f"{k}{v}" for k, v in asdict(self).items() if v is not None
        )


def _activity(rng: np.random.Generator, spec: SampleSpec) -> np.ndarray:
    """Ratings per user: log-normal long tail, each >= min, summing to n_ratings."""
    raw = rng.lognormal(mean=0.0, sigma=0.9, size=spec.n_users)
    spare = spec.n_ratings - spec.min_user_ratings * spec.n_users
    counts = spec.min_user_ratings + np.floor(raw / raw.sum() * spare).astype(int)
    counts = np.minimum(counts, spec.n_items // 2)
    # Hand out what rounding and the cap left over, one rating at a time.
    short = spec.n_ratings - counts.sum()
    room = np.flatnonzero(counts < spec.n_items // 2)
    extra = rng.choice(room, size=short, replace=True) if short > 0 else []
    np.add.at(counts, extra, 1)
    return np.minimum(counts, spec.n_items // 2)


def generate_sample(spec: SampleSpec) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Generate `(ratings, movies)` in the ml-latest-small column layout.

    ratings: userId, movieId, rating, timestamp. movies: movieId, title, genres.
    The same spec always yields the same frames.
    """
    rng = np.random.default_rng(spec.seed)
    n_items, n_genres = spec.n_items, len(GENRES)

    # Items: a main genre plus up to two more, a year, a Zipf popularity, a quality.
    main_genre = rng.choice(n_genres, size=n_items, p=_genre_prior())
    genre_matrix = np.zeros((n_items, n_genres), dtype=bool)
    genre_matrix[np.arange(n_items), main_genre] = True
    for _ in range(2):
        extra = rng.integers(0, n_genres, size=n_items)
        genre_matrix[np.arange(n_items), extra] |= rng.random(n_items) < 0.35
    years = np.clip(np.round(2020 - rng.gamma(2.0, 9.0, size=n_items)), 1920, 2020)
    popularity = 1.0 / np.arange(1, n_items + 1) ** 1.0
    popularity = popularity[rng.permutation(n_items)]
    quality = rng.normal(0.0, 0.5, size=n_items)

    # Related items: nearest neighbours in a latent space where genres form clusters.
    centres = rng.normal(size=(n_genres, spec.latent_dim))
    latent = centres[main_genre] + 0.6 * rng.normal(size=(n_items, spec.latent_dim))
    related = _nearest_neighbours(latent, spec.n_related)

    # Users: a taste over genres (Dirichlet) that shapes both choices and ratings.
    items_rng = rng
    if spec.user_seed is not None:
        rng = np.random.default_rng([spec.seed, spec.user_seed])
    taste = rng.dirichlet(np.full(n_genres, 0.3), size=spec.n_users)
    affinity = taste @ genre_matrix.T.astype(float)  # (users, items)
    counts = _activity(rng, spec)

    rows_user, rows_item, rows_rating, rows_time = [], [], [], []
    start = rng.integers(820_000_000, 1_500_000_000, size=spec.n_users)
    log_pop = np.log(popularity)
    for u in range(spec.n_users):
        # One Gumbel-top-k draw gives the user's taste-ordered candidates without
        # replacement; the walk consumes it and jumps to successors when it follows.
        logits = log_pop + 4.0 * affinity[u]
        order = np.argsort(-(logits + rng.gumbel(size=n_items)))
        seen = np.zeros(n_items, dtype=bool)
        history: list[int] = []
        cursor = 0
        follow = rng.random(counts[u]) < spec.follow_prob
        for step in range(counts[u]):
            item = -1
            if step > 0 and follow[step]:
                options = related[history[-1]]
                options = options[~seen[options]]
                if options.size:
                    # Closer and more popular related items are likelier next steps.
                    weights = popularity[options] / (1.0 + np.arange(options.size))
                    item = int(rng.choice(options, p=weights / weights.sum()))
            if item < 0:
                while seen[order[cursor]]:
                    cursor += 1
                item = int(order[cursor])
            seen[item] = True
            history.append(item)
        items = np.asarray(history)
        gaps = np.floor(rng.exponential(3 * 3600.0, size=items.size)).astype(np.int64)
        z = (
            3.3
            + 4.0 * (affinity[u, items] - affinity[u, items].mean())
            + quality[items]
        )
        stars = np.clip(
            np.round((z + rng.normal(0, 0.6, items.size)) * 2) / 2, 0.5, 5.0
        )
        rows_user.append(np.full(items.size, u + 1))
        rows_item.append(items + 1)
        rows_rating.append(stars)
        rows_time.append(start[u] + np.cumsum(gaps))

    ratings = pd.DataFrame(
        {
            "userId": np.concatenate(rows_user),
            "movieId": np.concatenate(rows_item),
            "rating": np.concatenate(rows_rating),
            "timestamp": np.concatenate(rows_time),
        }
    )
    titles = [  # from the items' stream (the only stream when user_seed is None)
        " ".join(items_rng.choice(_WORDS, size=items_rng.integers(1, 4), replace=False))
        for _ in range(n_items)
    ]
    movies = pd.DataFrame(
        {
            "movieId": np.arange(1, n_items + 1),
            "title": [f"{t} ({int(y)})" for t, y in zip(titles, years, strict=True)],
            "genres": [
                "|".join(GENRES[g] for g in np.flatnonzero(row)) for row in genre_matrix
            ],
        }
    )
    return ratings, movies


def _nearest_neighbours(points: np.ndarray, k: int, chunk: int = 2048) -> np.ndarray:
    """Indices of each point's k nearest others (Euclidean), closest first, in chunks so
    large catalogues do not need an n x n matrix at once."""
    squared = (points**2).sum(axis=1)
    out = np.empty((len(points), k), dtype=np.int64)
    for start in range(0, len(points), chunk):
        block = points[start : start + chunk]
        distance = (
            squared[start : start + chunk, None]
            - 2 * block @ points.T
            + squared[None, :]
        )
        distance[np.arange(len(block)), np.arange(start, start + len(block))] = np.inf
        nearest = np.argpartition(distance, k, axis=1)[:, :k]
        order = np.take_along_axis(distance, nearest, axis=1).argsort(axis=1)
        out[start : start + chunk] = np.take_along_axis(nearest, order, axis=1)
    return out


def _genre_prior() -> np.ndarray:
    """Drama and Comedy dominate MovieLens; a rough version of that skew."""
    weights = np.ones(len(GENRES))
    for name, w in {
        "Drama": 5,
        "Comedy": 4,
        "Action": 3,
        "Thriller": 2.5,
        "Romance": 2,
    }.items():
        weights[GENRES.index(name)] = w
    return weights / weights.sum()


def write_sample(spec: SampleSpec, folder: Path) -> Path:
    """Write the sample into `folder` (ml-latest-small layout) and return the folder."""
    ratings, movies = generate_sample(spec)
    folder.mkdir(parents=True, exist_ok=True)
    ratings.to_csv(folder / "ratings.csv", index=False)
    movies.to_csv(folder / "movies.csv", index=False)
    return folder
