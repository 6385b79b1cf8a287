"""Classic baselines, all scoring a user from the items in their context (history).

Because every baseline scores from the context rather than from a learned per-user
vector, each of them can rank items for a user never seen in training, from that user's
history, except MostPopular, which gives everyone the same list. MF does this by fold-in:
the closed-form least-squares user vector for the given history (exactly the user update
of its ALS solver), so warm and cold users are scored the same way.

Every baseline is a set of named numpy arrays plus a small config, saved by
`ArrayModelDataset` as safetensors + JSON: nothing is pickled.
"""

from __future__ import annotations

import functools
import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import scipy.sparse as sp
import torch

from maskrec.catalogue import ItemCatalogue
from maskrec.progress import Progress

logger = logging.getLogger(__name__)


def interaction_matrix(sequences: list, n_items: int) -> sp.csr_matrix:
    """Binary users x (N + 1) matrix (column 0, padding, stays empty)."""
    rows = np.repeat(np.arange(len(sequences)), [len(s) for s in sequences])
    cols = (
        np.concatenate([np.asarray(s, dtype=np.int64) for s in sequences])
        if len(sequences)
        else np.zeros(0, np.int64)
    )
    matrix = sp.csr_matrix(
        (np.ones(len(cols), dtype=np.float32), (rows, cols)),
        shape=(len(sequences), n_items + 1),
    )
    matrix.data[:] = 1.0  # duplicates collapse to 1
    return matrix


def context_matrix(
    rows: torch.Tensor, items: torch.Tensor, batch: int, n_items: int
) -> sp.csr_matrix:
    values = np.ones(len(items), dtype=np.float32)
    matrix = sp.csr_matrix(
        (values, (rows.numpy(), items.numpy())), shape=(batch, n_items + 1)
    )
    matrix.data[:] = 1.0
    return matrix


@dataclass
class Baseline(ABC):
    """Base: `arrays` holds the fitted state; `score_contexts` maps a context matrix to scores."""

    kind: ClassVar[str] = ""
    n_items: int
    config: dict = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    # the items it ranks and what it was trained on (`maskrec.catalogue`); set by the
    # node that keeps it, None in folders saved before models kept it
    catalogue: ItemCatalogue | None = None
    personalises_new_users: ClassVar[bool] = True

    @abstractmethod
    def score_contexts(self, contexts: sp.csr_matrix) -> np.ndarray:
        """(users, N + 1) scores for a binary users x (N + 1) context matrix."""

    def score(
        self, rows: torch.Tensor, items: torch.Tensor, batch: int
    ) -> torch.Tensor:
        """Scores over ids 0..N for `batch` users whose contexts are (row, item) pairs."""
        scores = self.score_contexts(context_matrix(rows, items, batch, self.n_items))
        return torch.from_numpy(np.asarray(scores, dtype=np.float32))


@dataclass
class MostPopular(Baseline):
    kind: ClassVar[str] = "most_popular"
    personalises_new_users: ClassVar[bool] = False

    @classmethod
    def fit(cls, train: sp.csr_matrix) -> MostPopular:
        counts = np.asarray(train.sum(axis=0)).ravel().astype(np.float32)
        # A tiny deterministic tie-break so equal counts do not tie in ranking.
        counts += np.linspace(0, 1e-3, len(counts), dtype=np.float32)[::-1]
        return cls(n_items=train.shape[1] - 1, arrays={"counts": counts})

    def score_contexts(self, contexts: sp.csr_matrix) -> np.ndarray:
        return np.broadcast_to(
            self.arrays["counts"], (contexts.shape[0], len(self.arrays["counts"]))
        ).copy()


@dataclass
class ItemKNN(Baseline):
    """Item-item cosine similarity with shrinkage, each item keeping its `neighbours` most
    similar items. Fitted a block of items at a time and stored sparse (items x
    neighbours), so memory grows with the catalogue, not with its square: the dense
    items x items matrix of 87,000 items would take 30 GB."""

    kind: ClassVar[str] = "item_knn"

    @classmethod
    def fit(
        cls,
        train: sp.csr_matrix,
        neighbours: int = 100,
        shrink: float = 10.0,
        block: int | None = None,
    ) -> ItemKNN:
        """`block`: items per block (default: ~128 MiB of float32 similarities)."""
        return cls.fit_grid(train, [neighbours], [shrink], block)[(neighbours, shrink)]

    @classmethod
    def fit_grid(
        cls,
        train: sp.csr_matrix,
        neighbours: list[int],
        shrinks: list[float],
        block: int | None = None,
    ) -> dict[tuple[int, float], ItemKNN]:
        """Every (neighbours, shrink) model in one pass over the item blocks: the
        co-occurrence counts, the costly part, depend on neither, and a smaller
        neighbourhood is the head of a larger one's ranking (ties broken by item id)."""
        n = train.shape[1]
        norms = np.sqrt(np.asarray(train.sum(axis=0)).ravel().astype(np.float32))
        by_item = train.T.tocsr()
        block = block or max(1, (1 << 25) // n)
        widest = min(max(neighbours), n)
        parts: dict[tuple[int, float], list] = {(k, s): [] for k in neighbours for s in shrinks}  # fmt: skip
        progress = Progress(logger, "item_knn neighbourhoods", n, "items")
        for start in range(0, n, block):
            stop = min(start + block, n)
            co = (by_item[start:stop] @ train).toarray().astype(np.float32)
            for shrink in shrinks:
                similarity = co / (np.outer(norms[start:stop], norms) + shrink + 1e-12)
                similarity[np.arange(stop - start), np.arange(start, stop)] = 0.0
                top = (np.argpartition(-similarity, widest - 1, axis=1)[:, :widest] if widest < n
                       else np.broadcast_to(np.arange(n), similarity.shape))  # fmt: skip
                values = np.take_along_axis(similarity, top, axis=1)
                order = np.lexsort((top, -values), axis=1)  # best first, then by id
                top = np.take_along_axis(top, order, axis=1)
                values = np.take_along_axis(values, order, axis=1)
                for k in neighbours:
                    row, col = np.nonzero(values[:, :k])
                    parts[(k, shrink)].append((row + start, top[row, col], values[row, col]))  # fmt: skip
            progress.update(stop - start)
        progress.close()
        models = {}
        for (k, shrink), blocks in parts.items():
            rows, cols, values = (np.concatenate(column) for column in zip(*blocks, strict=True))  # fmt: skip
            matrix = sp.csr_matrix(
                (values, (rows, cols)), shape=(n, n), dtype=np.float32
            )
            arrays = {"indptr": matrix.indptr.astype(np.int64),
                      "indices": matrix.indices.astype(np.int64), "values": matrix.data}  # fmt: skip
            models[(k, shrink)] = cls(n_items=n - 1, config={"neighbours": k, "shrink": shrink}, arrays=arrays)  # fmt: skip
        return models

    @property
    def similarity(self) -> sp.csr_matrix:
        """(N + 1) x (N + 1): row i holds item i's neighbours."""
        n = self.n_items + 1
        a = self.arrays
        return sp.csr_matrix((a["values"], a["indices"], a["indptr"]), shape=(n, n))

    def score_contexts(self, contexts: sp.csr_matrix) -> np.ndarray:
        return (contexts @ self.similarity).toarray()


@dataclass
class EASE(Baseline):
    """Steck's EASE: closed-form item-item weights with an L2 penalty and a zero diagonal."""

    kind: ClassVar[str] = "ease"

    @classmethod
    def fit(cls, train: sp.csr_matrix, l2: float = 250.0) -> EASE:
        gram = (train.T @ train).toarray().astype(np.float64)
        gram[np.diag_indices_from(gram)] += l2
        precision = np.linalg.inv(gram)
        weights = -precision / np.diag(precision)
        np.fill_diagonal(weights, 0.0)
        return cls(
            n_items=train.shape[1] - 1,
            config={"l2": l2},
            arrays={"weights": weights.astype(np.float32)},
        )

    def score_contexts(self, contexts: sp.csr_matrix) -> np.ndarray:
        return contexts @ self.arrays["weights"]


def dense_skip_reason(n_items: int, max_dense_items: int) -> str | None:
    """Why EASE (a dense items x items solve) is skipped for a catalogue of `n_items`, or
    None when it fits under `max_dense_items` (`baselines.max_dense_items`). The run-start
    hook asks the same question of the raw catalogue, so the skip is announced before any
    work, and the baselines node again of the cleaned one."""
    if n_items <= max_dense_items:
        return None
    gib = 3 * (n_items + 1) ** 2 * 8 / 2**30  # Gram, inverse and weights in float64
    return (
        f"the catalogue has {n_items:,} items, above baselines.max_dense_items="
        f"{max_dense_items:,} (its items x items solve needs about {gib:,.0f} GiB); "
        "raise baselines.max_dense_items if the memory is there"
    )


@dataclass
class MatrixFactorization(Baseline):
    """Confidence-weighted implicit ALS (Hu, Koren & Volinsky, 2008), fitted by the
    `implicit` library: a seen item has preference 1 and confidence `alpha`, every other
    item preference 0 and confidence 1; `l2` penalises both factor matrices. `alpha=1`
    weighs seen and unseen alike, the uniform least-squares factorisation.

    Users are scored by fold-in, the library's exact (Cholesky) user step for their
    context against the fitted item factors, so users never seen in training are scored
    from their history like everyone else. Only the item factors are kept.
    """

    kind: ClassVar[str] = "mf_als"

    @classmethod
    def fit(
        cls,
        train: sp.csr_matrix,
        factors: int = 64,
        l2: float = 10.0,
        alpha: float = 1.0,
        iterations: int = 15,
        seed: int = 0,
    ) -> MatrixFactorization:
        config = {"factors": factors, "l2": l2, "alpha": alpha,
                  "iterations": iterations, "seed": seed}  # fmt: skip
        solver = _als_solver(config)
        with _one_blas_thread(), Progress(logger, f"mf_als {config}", iterations, "iterations") as progress:  # fmt: skip
            solver.fit(train.astype(np.float32), show_progress=False,
                       callback=lambda *_: progress.update(1))  # fmt: skip
        return cls(n_items=train.shape[1] - 1, config=config,
                   arrays={"items": np.ascontiguousarray(solver.item_factors, dtype=np.float32)})  # fmt: skip

    @functools.cached_property
    def _solver(self):
        solver = _als_solver(self.config)
        solver.item_factors = self.arrays["items"]
        return solver

    def fold_in(self, contexts: sp.csr_matrix) -> np.ndarray:
        """(users, factors): each row's least-squares user vector given its context."""
        with _one_blas_thread():
            return self._solver.recalculate_user(np.arange(contexts.shape[0]), contexts)

    def score_contexts(self, contexts: sp.csr_matrix) -> np.ndarray:
        return self.fold_in(contexts.astype(np.float32)) @ self.arrays["items"].T


def _als_solver(config: dict):
    """implicit's CPU ALS (conjugate-gradient fit, 3 steps per solve: the library's
    default) for a `MatrixFactorization.config`. Each user's and item's solve is
    independent, so results do not depend on the number of threads."""
    from implicit.cpu.als import AlternatingLeastSquares

    with _one_blas_thread():
        return AlternatingLeastSquares(
            factors=config["factors"],
            regularization=config["l2"],
            # models saved before confidence weighting were uniform: alpha 1, same scores
            alpha=config.get("alpha", 1.0),
            iterations=config["iterations"],
            random_state=config["seed"],
        )


def _one_blas_thread():
    """implicit runs its own threads; BLAS threads inside them oversubscribe the cores
    (the library warns about it on construction)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1, "blas")


@dataclass
class Skipped(Baseline):
    """The record of a baseline this run did not fit (`config`: `model`, `reason`), saved
    where the model would be so that evaluation and the summary say what happened instead
    of failing; it cannot score."""

    kind: ClassVar[str] = "skipped"

    @property
    def reason(self) -> str:
        return f"{self.config['model']} skipped: {self.config['reason']}"

    def score_contexts(self, contexts: sp.csr_matrix) -> np.ndarray:
        raise RuntimeError(self.reason)


def newness(years: np.ndarray) -> np.ndarray:
    """Release years (0 or NaN: unknown) as 0..1 from the oldest to the newest known year,
    unknown as the oldest; ties broken by a tiny deterministic amount (lower id first), as
    `MostPopular` breaks equal counts."""
    years = np.nan_to_num(np.asarray(years, dtype=np.float64), nan=0.0)
    known = years[years > 0]
    low, high = (known.min(), known.max()) if len(known) else (0.0, 1.0)
    scaled = np.where(years > 0, (years - low) / max(high - low, 1.0), 0.0)
    return (scaled + np.linspace(0, 1e-6, len(years))[::-1]).astype(np.float32)


@dataclass
class NewestFirst(Baseline):
    """The newest films first, from the item table's release year alone: a content
    baseline that needs no interaction, so it ranks films never trained on like any other
    (issue 27's leak-free reference for new items)."""

    kind: ClassVar[str] = "newest_first"
    personalises_new_users: ClassVar[bool] = False

    @classmethod
    def fit(cls, years: np.ndarray) -> NewestFirst:
        """`years[i]`: release year of model item i (index 0, padding, ignored)."""
        return cls(n_items=len(years) - 1, arrays={"newness": newness(years)})

    def score_contexts(self, contexts: sp.csr_matrix) -> np.ndarray:
        return np.broadcast_to(self.arrays["newness"], (contexts.shape[0], self.n_items + 1)).copy()  # fmt: skip


@dataclass
class GenreRecency(Baseline):
    """Genre match x recency from content alone: (share of the user's history in each of
    the film's genres, averaged over its genres, + `floor`) x (newness + `floor`). Leak-free
    for new films: it reads their genres and year, never their interactions."""

    kind: ClassVar[str] = "genre_recency"

    @classmethod
    def fit(cls, genres: np.ndarray, years: np.ndarray, floor: float = 0.05) -> GenreRecency:  # fmt: skip
        """`genres`: (N + 1, G) 0/1 flags per model item (row 0 padding)."""
        flags = np.asarray(genres, dtype=np.float32)
        per_genre = flags / np.maximum(flags.sum(axis=1, keepdims=True), 1.0)
        return cls(n_items=len(years) - 1, config={"floor": floor},
                   arrays={"genres": flags, "per_genre": per_genre, "newness": newness(years)})  # fmt: skip

    def score_contexts(self, contexts: sp.csr_matrix) -> np.ndarray:
        genres = self.arrays["genres"]
        sizes = np.asarray(contexts.sum(axis=1)).reshape(-1, 1)
        profile = np.asarray(contexts @ genres) / np.maximum(sizes, 1.0)  # (U, G)
        match = profile @ self.arrays["per_genre"].T  # (U, N + 1)
        floor = self.config["floor"]
        return ((match + floor) * (self.arrays["newness"] + floor)).astype(np.float32)


@dataclass
class RandomScores(Baseline):
    """Chance: every item a random score, drawn afresh for each history (seeded by the
    seed and the history, so the same history always gets the same list)."""

    kind: ClassVar[str] = "random"

    @classmethod
    def fit(cls, n_items: int, seed: int) -> RandomScores:
        return cls(n_items=n_items, config={"seed": int(seed)})

    def score_contexts(self, contexts: sp.csr_matrix) -> np.ndarray:
        out = np.empty((contexts.shape[0], self.n_items + 1), dtype=np.float32)
        for row in range(contexts.shape[0]):
            history = contexts.indices[contexts.indptr[row] : contexts.indptr[row + 1]]
            rng = np.random.default_rng(
                [self.config["seed"], *np.sort(history).tolist()]
            )
            out[row] = rng.random(self.n_items + 1, dtype=np.float32)
        return out


BASELINES: dict[str, type[Baseline]] = {
    cls.kind: cls
    for cls in (MostPopular, ItemKNN, EASE, MatrixFactorization, NewestFirst, GenreRecency, RandomScores, Skipped)
}  # fmt: skip
