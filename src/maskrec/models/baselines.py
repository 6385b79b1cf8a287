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

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import scipy.sparse as sp
import torch


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
        n = train.shape[1]
        norms = np.sqrt(np.asarray(train.sum(axis=0)).ravel().astype(np.float32))
        by_item = train.T.tocsr()
        block = block or max(1, (1 << 25) // n)
        rows, cols, values = [], [], []
        for start in range(0, n, block):
            stop = min(start + block, n)
            co = (by_item[start:stop] @ train).toarray().astype(np.float32)
            similarity = co / (np.outer(norms[start:stop], norms) + shrink + 1e-12)
            similarity[np.arange(stop - start), np.arange(start, stop)] = 0.0
            if neighbours < n:
                cut = np.argpartition(-similarity, neighbours, axis=1)[:, neighbours:]
                np.put_along_axis(similarity, cut, 0.0, axis=1)
            row, col = np.nonzero(similarity)
            rows.append(row + start)
            cols.append(col)
            values.append(similarity[row, col])
        matrix = sp.csr_matrix(
            (np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))),
            shape=(n, n),
            dtype=np.float32,
        )
        arrays = {"indptr": matrix.indptr.astype(np.int64),
                  "indices": matrix.indices.astype(np.int64), "values": matrix.data}  # fmt: skip
        return cls(n_items=n - 1, config={"neighbours": neighbours, "shrink": shrink}, arrays=arrays)  # fmt: skip

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


@dataclass
class MatrixFactorization(Baseline):
    """Implicit matrix factorisation by alternating least squares (uniform weights).

    Each half-step is closed form: X = R Y (YᵀY + λI)⁻¹, then Y = Rᵀ X (XᵀX + λI)⁻¹.
    Users are scored by fold-in (the X step for their context), so users never seen in
    training are scored from their history like everyone else.
    """

    kind: ClassVar[str] = "mf_als"

    @classmethod
    def fit(
        cls,
        train: sp.csr_matrix,
        factors: int = 64,
        l2: float = 10.0,
        iterations: int = 15,
        seed: int = 0,
    ) -> MatrixFactorization:
        rng = np.random.default_rng(seed)
        items = rng.normal(0, 0.01, size=(train.shape[1], factors))
        eye = np.eye(factors)
        for _ in range(iterations):
            users = (train @ items) @ np.linalg.inv(items.T @ items + l2 * eye)
            items = (train.T @ users) @ np.linalg.inv(users.T @ users + l2 * eye)
        projection = np.linalg.inv(items.T @ items + l2 * eye)
        return cls(n_items=train.shape[1] - 1, config={"factors": factors, "l2": l2, "iterations": iterations, "seed": seed},
                   arrays={"items": items.astype(np.float32), "projection": projection.astype(np.float32)})  # fmt: skip

    def score_contexts(self, contexts: sp.csr_matrix) -> np.ndarray:
        items = self.arrays["items"]
        users = (contexts @ items) @ self.arrays["projection"]
        return users @ items.T


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


BASELINES: dict[str, type[Baseline]] = {
    cls.kind: cls for cls in (MostPopular, ItemKNN, EASE, MatrixFactorization, Skipped)
}
