"""The one list of models. Evaluation scores every entry, reporting labels and orders them
by it, inference chooses among them and `TrainedModelsDataset` finds their folders.
Adding a model is one entry here plus the node that trains it (writing `<dataset>`, and
`<name>_history` for a sequence model). Models marked `transfer` exist only in
`kedro run --pipelines transfer` (they need a pretraining source).

Which of them a run scored, and which one inference and the service use, is decided here
too (`scored`, `chosen`), from the evaluation's `model_stats`: by validation, never test.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal


@dataclass(frozen=True)
class RegisteredModel:
    name: str  # key in metrics and reports, and model name for `inference.model`
    label: str  # how figures and tables call it
    family: Literal["sequence", "baseline"]
    continues: str | None = None  # whose training it continues (learning curves)
    transfer: bool = False  # trained only by `kedro run --pipelines transfer`

    @property
    def dataset(self) -> str:
        """Catalog entry of the trained model (a folder under data/06_models)."""
        return f"{self.name}_{'model' if self.family == 'sequence' else 'baseline'}"

    @property
    def history(self) -> str | None:
        """Catalog entry of the per-epoch training history (sequence models only)."""
        return f"{self.name}_history" if self.family == "sequence" else None


# In report order: the model under study, its ablations, then the competitors.
MODELS: tuple[RegisteredModel, ...] = (
    RegisteredModel("fine_tuned", "pretrained + fine-tuned", "sequence", continues="pretrained"),
    RegisteredModel("pretrained", "pretrained only", "sequence"),
    RegisteredModel("scratch", "scratch (no pretraining)", "sequence"),
    RegisteredModel("sasrec", "SASRec", "sequence"),
    RegisteredModel("transfer", "source-pretrained + fine-tuned", "sequence", continues="transfer_pretrained", transfer=True),
    RegisteredModel("transfer_pretrained", "source-pretrained, continued on target (no fine-tuning)", "sequence", transfer=True),
    RegisteredModel("joint_sasrec", "SASRec on source + target", "sequence", transfer=True),
    RegisteredModel("ease", "EASE", "baseline"),
    RegisteredModel("item_knn", "ItemKNN", "baseline"),
    RegisteredModel("mf_als", "MF (ALS)", "baseline"),
    RegisteredModel("most_popular", "most popular", "baseline"),
    # content alone (release year, genres) and chance: the references for films never
    # trained on, which every interaction-trained model above can only rank by content
    RegisteredModel("newest_first", "newest first (content)", "baseline"),
    RegisteredModel("genre_recency", "genre match x recency (content)", "baseline"),
    RegisteredModel("random", "random", "baseline"),
)  # fmt: skip
BY_NAME: dict[str, RegisteredModel] = {m.name: m for m in MODELS}
# The rating head `kedro run --pipelines rating_prediction` saves (folder `rating_model`):
# not a ranking model, so not in MODELS; inference predicts ratings with it.
RATING_MODEL = "rating"


def models(transfer: bool = False) -> tuple[RegisteredModel, ...]:
    """The models a run trains: the target's own, and with `transfer` the transfer ones."""
    return tuple(m for m in MODELS if transfer or not m.transfer)


def ordered(names) -> list[str]:
    """`names` in report order, each mixed entry after its model (unregistered names last,
    as given)."""
    rank = {m.name: i for i, m in enumerate(MODELS)}
    return sorted(
        names, key=lambda n: (rank.get(base_name(n), len(rank)), n != base_name(n))
    )


# A sequence model's ranking with the films it never trained on mixed in from content
# (`maskrec.scoring.WithNewFilms`): scored by evaluation under `<name>+new_films`.
NEW_FILMS = "+new_films"


def with_new_films(name: str) -> str:
    return name + NEW_FILMS


def base_name(name: str) -> str:
    """The registered model behind an evaluation entry (`fine_tuned+new_films`: `fine_tuned`)."""
    return name.removesuffix(NEW_FILMS)


def label(name: str) -> str:
    base = base_name(name)
    text = BY_NAME[base].label if base in BY_NAME else base
    return text + (" + new films by content" if name != base else "")


def scored(model_stats: dict[str, Any]) -> dict[str, Any]:
    """The models evaluation scored (not those the run skipped), with their stats."""
    return {name: s for name, s in model_stats.items() if "skipped" not in s}


def best_baseline(model_stats: dict[str, Any]) -> str | None:
    """The baseline with the best validation NDCG@10 among those a run scored (what the
    comparisons' `best_baseline` means); None when there is none."""
    baselines = {
        m: s for m, s in scored(model_stats).items() if s["kind"] == "baseline"
    }
    return max(baselines, key=lambda m: baselines[m]["valid_ndcg@10"]) if baselines else None  # fmt: skip


def chosen(model_stats: dict[str, Any], requested: str = "best") -> str:
    """The model to recommend with: the best by validation NDCG@10 (`requested` "best")
    or the one named; a model the run skipped is an error that says why."""
    candidates = {n: s for n, s in scored(model_stats).items() if n == base_name(n)}
    if requested == "best":
        return max(candidates, key=lambda m: candidates[m]["valid_ndcg@10"])
    if requested in model_stats and requested not in candidates:
        raise ValueError(
            f"inference.model={requested!r} was skipped in this run "
            f"({model_stats[requested]['skipped']}); name another model or 'best'"
        )
    return requested
