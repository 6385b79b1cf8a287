"""Films no model trained on, mixed into any model's ranking from their content.

An interaction-trained model ranks a film it never trained on by content at best (issue
27: none of them put one in a top 10). `NewItems` scores such films as a mixture:

    p(film | history) = (1 - g) * p_model(film | history)    for films with training events
                      = g * p_content(film | history)       for films without

- `g`, the gate: the probability that the next film is one without training events, a
  logistic regression on the recent history (how recently its films first appeared in
  the training data, how many of them have no training events, how new they are);
- `p_content`: a conditional logit over the films without training events, on content
  alone (release year and its distance to the history's newest film, catalogue position,
  genre match with the history);
- `p_model`: the model's own softmax over the films with training events, at a temperature
  chosen on validation (`maskrec.scoring.fit_temperature`).

A model may know films without training events here from other data (a transfer model's
source): those films share what `p_content` gives them as a group by the model's own
softmax (`mix`'s `known`), so content decides how likely the next film is one of them and
the model which one.

Both `g` and `p_content` are fitted on a simulated hold-out of the training data: the
newest `fraction` of its films by first rating are taken out, as `data_split` does for
the real new films, and each user's last training events are the targets. Nothing but
training events and the item table is read, so the fit is leak-free, and the mixture is a
calibrated probability: no knob trades known films for new ones. Why a mixture and not the
sequence model's own content path: docs/architecture.md ("Films never trained on").

Saved like a baseline (`ArrayModelDataset`: arrays + JSON, nothing pickled).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression

from maskrec.catalogue import ItemCatalogue

GATE_FEATURES = (
    "mean debut of the recent films",  # 0 = first rated earliest in training, 1 = latest / never
    "latest debut among them",
    "debut of the last film",
    "log(1 + recent films without training events)",
    "mean release newness of the recent films",
    "share of recent films from the newest two release years",
    "log(1 + history length)",
)
CONTENT_FEATURES = (
    "catalogue position (the release's id order, 0..1)",
    "order of addition within its release year, among the new films (0..1)",
    "release newness (0..1 over the catalogue's years)",
    "released in the newest year",
    "released in the newest two years",
    "genre match with the history",
    "log(genre match + 0.01)",
    "release year minus the newest year in the recent history (/10, clipped to -1..0.2)",
    "released no earlier than the recent history's newest film",
)

# simulated choices the content model is fitted on, at most (ML-20M has ~40,000)
MAX_CHOICES = 5000


@dataclass
class NewItems:
    """The fitted gate and content model, plus the item state they read (arrays by model
    id 0..N: `trained`, `debut`, `years`, `newness`, `genres`, `position`)."""

    kind: ClassVar[str] = "new_items"
    n_items: int
    config: dict = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    catalogue: ItemCatalogue | None = None

    # -- fitting ---------------------------------------------------------------------------

    @classmethod
    def fit(
        cls,
        sequences: list[list[int]],
        timestamps: list[list[int]],
        windows: torch.Tensor,
        targets: list[int],
        years: np.ndarray,
        genres: np.ndarray,
        position: np.ndarray,
        fraction: float = 0.1,
        recent: int = 10,
        profile: int = 50,
        l2: float = 0.01,
        genre_names: list[str] | None = None,
    ) -> NewItems:
        """Fit on training `sequences` (model ids, oldest first) and their `timestamps`,
        with `simulated_targets` of them as `targets` and their contexts right-aligned
        (at least `max(recent, profile)` long) as `windows`; `years`, `genres` (flags) and
        `position` (catalogue order 0..1) by model id 0..N; `genre_names` name the
        genre columns (what a film added later may list)."""
        n_items = len(years) - 1
        content = _content_arrays(years, genres, position)
        config = {"recent": int(recent), "profile": int(profile), "fraction": float(fraction),
                  "newest_year": float(content["years"].max()), "genre_names": list(genre_names or [])}  # fmt: skip
        first = _first_seen(sequences, timestamps, n_items)
        is_held, state = simulated_hold_out(first, fraction)
        held = np.flatnonzero(is_held)
        simulated = {**content, **state}
        labels = is_held[np.asarray(targets, dtype=np.int64)] if targets else np.zeros(0, bool)  # fmt: skip
        gate = _fit_gate(_gate_features(windows, simulated, config).numpy(), labels)
        candidates = torch.from_numpy(held)
        new_rows = np.flatnonzero(labels)
        if (
            len(new_rows) > MAX_CHOICES
        ):  # evenly spaced: memory is rows x held films x features
            new_rows = new_rows[np.linspace(0, len(new_rows) - 1, MAX_CHOICES).astype(np.int64)]  # fmt: skip
        features = _content_features(windows[new_rows], candidates, simulated, config)
        chosen = torch.from_numpy(np.searchsorted(held, np.asarray(targets)[new_rows]))
        beta = _fit_conditional_logit(features, chosen, l2)
        config |= gate | {"beta": beta, "examples": len(labels), "new_targets": int(labels.sum()),
                          "held_out_films": len(held)}  # fmt: skip
        real = _state(first)
        return cls(n_items=n_items, config=config, arrays={**content, **real})

    def with_films(self, years: np.ndarray, genres: np.ndarray) -> NewItems:
        """This mixture over a catalogue grown by films added after training (ids N + 1,
        N + 2, ... in the given order): no training events, so scored by content alone;
        catalogue position after every film it was fitted on. `genres`: flags in the
        columns of `arrays["genres"]`."""
        count = len(years)
        arrays = dict(self.arrays)
        known = arrays["years"][arrays["years"] > 0]
        low = float(known.min()) if len(known) else 0.0
        span = max(self.config["newest_year"] - low, 1.0)
        added = np.asarray(years, dtype=np.float32)
        extra = {
            "trained": np.zeros(count, np.float32), "debut": np.ones(count, np.float32),
            "years": added, "newness": ((added - low) / span).astype(np.float32),
            "genres": np.asarray(genres, dtype=np.float32).reshape(count, -1),
            "position": (1 + np.arange(1, count + 1) / max(self.n_items, 1)).astype(np.float32),
        }  # fmt: skip
        arrays = {name: np.concatenate([arrays[name], extra[name]]) for name in extra}
        return NewItems(n_items=self.n_items + count, config=self.config, arrays=arrays, catalogue=self.catalogue)  # fmt: skip

    def add_films(self, films: pd.DataFrame, known: set[int]) -> tuple[NewItems, pd.DataFrame]:  # fmt: skip
        """Films added after training (`NewFilmsDataset`'s table: item_id, title, year,
        genres, where), refused with their file, line and column if the catalogue of
        original ids `known` has them or a genre is not one of `genre_names`; returns the
        grown mixture (`with_films`) and the films with their model ids (after the
        catalogue's), original ids, titles, years and genre flags."""
        names = self.config.get("genre_names", [])
        if not names and len(films):
            raise ValueError("new_films_model was saved before it kept its genres' names: refit it with `kedro run --pipelines baselines`")  # fmt: skip
        flags = np.zeros((len(films), len(names)), dtype=np.float32)
        for row, film in enumerate(films.itertuples()):
            if film.item_id in known:
                raise ValueError(f"{film.where}, column 'movieId': film {film.item_id} is already in the catalogue the models were trained on; list only films added since")  # fmt: skip
            for genre in film.genres.split("|"):
                if genre not in names:
                    raise ValueError(f"{film.where}, column 'genres': {genre!r} is not a genre of the catalogue the models were trained on; known: {'|'.join(names)}")  # fmt: skip
                flags[row, names.index(genre)] = 1.0
        ids = np.arange(self.n_items + 1, self.n_items + 1 + len(films))
        added = pd.DataFrame({
            "item_id": ids, "original_item_id": films["item_id"].to_numpy(dtype=np.int64),
            "title": films["title"].to_numpy(), "year": films["year"].to_numpy(), "genres": films["genres"].to_numpy(),
            **{f"genre_{g}": flags[:, i].astype("int8") for i, g in enumerate(names)},
        })  # fmt: skip
        return self.with_films(films["year"].to_numpy(dtype=np.float64), flags), added

    # -- scoring ---------------------------------------------------------------------------

    def untrained(self) -> torch.Tensor:
        """Bool per id 0..N: the films without training events (padding: False)."""
        out = torch.from_numpy(np.asarray(self.arrays["trained"]) == 0)
        out[0] = False
        return out

    def gate(self, contexts: torch.Tensor) -> torch.Tensor:
        """P(the next film has no training events) for right-aligned `contexts` (B, L)."""
        x = _gate_features(contexts, self.arrays, self.config)
        mean = torch.tensor(self.config["gate_mean"], dtype=torch.float32)
        scale = torch.tensor(self.config["gate_scale"], dtype=torch.float32)
        coef = torch.tensor(self.config["gate_coef"], dtype=torch.float32)
        return torch.sigmoid(
            ((x - mean) / scale) @ coef + self.config["gate_intercept"]
        )

    def content_log_probs(self, contexts: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:  # fmt: skip
        """log p_content over `candidates` (model ids) for each context.  -> (B, C)"""
        features = _content_features(contexts, candidates, self.arrays, self.config)
        return torch.log_softmax(features @ torch.tensor(self.config["beta"], dtype=torch.float32), dim=-1)  # fmt: skip

    def mix(self, scores: torch.Tensor, contexts: torch.Tensor, temperature: float,
            seen: torch.Tensor | None = None, known: torch.Tensor | None = None) -> torch.Tensor:  # fmt: skip
        """Log-probabilities of the mixture over ids 0..n_items from a model's `scores`
        (B, M + 1) over its own ids 0..M (M <= n_items: films added after training have
        no model score): its softmax at `temperature` over the trained films, normalised
        over those not `seen` (a bool (B, M + 1): films the protocol excludes), the
        content model over the films without training events. Column 0 stays -inf.

        `known` (a bool per model id 0..M, `SequenceRecModel.known_items`): the films the
        model trained on, which may include films without training events *here* (a
        transfer model met them in its source). Among the films without training events,
        those share the content model's probability of the group by the model's own
        softmax at `temperature`: content says how likely the next film is one of them,
        the model which one. Nothing is fitted for it, so no knob trades one for the other."""
        untrained = self.untrained().to(scores.device)
        scored = scores.shape[1] - 1
        trained_scores = scores[:, 1:].masked_fill(untrained[1 : scored + 1], -torch.inf) / temperature  # fmt: skip
        unseen = trained_scores if seen is None else trained_scores.masked_fill(seen[:, 1:], -torch.inf)  # fmt: skip
        normaliser = torch.logsumexp(unseen, dim=-1, keepdim=True)
        out = scores.new_full((len(scores), self.n_items + 1), -torch.inf)
        gate = self.gate(contexts.cpu()).to(scores.device).clamp(1e-6, 1 - 1e-6)
        out[:, 1 : scored + 1] = (
            trained_scores - normaliser + torch.log1p(-gate)[:, None]
        )
        candidates = torch.nonzero(untrained).squeeze(1)
        if len(candidates):
            new = self.content_log_probs(contexts.cpu(), candidates.cpu()).to(scores.device)  # fmt: skip
            if known is not None:
                new = _known_by_model(
                    new, candidates, scores / temperature, known, seen
                )
            out[:, candidates] = new + gate.log()[:, None]
        return out


# -- helpers -----------------------------------------------------------------------------


def _known_by_model(content: torch.Tensor, candidates: torch.Tensor, scores: torch.Tensor,
                    known: torch.Tensor, seen: torch.Tensor | None) -> torch.Tensor:  # fmt: skip
    """`content` (B, C: log p_content over `candidates`) with the candidates the model
    `known`s sharing their content probability, over those not `seen`, by the model's
    log-softmax of `scores` (B, M + 1, already divided by the temperature)."""
    scored = scores.shape[1] - 1
    in_model = candidates <= scored
    group = torch.zeros_like(in_model)
    group[in_model] = known.to(candidates.device)[candidates[in_model]]
    if not group.any():
        return content
    films = candidates[group].to(scores.device)
    excluded = seen[:, films] if seen is not None else torch.zeros(len(scores), len(films), dtype=torch.bool, device=scores.device)  # fmt: skip
    share = torch.logsumexp(content[:, group].masked_fill(excluded, -torch.inf), dim=1)
    within = torch.log_softmax(
        scores[:, films].masked_fill(excluded, -torch.inf), dim=1
    )
    mixed = share[:, None] + within
    out = content.clone()
    out[:, group] = torch.where(torch.isfinite(share)[:, None], mixed, -torch.inf)
    return out


def _first_seen(sequences, timestamps, n_items: int) -> np.ndarray:
    """First training timestamp per id 0..N (inf: none)."""
    first = np.full(n_items + 1, np.inf)
    if len(sequences):
        items = np.concatenate([np.asarray(s, dtype=np.int64) for s in sequences])
        times = np.concatenate([np.asarray(t, dtype=np.float64) for t in timestamps])
        np.minimum.at(first, items, times)
    first[0] = np.inf
    return first


def simulated_hold_out(first: np.ndarray, fraction: float) -> tuple[np.ndarray, dict[str, np.ndarray]]:  # fmt: skip
    """The simulated hold-out the mixture is fitted on, from each id's first training
    time `first` (inf: none): the newest `fraction` of trained films by first rating
    (ties: the higher id is newer, as data_split holds new films out), as a bool per id,
    and every film's `_state` without their events (the others' first ratings are
    unchanged)."""
    trained_ids = np.flatnonzero(np.isfinite(first))
    by_debut = trained_ids[np.lexsort((trained_ids, first[trained_ids]))]
    is_held = np.zeros(len(first), dtype=bool)
    is_held[by_debut[len(by_debut) - int(round(fraction * len(by_debut))) :]] = True
    return is_held, _state(np.where(is_held, np.inf, first))


def _state(first: np.ndarray) -> dict[str, np.ndarray]:
    """`trained` (0/1) and `debut` (rank of first training rating, 0..1; 1: none)."""
    trained = np.isfinite(first)
    rank = np.empty(len(first))
    ids = np.flatnonzero(trained)
    rank[ids[np.lexsort((ids, first[ids]))]] = np.arange(len(ids)) / max(len(ids) - 1, 1)  # fmt: skip
    debut = np.where(trained, rank, 1.0)
    debut[0] = 0.0
    return {"trained": trained.astype(np.float32), "debut": debut.astype(np.float32)}


def _content_arrays(years: np.ndarray, genres: np.ndarray, position: np.ndarray) -> dict[str, np.ndarray]:  # fmt: skip
    years = np.nan_to_num(np.asarray(years, dtype=np.float64), nan=0.0)
    known = years[years > 0]
    low, high = (known.min(), known.max()) if len(known) else (0.0, 1.0)
    newness = np.where(years > 0, (years - low) / max(high - low, 1.0), 0.0)
    return {"years": years.astype(np.float32), "newness": newness.astype(np.float32),
            "genres": np.asarray(genres, dtype=np.float32), "position": np.asarray(position, dtype=np.float32)}  # fmt: skip


def simulated_targets(sequences, per_user: int) -> tuple[list[list[int]], list[int]]:
    """Each user's last `per_user` training events as targets, each with the events before
    it (at least three) as its context."""
    contexts, targets = [], []
    for sequence in sequences:
        items = [int(i) for i in sequence]
        for back in range(1, per_user + 1):
            if len(items) - back < 3:
                break
            contexts.append(items[:-back])
            targets.append(items[-back])
    return contexts, targets


def _tensor(arrays: dict, name: str) -> torch.Tensor:
    return torch.as_tensor(np.asarray(arrays[name]))


def _gate_features(contexts: torch.Tensor, arrays: dict, config: dict) -> torch.Tensor:
    """(B, len(GATE_FEATURES)) from right-aligned contexts (0: padding)."""
    recent = contexts[:, -config["recent"] :]
    present = (recent > 0).float()
    count = present.sum(1).clamp(min=1)
    debut = _tensor(arrays, "debut")[recent] * present
    untrained = (1 - _tensor(arrays, "trained")[recent]) * present
    years = _tensor(arrays, "years")[recent]
    newest = float(config["newest_year"])
    return torch.stack([
        debut.sum(1) / count,
        debut.max(1).values,
        debut[:, -1],
        torch.log1p(untrained.sum(1)),
        (_tensor(arrays, "newness")[recent] * present).sum(1) / count,
        ((years >= newest - 1).float() * present).sum(1) / count,
        torch.log1p((contexts > 0).sum(1).float()),
    ], dim=1)  # fmt: skip


def _content_features(contexts: torch.Tensor, candidates: torch.Tensor, arrays: dict, config: dict) -> torch.Tensor:  # fmt: skip
    """(B, C, len(CONTENT_FEATURES)) for each context and candidate film."""
    genres = _tensor(arrays, "genres")
    window = contexts[:, -config["profile"] :]
    present = (window > 0).float().unsqueeze(-1)
    profile = (genres[window] * present).sum(1) / present.sum(1).clamp(min=1)  # (B, G)
    flags = genres[candidates]
    match = profile @ (flags / flags.sum(1, keepdim=True).clamp(min=1)).T  # (B, C)
    years = _tensor(arrays, "years")
    recent = contexts[:, -config["recent"] :]
    latest = years[recent].max(1).values  # (B,); padding's year is 0
    year = years[candidates]
    newest = float(config["newest_year"])
    relative = year[None, :] - latest[:, None]
    per_film = torch.stack([
        _tensor(arrays, "position")[candidates], _within_year(candidates, year),
        _tensor(arrays, "newness")[candidates], (year >= newest).float(), (year >= newest - 1).float(),
    ], dim=1)  # fmt: skip
    shape = (len(contexts), len(candidates), per_film.shape[1])
    return torch.cat([
        per_film[None].expand(shape),
        torch.stack([match, torch.log(match + 0.01), (relative / 10).clamp(-1, 0.2), (relative >= 0).float()], dim=-1),
    ], dim=-1)  # fmt: skip


def _within_year(candidates: torch.Tensor, year: torch.Tensor) -> torch.Tensor:
    """Each candidate's order of addition (id order) among the candidates of its release
    year, 0 (first) .. 1 (last)."""
    out = torch.zeros(len(candidates))
    for value in torch.unique(year):
        members = torch.nonzero(year == value).squeeze(1)
        order = torch.argsort(torch.argsort(candidates[members]))
        out[members] = order.float() / max(len(members) - 1, 1)
    return out


def _fit_gate(features: np.ndarray, labels: np.ndarray) -> dict:
    """Logistic regression on standardised features; with one class only, a constant gate
    at the smoothed share of new targets."""
    mean = features.mean(0) if len(features) else np.zeros(len(GATE_FEATURES))
    scale = features.std(0) if len(features) else np.ones(len(GATE_FEATURES))
    scale = np.where(scale > 0, scale, 1.0)
    if len(np.unique(labels)) < 2:
        share = (labels.sum() + 0.5) / (len(labels) + 1.0)
        coef, intercept = (
            np.zeros(len(GATE_FEATURES)),
            float(np.log(share / (1 - share))),
        )
    else:
        model = LogisticRegression(C=1.0, max_iter=2000).fit(
            (features - mean) / scale, labels
        )
        coef, intercept = model.coef_[0], float(model.intercept_[0])
    return {"gate_mean": mean.tolist(), "gate_scale": scale.tolist(),
            "gate_coef": coef.tolist(), "gate_intercept": intercept}  # fmt: skip


def _fit_conditional_logit(features: torch.Tensor, chosen: torch.Tensor, l2: float) -> list[float]:  # fmt: skip
    """Weights of a softmax over the candidates (one choice per row), L2-penalised,
    by L-BFGS (deterministic)."""
    beta = torch.zeros(len(CONTENT_FEATURES), requires_grad=True)
    if len(chosen) == 0:
        return beta.detach().tolist()
    optimiser = torch.optim.LBFGS([beta], max_iter=500, line_search_fn="strong_wolfe")

    def loss() -> torch.Tensor:
        optimiser.zero_grad()
        value = F.cross_entropy(features @ beta, chosen) + l2 * beta.pow(2).sum()
        value.backward()
        return value

    optimiser.step(loss)
    return beta.detach().tolist()
