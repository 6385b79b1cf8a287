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

How it scales: users are generated in batches of similar activity, each batch's walks
stepped together (one numpy step per position, not per user), and taste orders drawn with
replacement then de-duplicated (exactly a draw without replacement); memory is bounded by
a batch, never users x items. Related items come from a k-d tree.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
from sklearn.neighbors import NearestNeighbors

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
        if self.min_user_ratings < 1 or not 1 <= self.n_related < self.n_items:
            raise ValueError(
                f"sample: min_user_ratings must be >= 1 and n_related in [1, n_items), got "
                f"min_user_ratings={self.min_user_ratings}, n_related={self.n_related}"
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
    The same spec always yields the same frames. Users are generated in batches of similar
    activity (`_walk_batch`), so memory is bounded by a batch, not by users x items.
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
    titles = [
        " ".join(rng.choice(_WORDS, size=rng.integers(1, 4), replace=False))
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

    # Users: a taste over genres (Dirichlet) that shapes both choices and ratings.
    if spec.user_seed is not None:
        rng = np.random.default_rng([spec.seed, spec.user_seed])
    taste = rng.dirichlet(np.full(n_genres, 0.3), size=spec.n_users)
    counts = _activity(rng, spec)
    start = rng.integers(820_000_000, 1_500_000_000, size=spec.n_users)
    catalogue = _Catalogue.build(genre_matrix, popularity, quality, related)

    # Batches of users with similar activity, so each batch's walk takes about as many
    # steps as its users have ratings; a batch's `seen` matrix is at most ~64 MB.
    by_activity = np.argsort(counts, kind="stable")
    batch = max(1, min(spec.n_users, (64 << 20) // n_items))
    parts = [
        _walk_batch(
            rng, catalogue, spec, users, taste[users], counts[users], start[users]
        )
        for users in np.array_split(by_activity, -(-spec.n_users // batch))
    ]
    users, items, stars, times = (np.concatenate(column) for column in zip(*parts))
    order = np.argsort(users, kind="stable")  # by user, each history in time order
    ratings = pd.DataFrame(
        {
            "userId": users[order] + 1,
            "movieId": items[order] + 1,
            "rating": stars[order],
            "timestamp": times[order],
        }
    )
    return ratings, movies


@dataclass(frozen=True)
class _Catalogue:
    """What the user walk needs to know about the items."""

    genres: np.ndarray  # (items, genres) bool
    popularity: np.ndarray  # (items,) Zipf weights
    quality: np.ndarray  # (items,) shifts every user's rating of the item
    related: np.ndarray  # (items, n_related) nearest first
    # For `_taste_order`, computed once, not per batch of users:
    genre_sets: np.ndarray  # (sets, genres) the distinct genre combinations
    log_set_mass: np.ndarray  # (sets,) log of each set's total popularity
    by_set: np.ndarray  # (items,) item indices grouped by genre set
    within_set_cdf: (
        np.ndarray
    )  # `_offset_cdf` of popularity within each set, by_set order

    @classmethod
    def build(cls, genres, popularity, quality, related) -> _Catalogue:
        sets, set_of = np.unique(genres, axis=0, return_inverse=True)
        set_of = set_of.ravel()
        by_set = np.argsort(set_of, kind="stable")
        mass = np.bincount(set_of, weights=popularity)
        within = _offset_cdf(popularity[by_set], set_of[by_set])
        return cls(genres, popularity, quality, related, sets, np.log(mass), by_set, within)  # fmt: skip


def _walk_batch(
    rng: np.random.Generator,
    catalogue: _Catalogue,
    spec: SampleSpec,
    users: np.ndarray,
    taste: np.ndarray,
    counts: np.ndarray,
    start: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Histories of one batch of users, as flat (user, item, stars, timestamp) arrays.

    Each user walks `counts` steps without repeating an item: with probability
    `follow_prob` to an unseen item related to the previous one (closer and more popular
    ones likelier), otherwise to the next unseen item of their taste order (`_taste_order`).
    The walk steps all users of the batch together, one position at a time.
    """
    n_users, longest = len(users), int(counts.max())
    order = _taste_order(rng, catalogue, taste, counts)
    seen = np.zeros((n_users, catalogue.genres.shape[0]), dtype=bool)
    history = np.full((n_users, longest), -1, dtype=np.int64)
    cursor = np.zeros(n_users, dtype=np.int64)
    follow = rng.random((n_users, longest)) < spec.follow_prob
    rank_weight = 1.0 / (1.0 + np.arange(spec.n_related))
    for step in range(longest):
        rows = np.flatnonzero(counts > step)
        item = np.full(rows.size, -1, dtype=np.int64)
        if step > 0:
            chosen = np.flatnonzero(follow[rows, step])
            options = catalogue.related[history[rows[chosen], step - 1]]
            weights = catalogue.popularity[options] * rank_weight
            weights[seen[rows[chosen, None], options]] = 0.0
            total = weights.sum(axis=1)
            draw = rng.random(chosen.size) * total
            pick = (weights.cumsum(axis=1) <= draw[:, None]).sum(axis=1)
            found = total > 0
            item[chosen[found]] = options[found, pick[found]]
        walk = np.flatnonzero(item < 0)
        while walk.size:  # skip taste-order items a related step already took
            taken = seen[rows[walk], order[rows[walk], cursor[rows[walk]]]]
            cursor[rows[walk[taken]]] += 1
            walk = walk[taken]
        walk = np.flatnonzero(item < 0)
        item[walk] = order[rows[walk], cursor[rows[walk]]]
        cursor[rows[walk]] += 1
        seen[rows, item] = True
        history[rows, step] = item

    # Flatten (users are rows, steps columns); ratings follow taste, quality and noise.
    mask = np.arange(longest) < counts[:, None]
    row_of = np.broadcast_to(np.arange(n_users)[:, None], mask.shape)[mask]
    items = history[mask]
    affinity = (taste[row_of] * catalogue.genres[items]).sum(axis=1)
    user_mean = np.bincount(row_of, weights=affinity) / counts
    z = 3.3 + 4.0 * (affinity - user_mean[row_of]) + catalogue.quality[items]
    stars = np.clip(np.round((z + rng.normal(0, 0.6, items.size)) * 2) / 2, 0.5, 5.0)
    gaps = np.floor(rng.exponential(3 * 3600.0, size=items.size)).astype(np.int64)
    elapsed = np.cumsum(gaps)
    first = np.concatenate(([0], np.cumsum(counts)[:-1]))
    elapsed -= np.repeat(elapsed[first] - gaps[first], counts)
    return users[row_of], items, stars, start[row_of] + elapsed


def _taste_order(
    rng: np.random.Generator,
    catalogue: _Catalogue,
    taste: np.ndarray,
    counts: np.ndarray,
) -> np.ndarray:
    """Each user's first `counts` items of a draw without replacement with weights
    popularity x exp(4 x taste . genres) — padded with -1 to (users, max count).

    Drawing with replacement and keeping each item's first appearance is exactly sequential
    draws without replacement, and vectorises: items are drawn as (genre set, then item
    within it by popularity), by inverse CDFs over all users at once; users still short of
    `counts` distinct items draw again. A walk never reads past its user's `counts`
    entries: every entry it passes is an item the user has seen (fewer than `counts`).
    """
    sets = len(catalogue.genre_sets)
    # Per user: the weight of each genre set, as one flat CDF offset by the user's row.
    log_weight = catalogue.log_set_mass[None, :] + 4.0 * taste @ catalogue.genre_sets.T.astype(float)  # fmt: skip
    weight = np.exp(log_weight - log_weight.max(axis=1, keepdims=True))
    user_cdf = _offset_cdf(weight.ravel(), np.repeat(np.arange(len(taste)), sets))

    n_users, longest = len(taste), int(counts.max())
    order = np.full((n_users, longest), -1, dtype=np.int64)
    have = np.zeros(n_users, dtype=np.int64)
    drawn_users = np.empty(0, dtype=np.int64)
    drawn_items = np.empty(0, dtype=np.int64)
    short, rounds = np.arange(n_users), 0
    while short.size:  # heavy users of a long-tailed catalogue may need several rounds
        need = (2 << rounds) * (counts[short] - have[short]) + 8
        rounds += 1
        who = np.repeat(short, need)
        flat_set = np.searchsorted(user_cdf, who + rng.random(who.size), side="right")
        genre_set = flat_set - who * sets
        item = catalogue.by_set[
            np.searchsorted(catalogue.within_set_cdf, genre_set + rng.random(who.size), side="right")
        ]  # fmt: skip
        drawn_users = np.concatenate((drawn_users, who))
        drawn_items = np.concatenate((drawn_items, item))
        # First appearances, in draw order, per user.
        key = drawn_users * catalogue.genres.shape[0] + drawn_items
        _, first = np.unique(key, return_index=True)
        first.sort()
        keep_users, keep_items = drawn_users[first], drawn_items[first]
        stable = np.argsort(keep_users, kind="stable")
        keep_users, keep_items = keep_users[stable], keep_items[stable]
        have = np.bincount(keep_users, minlength=n_users)
        short = np.flatnonzero(have < counts)
    position = np.arange(keep_users.size) - np.repeat(
        np.concatenate(([0], np.cumsum(have)[:-1])), have
    )
    take = position < counts[keep_users]
    order[keep_users[take], position[take]] = keep_items[take]
    return order


def _offset_cdf(weights: np.ndarray, group: np.ndarray) -> np.ndarray:
    """One increasing array holding each group's normalised CDF shifted up by the group's
    index (groups contiguous and numbered 0, 1, ..., each non-empty with positive total):
    searching `g + uniform` in it (side="right") draws from group g, for many groups in
    one `np.searchsorted`. Each group ends at exactly g + 1, so rounding never spills a
    draw into the next group."""
    sizes = np.bincount(group)
    share = weights / np.bincount(group, weights=weights)[group]
    ends = np.cumsum(sizes)
    running = np.cumsum(share)
    before = np.concatenate(([0.0], running[ends[:-1] - 1]))
    cdf = np.minimum(running - np.repeat(before, sizes), 1.0)
    cdf[ends - 1] = 1.0
    return group + cdf


def _nearest_neighbours(points: np.ndarray, k: int) -> np.ndarray:
    """Indices of each point's k nearest others (Euclidean), closest first. A k-d tree
    (scikit-learn) keeps this near-linear in the catalogue: 87,000 items take seconds,
    where an items x items distance matrix would not fit."""
    nearest = (
        NearestNeighbors(n_neighbors=k + 1, algorithm="kd_tree")
        .fit(points)
        .kneighbors(points, return_distance=False)
    )
    # Drop each point itself (normally first; last column if a tie hid it).
    is_self = nearest == np.arange(len(points))[:, None]
    is_self[~is_self.any(axis=1), -1] = True
    return nearest[~is_self].reshape(len(points), k)


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
    _write_ratings(ratings, folder / "ratings.csv")
    movies.to_csv(folder / "movies.csv", index=False)
    return folder


_STARS = pa.array([f"{half / 2:.1f}" for half in range(1, 11)])


def _write_ratings(ratings: pd.DataFrame, path: Path) -> None:
    """ratings.csv exactly as pandas would write it ("4.0", no quotes), but with Arrow's
    writer: 32M rows in seconds rather than minutes."""
    stars = (ratings["rating"].to_numpy() * 2).astype(np.int8) - 1
    table = pa.table(
        {
            "userId": ratings["userId"].to_numpy(),
            "movieId": ratings["movieId"].to_numpy(),
            "rating": pa.DictionaryArray.from_arrays(stars, _STARS),
            "timestamp": ratings["timestamp"].to_numpy(),
        }
    )
    with open(path, "wb") as out:
        out.write(b"userId,movieId,rating,timestamp\n")
        pa_csv.write_csv(
            table, out, pa_csv.WriteOptions(include_header=False, quoting_style="none")
        )


SHOP_CATEGORIES = (
    "Audio",
    "Books",
    "Cameras",
    "Kitchen",
    "Garden",
    "Games",
    "Sports",
    "Toys",
    "Beauty",
    "Tools",
    "Music",
    "Office",
    "Pets",
    "Outdoor",
    "Computers",
    "Phones",
    "Fashion",
    "Home",
)  # fmt: skip  (one per GENRES entry, in order)


def write_event_log(spec: SampleSpec, folder: Path) -> tuple[Path, Path]:
    """The sample as a shop's event log, for the README's worked example and the tests
    of a log of one's own: `events.parquet` (visitor, sku, event_time: text ids, a
    Parquet timestamp, no ratings: implicit feedback) and `products.csv` (sku, name,
    categories: '|'-separated, price: a numeric feature; no year). Same walks, same structure as the sample."""
    ratings, movies = generate_sample(spec)
    category = dict(zip(GENRES, SHOP_CATEGORIES, strict=True))
    # a price level per main category, with noise around it
    main = movies["genres"].str.split("|").str[0].map(GENRES.index).to_numpy()
    noise = np.random.default_rng(spec.seed).normal(0.0, 0.4, len(movies))
    price = np.round(np.exp(2.0 + 0.15 * main + noise), 2)
    folder.mkdir(parents=True, exist_ok=True)
    events = pd.DataFrame(
        {
            "visitor": [f"v{u:05d}" for u in ratings["userId"]],
            "sku": [f"sku-{i:05d}" for i in ratings["movieId"]],
            "event_time": pd.to_datetime(ratings["timestamp"], unit="s"),
        }
    )
    products = pd.DataFrame(
        {
            "sku": [f"sku-{i:05d}" for i in movies["movieId"]],
            "name": movies["title"].str.replace(r"\s*\(\d{4}\)$", "", regex=True),
            "categories": movies["genres"].map(
                lambda gs: "|".join(category[g] for g in gs.split("|"))
            ),  # fmt: skip
            "price": price,  # a numeric feature: columns.features=price
        }
    )
    events.to_parquet(folder / "events.parquet", index=False)
    products.to_csv(folder / "products.csv", index=False)
    return folder / "events.parquet", folder / "products.csv"
