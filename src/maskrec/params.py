"""Typed parameter groups, and the one place where a training stage's settings are
resolved into the complete spec its nodes receive.

The YAML files are the one source of values: these models hold types and constraints and
no defaults, so a key missing from the configuration is an error that names it rather
than a value silently taken from here. `extra="forbid"` turns a misspelt key into an
error; every model is frozen.

Training stages. What every sequence model trains with is written once, in four shared
groups: `model` (architecture), `schedule` (optimisation), `loss` (the item softmax and
label smoothing) and `regularizers`. A stage's own group (`pretraining`, `fine_tuning`,
`sasrec`, ...) states its objective and, in `model:`, `schedule:`, `loss:` and
`regularizers:` blocks, only what differs from the shared values (`STAGES` says which
groups a stage builds on). `resolve` turns the configuration into complete stages; the
project's config loader (`config.ProjectConfigLoader`) applies it after Kedro has merged
the environments and `--params`, so `params:<stage>` is already complete, frozen and
validated (Kedro validates each `params:<group>` against the type its node declares
when a run starts, before any node executes). No node patches a parameter.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

if TYPE_CHECKING:
    import torch


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def check_heads(
    hidden_size: int, heads: int, hidden_name: str, heads_name: str
) -> None:
    """Attention heads must split the hidden size evenly (BERT's requirement)."""
    if hidden_size % heads:
        raise ValueError(
            f"{heads_name} ({heads}) must divide {hidden_name} ({hidden_size})"
        )


class DataProcessingParams(_Params):
    """Cleaning rules applied to the raw interactions, in this order."""

    positive_threshold: float | None = Field(ge=0.5, le=5.0)
    min_user_interactions: int = Field(ge=1)
    min_item_interactions: int = Field(ge=1)


class SplitParams(_Params):
    """How interactions become training sequences and evaluation targets."""

    strategy: Literal["leave_one_out", "temporal", "future_window", "random", "given"]
    cold_user_fraction: float = Field(ge=0.0, lt=1.0)
    cold_item_fraction: float = Field(ge=0.0, lt=1.0)
    seed: int
    temporal_valid_quantile: float = Field(gt=0.0, lt=1.0)
    temporal_test_quantile: float = Field(gt=0.0, lt=1.0)
    random_valid_ratio: float = Field(gt=0.0, lt=1.0)
    random_test_ratio: float = Field(gt=0.0, lt=1.0)

    @model_validator(mode="after")
    def _check_order(self) -> SplitParams:
        if self.temporal_valid_quantile >= self.temporal_test_quantile:
            raise ValueError(
                "temporal_valid_quantile must be below temporal_test_quantile, got "
                f"{self.temporal_valid_quantile} >= {self.temporal_test_quantile}"
            )
        if self.random_valid_ratio + self.random_test_ratio >= 1.0:
            raise ValueError("random_valid_ratio + random_test_ratio must be below 1")
        if self.strategy == "given" and self.cold_user_fraction:
            raise ValueError(
                "cold_user_fraction must be 0 with strategy 'given': the given targets "
                "decide every user's validation and test item"
            )
        return self


# --- what a training stage is made of ----------------------------------------------


class Architecture(_Params):
    """The sequence model's architecture (`SequenceRecConfig` takes every field)."""

    hidden_size: int = Field(ge=8)
    num_layers: int = Field(ge=1)
    num_heads: int = Field(ge=1)
    intermediate_size: int = Field(ge=8)
    hidden_dropout: float = Field(ge=0.0, lt=1.0)
    attention_dropout: float = Field(ge=0.0, lt=1.0)
    max_len: int = Field(ge=2)
    recency_bias: bool
    recency_slopes: Literal["learned", "fixed"]  # the bias's per-head slopes
    use_genres: bool
    use_years: bool
    item_content: bool
    title_buckets: int = Field(ge=0)
    exact_years: (
        bool  # with item_content: the release year itself too, not only its decade
    )

    @model_validator(mode="after")
    def _heads_divide_hidden(self) -> Architecture:
        check_heads(self.hidden_size, self.num_heads, "hidden_size", "num_heads")
        if self.title_buckets == 1:
            raise ValueError("title_buckets must be 0 (no title words) or at least 2")
        return self

    def same_weights_as(self, other: Architecture) -> bool:
        """Whether weights of `other` fit this architecture (dropout may differ: it has
        no weights)."""
        free = {"hidden_dropout", "attention_dropout"}
        return self.model_dump(exclude=free) == other.model_dump(exclude=free)


class Schedule(_Params):
    """The optimisation of one training stage, and when it stops."""

    epochs: int = Field(ge=1)
    batch_size: int = Field(ge=1)
    learning_rate: float = Field(gt=0.0)
    decay: Literal[
        "linear", "cosine"
    ]  # the learning rate after warm-up, down to 0 at `epochs`
    weight_decay: float = Field(ge=0.0)
    warmup_ratio: float = Field(ge=0.0, lt=1.0)
    grad_clip: float = Field(gt=0.0)
    patience: int = Field(ge=1)
    # patience cannot end the run before this many trained epochs (a model that sits on
    # a plateau before it takes off, as Cloze pretraining near popularity, gets them all);
    # the best epoch is chosen among every epoch as always
    min_epochs: int = Field(ge=0)
    # an epoch counts as progress (resets patience) only if it beats the best trained
    # epoch by this fraction of it (0: any gain); the best epoch is kept either way
    min_improvement: float = Field(ge=0.0, lt=1.0)
    # progress is judged on the mean validation score of the last `smoothing` trained
    # epochs (1: each epoch alone), so one lucky epoch does not set a bar that patience
    # then waits on; the best single epoch is still the one kept
    smoothing: int = Field(ge=1)
    # an epoch ends after this many steps (0: a full pass over the windows): on large data
    # validation, patience and checkpoints then come every N steps, each epoch a fresh
    # random subset of the windows
    max_steps_per_epoch: int = Field(ge=0)


class Loss(_Params):
    """How a training step's item predictions are scored (`models/losses.py`)."""

    softmax: Literal["full", "chunked", "sampled"]  # the item softmax
    negatives: int = Field(ge=1)  # items drawn per batch by the sampled softmax
    label_smoothing: float = Field(ge=0.0, lt=1.0)
    genre_weight: float = Field(ge=0.0)  # the masked-genre auxiliary loss (0 = off)


class Regularizers(_Params):
    """What keeps a stage close to its starting weights (each off at its neutral value)."""

    encoder_lr_scale: float = Field(gt=0.0, le=1.0)  # encoder lr = this x learning_rate
    freeze_layers: int = Field(ge=0)  # the embeddings and this many lowest layers
    fgm_epsilon: float = Field(ge=0.0)  # adversarial item-embedding noise (FGM)
    # with model.item_content: the share of known items that a training step sees by
    # their content alone (id part dropped, as DropoutNet), so content learns to score
    # films never trained on against the others
    content_dropout: float = Field(ge=0.0, lt=1.0)


class Stage(_Params):
    """Everything one training stage trains with, complete (`resolve` builds it): the
    architecture, the schedule, the loss, the regularizers and the seed of its initial
    weights, batches and dropout."""

    model: Architecture
    schedule: Schedule
    loss: Loss
    regularizers: Regularizers
    seed: int

    @model_validator(mode="after")
    def _content_dropout_needs_content(self) -> Stage:
        if self.regularizers.content_dropout > 0 and not self.model.item_content:
            raise ValueError(f"regularizers.content_dropout ({self.regularizers.content_dropout}) needs model.item_content: true")  # fmt: skip
        return self

    @model_validator(mode="after")
    def _freezable(self) -> Stage:
        if self.regularizers.freeze_layers > self.model.num_layers:
            raise ValueError(
                f"regularizers.freeze_layers ({self.regularizers.freeze_layers}) exceeds "
                f"model.num_layers ({self.model.num_layers})"
            )
        return self


class ClozeStage(Stage):
    """Masked-item (Cloze) training: pretraining, and the distillation teacher."""

    mask_prob: float = Field(gt=0.0, lt=1.0)
    bert_replacement: bool


class Distillation(_Params):
    """A larger teacher, Cloze-trained on the same data, whose soft targets guide
    fine-tuning (weight 0: off, and the teacher is not trained)."""

    weight: float = Field(ge=0.0, le=1.0)
    temperature: float = Field(gt=0.0)
    teacher: ClozeStage


class WarmStart(_Params):
    """Where fine-tuning starts: `shrink` x the pretrained weights + `perturb` x the initial
    weights pretraining started from (Ash & Adams 2020, "On warm-starting neural network
    training": shrinking a warm start and perturbing it closes the generalization gap a
    warm start opens; the perturbation here is the model's own initial draw). 1 and 0:
    the pretrained weights as they are; 0 and 1: exactly the scratch ablation's start."""

    shrink: float = Field(ge=0.0, le=1.0)
    perturb: float = Field(ge=0.0, le=1.0)

    @property
    def as_pretrained(self) -> bool:
        return self.shrink == 1.0 and self.perturb == 0.0


class FineTuningStage(Stage):
    """Next-item fine-tuning with its regularizers.

    `objective` says how the model learns to predict the next item:
    - `causal`: the pretrained weights read each sequence left to right and every position
      predicts the item after it (SASRec's objective, started from the Cloze weights);
    - `next_item`: the model stays bidirectional and predicts a [MASK] appended to random
      prefixes of each sequence (BERT4Rec's inference rule used as a training task).
    """

    objective: Literal["causal", "next_item"]
    prefixes_per_sequence: int = Field(ge=1)
    cloze_weight: float = Field(ge=0.0)
    mask_prob: float = Field(gt=0.0, lt=1.0)  # of the mixed-in Cloze loss
    distillation: Distillation
    warm_start: WarmStart

    @model_validator(mode="after")
    def _distillation_needs_next_item(self) -> FineTuningStage:
        if self.objective == "causal" and self.distillation.weight > 0:
            raise ValueError(
                "fine_tuning.distillation.weight > 0 needs fine_tuning.objective: next_item "
                "(the teacher is a bidirectional [MASK] model; it has no causal predictions)"
            )
        if self.loss.softmax != "full" and self.distillation.weight > 0:
            raise ValueError(
                f"fine_tuning.distillation.weight > 0 needs fine_tuning.loss.softmax: full "
                f"(got {self.loss.softmax!r}): distillation compares the student's and the "
                "teacher's full softmax"
            )
        return self


class SASRecStage(Stage):
    """SASRec: the shared architecture with causal attention, every position predicting
    the next item, trained from scratch by the same loop."""


class RatingHeadStage(Stage):
    """The rating head's fine-tuning: every item of a window shown, `mask_prob` of its
    ratings hidden and predicted. Its loss block has no effect (no item softmax);
    `rating_loss` is the head's: squared error of the stars, a distribution over the
    star values (cross-entropy plus the squared error of its mean), or an ordinal
    (cumulative-link) model of them trained the same way."""

    mask_prob: float = Field(gt=0.0, lt=1.0)
    rating_loss: Literal["squared", "distribution", "ordinal"]


# --- the other groups -----------------------------------------------------------------


class TrainingParams(_Params):
    """How every model runs (every training stage, scoring, inference and the service):
    device, precision, batch layout, seed, the scoring batch, checkpoints."""

    device: Literal["auto", "cpu", "cuda", "mps"]
    bf16: bool  # bf16 autocast on CUDA
    cpu_bf16: bool  # ... and on the CPU (off by default: the figures are fp32's)
    packing: bool | Literal["auto"]
    seed: int
    scoring_batch_size: int = Field(
        ge=1
    )  # users (or rating questions) per scoring batch
    checkpoint_dir: str | None

    def autocast_bf16(self, device: torch.device) -> bool:
        """Whether training and scoring on `device` run under bf16 autocast."""
        return self.bf16 and (device.type == "cuda" or (self.cpu_bf16 and device.type == "cpu"))  # fmt: skip


class TransferParams(_Params):
    """Pretraining on another release (the source) for the target
    (`kedro run --pipelines transfer --params pretraining_source=...`)."""

    alignment: Literal["auto", "id", "title"]
    min_source_events: int = Field(ge=3)  # two to train on, the last to validate


class NewItemParams(_Params):
    """The mixture that scores films without training events (`maskrec.models.new_items`),
    fitted on a simulated hold-out of the training data."""

    fraction: float = Field(
        gt=0.0, lt=1.0
    )  # newest share of trained films held out to fit on
    recent: int = Field(ge=1)  # recent films the gate and the year features read
    profile: int = Field(ge=1)  # films the genre profile averages
    targets_per_user: int = Field(
        ge=1
    )  # each user's last training events used as targets
    l2: float = Field(ge=0.0)  # penalty on the content model's weights


class BaselineParams(_Params):
    """Hyper-parameter grids for the classic baselines, each searched on validation, and
    the new-film mixture's settings."""

    item_knn_neighbours: list[int] = Field(min_length=1)
    item_knn_shrink: list[float] = Field(min_length=1)
    ease_l2: list[float] = Field(min_length=1)
    mf_factors: list[int] = Field(min_length=1)
    mf_l2: list[float] = Field(min_length=1)
    # ALS confidence of a seen item (unseen: 1); 1 is the uniform factorisation
    mf_alpha: list[Annotated[float, Field(gt=0)]] = Field(min_length=1)
    mf_iterations: int = Field(ge=1)
    seed: int
    max_dense_items: int = Field(ge=1)
    new_items: NewItemParams


class EvaluationParams(_Params):
    """How the test split is scored and summarised."""

    ks: list[int] = Field(min_length=1)
    bootstrap_samples: int = Field(ge=100)
    permutation_resamples: int = Field(ge=99)
    interval_metrics: list[str]
    confidence: float = Field(gt=0.5, lt=1.0)
    seed: int
    history_buckets: list[int] = Field(min_length=2)
    sparse_user_max_history: int = Field(ge=1)
    comparisons: list[tuple[str, str]]
    # when some test target has no training events: score every sequence model also
    # with those films mixed in from content (`<model>+new_films`, maskrec.models.new_items)
    new_films: bool

    @model_validator(mode="after")
    def _known_models(self) -> EvaluationParams:
        from maskrec.registry import BY_NAME, base_name

        for pair in self.comparisons:
            unknown = [
                m for m in pair if base_name(m) not in BY_NAME and m != "best_baseline"
            ]
            if unknown:
                raise ValueError(
                    f"comparisons: {unknown[0]!r} is not a model; use 'best_baseline' "
                    f"or one of {sorted(BY_NAME)}"
                )
        return self


class RatingParams(_Params):
    """Rating prediction: the classic models and their settings, the sequence models'
    two stages, the comparisons. The sequence models (`fine_tuned`, and `scratch`, its
    control) always run: `pretraining` is Cloze on each fold's training ratings, the
    `fine_tuned` model's start, and `head` the rating head's fine-tuning, from those
    weights and from scratch."""

    seed: int  # the random folds, and the rating models' seed
    classic_models: list[Literal["global_mean", "biases", "svd", "svdpp", "knn_baseline"]]  # fmt: skip
    biases: dict[str, int | float]  # scikit-surprise's BaselineOnly ALS options
    svd: dict[str, int | float]  # scikit-surprise's SVD arguments
    svdpp: dict[str, int | float]  # scikit-surprise's SVDpp arguments
    # scikit-surprise's KNNBaseline arguments (`sim_options` a mapping of its own)
    knn_baseline: dict[str, Any]
    valid_fraction: float = Field(gt=0.0, lt=1.0)  # random folds: held out to stop on
    pretraining: ClozeStage
    head: RatingHeadStage
    # processes the classic models' fits run in, side by side (-1: one per core)
    classic_jobs: int = Field(ge=-1)
    # a linear blend of these models' predictions, weighed on each fold's validation
    # ratings (models.rating_blend); [] for none
    blend: list[str] = Field(default_factory=list)
    # the blend's ridge penalties, one chosen per fold by leave-one-out error
    blend_penalties: list[Annotated[float, Field(gt=0.0)]] = Field(min_length=1)
    comparisons: list[tuple[str, str]]

    @model_validator(mode="after")
    def _compared_models_run(self) -> RatingParams:
        if self.classic_jobs == 0:
            raise ValueError(
                "classic_jobs: a number of processes (-1: one per core), not 0"
            )
        models = [*self.classic_models, "fine_tuned", "scratch"]
        unknown = [m for m in self.blend if m not in models]
        if unknown:
            raise ValueError(f"blend: {unknown[0]!r} is not among the models {models}")
        if len(self.blend) == 1 or len(set(self.blend)) < len(self.blend):
            raise ValueError(f"blend: two different models or more (or [] for no blend), got {self.blend}")  # fmt: skip
        if self.blend:
            models.append("blend")
        for pair in self.comparisons:
            missing = [m for m in pair if m not in models]
            if missing:
                raise ValueError(f"comparisons: {missing[0]!r} is not among the models {models}")  # fmt: skip
        if not self.head.model.same_weights_as(self.pretraining.model):
            raise ValueError(
                "ratings.head.model must be ratings.pretraining.model apart from dropout: "
                "the head fine-tunes the pretrained weights"
            )
        return self


class InferenceParams(_Params):
    """Top-K recommendations with the best model by validation NDCG@10 (or a named one)."""

    top_k: int = Field(ge=1)
    model: str
    history: list[int]
    # a tracked run logs the chosen model as an MLflow model; with a name, also registers
    # it under that name in the MLflow model registry (a new version each run)
    register_as: str | None = None

    @model_validator(mode="after")
    def _known_model(self) -> InferenceParams:
        from maskrec.registry import BY_NAME

        if self.model != "best" and self.model not in BY_NAME:
            raise ValueError(
                f"model={self.model!r} is not 'best' or one of {sorted(BY_NAME)}"
            )
        return self


# Every parameter group, by its key in conf/base/parameters_<pipeline>.yml (resolved).
# What the tuning pipeline compares: next-item models, judged by validation NDCG@10, and
# rating models (the rating head with its Cloze pretraining; Surprise's SVD and SVD++),
# judged by validation RMSE on the next-rating protocol's validation ratings.
RANKING_TUNED = ("fine_tuned", "scratch", "sasrec")
# the transfer run's models (source-pretrained + fine-tuned; SASRec on source + target),
# tuned only where the source is read: `kedro run --pipelines transfer_tuning`
TRANSFER_TUNED = ("transfer", "joint_sasrec")
RATING_TUNED = ("rating_head", "svd", "svdpp")
CLASSIC_TUNED = ("svd", "svdpp")  # fitted once per trial: no epochs, no pruning
TUNED_MODELS = RANKING_TUNED + TRANSFER_TUNED + RATING_TUNED
# the settings a model's trial sets (the resolved stage specs it trains with, or a classic
# rating model's arguments): its search space's keys start with one of them
TUNED_STAGES = {"fine_tuned": ("pretraining", "fine_tuning"), "scratch": ("scratch",), "sasrec": ("sasrec",),
                "transfer": ("transfer_pretraining", "transfer_continuation", "transfer_fine_tuning"),
                "joint_sasrec": ("joint_sasrec",),
                "rating_head": ("ratings.pretraining", "ratings.head"), "svd": ("ratings.svd",),
                "svdpp": ("ratings.svdpp",)}  # fmt: skip
# the Cloze pretraining a tuned model starts from: capped by `tuning.pretraining_epochs`
PRETRAINING_TUNED = ("pretraining", "ratings.pretraining", "transfer_pretraining", "transfer_continuation")  # fmt: skip


def tuned_stage(model: str, key: str) -> tuple[str, str]:
    """The stage of `model` a search-space key sets, and the key inside it
    (`ratings.head.schedule.learning_rate` -> `ratings.head`, `schedule.learning_rate`)."""
    for stage in TUNED_STAGES[model]:
        if key.startswith(stage + "."):
            return stage, key[len(stage) + 1 :]
    raise ValueError(f"{key} is not a setting of {model}'s stages ({', '.join(TUNED_STAGES[model])})")  # fmt: skip


class Dimension(_Params):
    """One axis of a search space: the resolved stage keys it sets (one value, several
    keys: a pretrained model's heads are its pretraining's and its fine-tuning's), and a
    range (`low`..`high`, on a log scale with `log`) or a list of `choices`."""

    keys: list[str] = Field(min_length=1)
    low: float | None = None
    high: float | None = None
    log: bool = False
    integer: bool = False
    choices: list[float | int | str | bool] | None = None

    @model_validator(mode="after")
    def _range_or_choices(self) -> Dimension:
        if (self.choices is None) == (self.low is None or self.high is None):
            raise ValueError("give either low and high, or choices")
        if self.choices is None and not self.low < self.high:  # type: ignore[operator]
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        if self.log and self.choices is None and self.low <= 0:  # type: ignore[operator]
            raise ValueError("a log-scale range needs low > 0")
        return self


class Pruner(_Params):
    """Optuna's percentile pruner on the per-epoch validation NDCG@10 `fit` computes: a
    trial goes on while its best value so far is among the best `percentile` % of the
    complete trials' values at the same epoch (50: the median pruner; 75 prunes only what
    is in the worst quarter; None: no pruning, every trial runs to its stop or its cap)."""

    percentile: float | None = Field(gt=0.0, le=100.0)
    startup_trials: int = Field(ge=0)  # trials that are never pruned
    warmup_epochs: int = Field(ge=0)  # epochs of a trial before it can be pruned


# Surprise's k-fold protocol for rating prediction: each rating in one of this many random
# test folds. A fold is a namespace of the rating pipeline (structure, not a parameter).
RATING_FOLDS = 5


class TuningParams(_Params):
    """Equal-budget hyper-parameter search (the `tuning` pipeline): every model gets the
    same number of trials and the same epoch cap over its documented space."""

    study: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_\-]+$")
    trials: int = Field(ge=1)
    epochs: int = Field(
        ge=1
    )  # every stage of a trial but the Cloze pretraining one starts from
    # that pretraining's cap (PRETRAINING_TUNED); None: its own, as `kedro run` pretrains
    pretraining_epochs: int | None = Field(default=None, ge=1)
    seed: int
    startup_trials: int = Field(ge=0)  # random trials before TPE models the space
    pruner: Pruner
    models: list[Literal["fine_tuned", "scratch", "sasrec", "transfer", "joint_sasrec", "rating_head", "svd", "svdpp"]] = Field(min_length=1)  # fmt: skip
    # the ratings a rating model's study fits and scores: None, the next-rating protocol's
    # (each user's rating before the last scores; the last, its test, is dropped); k,
    # random fold k's training ratings, its `ratings.valid_fraction` held out to score as
    # the rating pipeline holds them out (fold k's test ratings are dropped)
    rating_fold: int | None = Field(default=None, ge=0, lt=RATING_FOLDS)
    space: dict[str, dict[str, Dimension]]
    # Points a new study tries first, in order (they count toward `trials`): each names
    # some of the model's dimensions, a value or a resolved setting to copy
    # (`sasrec.schedule.learning_rate`), and leaves the rest at what the run's
    # configuration holds (`{}`: the configuration as it stands). `first_point` resolves one.
    first_points: dict[str, list[dict[str, float | int | str | bool]]] = {}

    def cap(self, stage: str) -> int | None:
        """The epochs a trial's `stage` is capped at (None: the stage's own cap)."""
        return self.pretraining_epochs if stage in PRETRAINING_TUNED else self.epochs

    @model_validator(mode="after")
    def _space_sets_each_model_s_own_stages(self) -> TuningParams:
        for model in self.models:
            if model not in self.space:
                raise ValueError(f"space.{model}: no search space for a tuned model")
        for model, dimensions in self.space.items():
            if model not in TUNED_STAGES:
                raise ValueError(f"space.{model}: not a tuned model (one of {', '.join(TUNED_MODELS)})")  # fmt: skip
            for name, dimension in dimensions.items():
                for key in dimension.keys:
                    try:
                        tuned_stage(model, key)
                    except ValueError as error:
                        raise ValueError(
                            f"space.{model}.{name}.keys: {error}"
                        ) from None
        for model, points in self.first_points.items():
            for i, point in enumerate(points):  # a model without a space is never tuned
                if model in self.space and (unknown := sorted(set(point) - set(self.space[model]))):  # fmt: skip
                    raise ValueError(f"first_points.{model}[{i}]: {', '.join(unknown)} not a dimension of space.{model}")  # fmt: skip
        return self


class OutsideSpace(ValueError):
    """A first point's value taken from the run's configuration (a dimension the point
    does not name) lies outside the space: the point is skipped, not refused (the space
    was narrowed on purpose; what was named, was named on purpose)."""


def first_point(
    tuning: TuningParams, model: str, index: int, setting: Callable[[str], Any]
) -> dict[str, Any]:
    """`tuning.first_points[model][index]` as a value for each of the model's
    dimensions: the value it names, the resolved setting it names (`setting(key)`: the
    value the run's configuration holds at a stage key such as `sasrec.model.hidden_dropout`,
    None where there is none), else the dimension's first key's setting (`{}` is the
    configuration as it stands). Each must lie in its dimension's range or choices: a
    named one outside is an error naming the point, the dimension and the value; one taken
    from the configuration raises `OutsideSpace`."""
    point = tuning.first_points[model][index]
    values, outside = {}, []
    for name, dimension in tuning.space[model].items():
        where = f"tuning.first_points.{model}[{index}].{name}"
        given = point.get(name, dimension.keys[0])
        if not isinstance(given, str) or (dimension.choices is not None and given in dimension.choices):  # fmt: skip
            value = given
        else:
            value = setting(given)
            if value is None:
                raise ValueError(f"{where}: no setting {given!r} in this run's configuration")  # fmt: skip
            where += f" ({given})"
        if dimension.choices is not None:
            wrong = None if value in dimension.choices else f"{where}: {value!r} is not one of {dimension.choices}"  # fmt: skip
        elif (isinstance(value, bool) or not isinstance(value, int | float)
              or (dimension.integer and value != int(value))
              or not dimension.low <= value <= dimension.high):  # type: ignore[operator]  # fmt: skip
            wrong = f"{where}: {value!r} is outside space.{model}.{name} [{dimension.low}, {dimension.high}]{' (integers)' if dimension.integer else ''}"  # fmt: skip
        else:
            wrong = None
        if wrong and name in point:
            raise ValueError(wrong)
        if wrong:
            outside.append(wrong)
        values[name] = int(value) if dimension.integer and not wrong else value
    if outside:
        raise OutsideSpace("; ".join(outside))
    return values


def first_points(
    tuning: TuningParams, model: str, setting: Callable[[str], Any]
) -> tuple[list[dict[str, Any]], list[str]]:
    """Every point of `tuning.first_points[model]` resolved by `first_point`, and why each
    one left out was (`OutsideSpace`: a value from the configuration outside a narrowed
    space). A named value outside the space raises, as in `first_point`: the run-start
    check and the study resolve the points the same way."""
    points, skipped = [], []
    for index in range(len(tuning.first_points.get(model, []))):
        try:
            points.append(first_point(tuning, model, index, setting))
        except OutsideSpace as outside:
            skipped.append(str(outside))
    return points, skipped


class SeedParams(_Params):
    """The `seeds` pipeline: how many evaluations, one per training seed, it compares,
    and the newest it may read (an earlier configuration's runs, when later runs of
    another configuration on the same data were saved after them)."""

    runs: int = Field(ge=2)
    until: str | None = Field(
        pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}\.\d{2}\.\d{2}\.\d{3}Z$"
    )


GROUPS: dict[str, type[_Params]] = {
    "data_processing": DataProcessingParams,
    "data_split": SplitParams,
    "model": Architecture,
    "schedule": Schedule,
    "loss": Loss,
    "regularizers": Regularizers,
    "training": TrainingParams,
    "pretraining": ClozeStage,
    "fine_tuning": FineTuningStage,
    "scratch": FineTuningStage,
    "sasrec": SASRecStage,
    "transfer": TransferParams,
    "transfer_pretraining": ClozeStage,
    "transfer_continuation": ClozeStage,
    "transfer_fine_tuning": FineTuningStage,
    "joint_sasrec": SASRecStage,
    "baselines": BaselineParams,
    "evaluation": EvaluationParams,
    "inference": InferenceParams,
    "ratings": RatingParams,
    "tuning": TuningParams,
    "seeds": SeedParams,
}


# --- resolution -------------------------------------------------------------------------

SHARED = ("model", "schedule", "loss", "regularizers")  # the blocks every stage has
BLOCK_KEYS = {
    block: set(kind.model_fields)
    for block, kind in zip(SHARED, (Architecture, Schedule, Loss, Regularizers), strict=True)
}  # fmt: skip
# Every training stage, by where its complete spec lands in the parameters, and the
# groups it builds on over the shared blocks, in order (later ones win). A group's keys
# outside the blocks are the stage's objective (mask_prob, ...). Outer stages come
# before the stages nested in them.
STAGES: dict[str, tuple[str, ...]] = {
    "pretraining": ("pretraining",),
    "fine_tuning": ("fine_tuning",),
    # the scratch control: fine-tuning's settings from the initial weights unless it says
    # otherwise (its own group, so a tuned environment can give it its own winner)
    "scratch": ("fine_tuning", "scratch"),
    "sasrec": ("sasrec",),
    # the transfer run's stages: the target's unless they say otherwise (their own groups,
    # so a tuned environment can give the transfer models their own winners)
    "transfer_pretraining": ("pretraining", "transfer_pretraining"),  # Cloze on the source
    "transfer_continuation": ("pretraining", "transfer_continuation"),  # Cloze on the target after it
    "transfer_fine_tuning": ("fine_tuning", "transfer_fine_tuning"),
    "joint_sasrec": ("sasrec", "joint_sasrec"),  # SASRec on source + target
    # a wider model, Cloze-trained like pretraining
    "fine_tuning.distillation.teacher": ("pretraining", "fine_tuning.distillation.teacher"),
    # the rating models share `ratings.model`; their Cloze is pretraining's
    "ratings.pretraining": ("pretraining", "ratings.model", "ratings.pretraining"),
    "ratings.head": ("ratings.model", "ratings.head"),
}  # fmt: skip
# Settings a stage takes, resolved, from another stage and may not set itself: the transfer
# model and scratch are distilled from the target's teacher (one teacher, trained once)
TAKEN = {"transfer_fine_tuning": ("fine_tuning", "distillation"), "scratch": ("fine_tuning", "distillation")}  # fmt: skip
# Settings a stage holds by construction and may not set: scratch starts from the initial
# weights, which is the warm start (shrink 0, perturb 1); fine-tuning's start is not its
FIXED = {"scratch": {"warm_start": {"shrink": 0.0, "perturb": 1.0}}}
# Where a stage's seed comes from (default: training.seed)
SEEDS = {"ratings.pretraining": "ratings.seed", "ratings.head": "ratings.seed"}


def value_at(raw: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path of nested mappings; None where there is none."""
    value: Any = raw
    for key in path.split("."):
        if not isinstance(value, Mapping) or key not in value:
            return None
        value = value[key]
    return value


def has_path(raw: Mapping[str, Any], path: str) -> bool:
    """Whether a dotted path of nested mappings is set (to any value, None included:
    where `value_at` cannot tell a None value from a missing key)."""
    *outer, last = path.split(".")
    node = value_at(raw, ".".join(outer)) if outer else raw
    return isinstance(node, Mapping) and last in node


def setting_at(groups: Mapping[str, BaseModel | Mapping[str, Any]], key: str) -> Any:
    """The value validated parameter groups or resolved stages, by name, hold at a dotted
    key (`sasrec.schedule.learning_rate`, `ratings.head.mask_prob`); None where there is
    none."""
    for name, group in groups.items():
        if key.startswith(name + "."):
            raw = (
                group.model_dump(mode="json") if isinstance(group, BaseModel) else group
            )
            return value_at(raw, key[len(name) + 1 :])
    return None


def _stage(raw: Mapping[str, Any], stage: str) -> dict[str, Any]:
    """One stage's complete spec: the shared blocks, then each of its groups' blocks
    (key by key) and objective keys over them."""
    spec: dict[str, Any] = {block: dict(raw[block]) for block in SHARED}
    spec["seed"] = value_at(raw, SEEDS.get(stage, "training.seed"))
    for path in STAGES[stage]:
        layer = value_at(raw, path) or {}
        if path.endswith(".model"):  # a group's shared architecture block
            layer = {"model": layer}
        for key, value in layer.items():
            if key in SHARED:
                if not isinstance(value, Mapping):
                    raise ValueError(f"{path}.{key} must be a block of {key} settings, got {value!r}")  # fmt: skip
                spec[key] = {**spec[key], **value}
            elif misplaced := [b for b, keys in BLOCK_KEYS.items() if key in keys]:
                raise ValueError(
                    f"{path}.{key}: a stage sets {key} in its {misplaced[0]} block "
                    f"({path}.{misplaced[0]}.{key}); `{misplaced[0]}` holds the value every stage shares"
                )  # fmt: skip
            else:
                spec[key] = copy.deepcopy(
                    value
                )  # the objective; nested stages come later
    return spec


def resolve(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters with every training stage made complete (plain values, which Kedro,
    or `load_parameters`, validates into the `GROUPS` types). A configuration without
    the shared blocks, or without a stage's group, is returned as it is there."""
    resolved = copy.deepcopy(dict(raw))
    if any(not isinstance(raw.get(block), Mapping) for block in SHARED):
        return resolved
    for stage, groups in STAGES.items():
        if value_at(raw, groups[-1]) is None:
            continue
        *outer, last = stage.split(".")
        node = resolved
        for key in outer:
            node = node[key]
        node[last] = _stage(raw, stage)
    for stage, (other, key) in TAKEN.items():
        if stage in resolved and other in resolved:
            if key in (value_at(raw, stage) or {}):
                raise ValueError(f"{stage}.{key}: {stage} takes {other}'s {key} (set {other}.{key})")  # fmt: skip
            resolved[stage][key] = copy.deepcopy(resolved[other][key])
    for stage, fixed in FIXED.items():
        if stage in resolved:
            for key, value in fixed.items():
                if key in (value_at(raw, stage) or {}):
                    raise ValueError(f"{stage}.{key}: {stage} holds {value} by construction")  # fmt: skip
                resolved[stage][key] = copy.deepcopy(value)
    if isinstance(resolved.get("ratings"), dict):
        resolved["ratings"].pop("model", None)  # it is in both rating stages now
    return resolved


def leaves(tree: Mapping[str, Any], prefix: str = "") -> Iterator[str]:
    """The dotted paths of a nested mapping's leaves (`--params` as Kedro nests them, an
    environment's settings)."""
    for key, value in tree.items():
        if isinstance(value, Mapping):
            yield from leaves(value, f"{prefix}{key}.")
        else:
            yield prefix + key


def shadowed_overrides(
    raw: Mapping[str, Any], runtime: Mapping[str, Any], groups: set[str] | None = None
) -> list[str]:
    """`--params` keys that some training stage does not take, because a group later in
    its chain (`STAGES`) sets the same key in the configuration: `schedule.epochs=5`
    leaves pretraining at `pretraining.schedule.epochs`. One message a key, naming each
    winning key with its value and the stages it keeps. `raw`: the parameters merged but
    not resolved; `groups`: the top-level groups the run reads (None: every stage). A
    winning key that `--params` sets too is what the user asked for, and not reported;
    the distillation teacher counts only where distillation is on."""
    given = set(leaves(runtime))
    messages = []
    for key in sorted(given):
        winners: dict[str, list[str]] = {}
        for stage, chain in STAGES.items():
            if value_at(raw, chain[-1]) is None:
                continue  # not a stage of this configuration (resolve skips it too)
            if groups is not None and stage.split(".")[0] not in groups:
                continue
            if stage == "fine_tuning.distillation.teacher" and not value_at(raw, "fine_tuning.distillation.weight"):  # fmt: skip
                continue
            layers = [""] + [path + "." for path in chain]  # "": the shared blocks
            level = next((i for i, p in reversed(list(enumerate(layers))) if p and key.startswith(p)), 0)  # fmt: skip
            inner = key[len(layers[level]) :]
            if level == 0 and inner.split(".")[0] not in SHARED:
                continue  # not a shared block's key: no stage reads it through its chain
            if layers[level].endswith(".model."):  # `ratings.model`: a model block
                inner = "model." + inner
            later_keys = [
                later + (inner.removeprefix("model.") if later.endswith(".model.") else inner)
                for later in layers[level + 1 :]
                if inner.startswith("model.") or not later.endswith(".model.")
            ]  # fmt: skip
            # the last group that sets the key is the one the stage takes
            winning = next((k for k in reversed(later_keys) if has_path(raw, k)), None)
            if winning is not None and winning not in given:
                winners.setdefault(winning, []).append(stage)
        for winning, stages in winners.items():
            messages.append(
                f"--params {key}={value_at(runtime, key)!r} does not reach {', '.join(stages)}: "
                f"{winning} = {value_at(raw, winning)!r} in the configuration wins there "
                f"(set {winning} to change it)"
            )
    return messages


def check_stages(params: Mapping[str, Any]) -> None:
    """Constraints between stages: a stage that continues another's weights must have its
    architecture (dropout may differ). `params` holds validated groups by name; absent
    ones are not checked."""
    pretraining = params.get("pretraining")
    for name in ("fine_tuning", "scratch", "transfer_pretraining", "transfer_continuation", "transfer_fine_tuning"):  # fmt: skip
        stage = params.get(name)
        if pretraining is not None and stage is not None and not stage.model.same_weights_as(pretraining.model):  # fmt: skip
            raise ValueError(
                f"{name}.model must be pretraining.model apart from dropout: {name} "
                + (
                    "starts from the initial weights pretraining starts from"
                    if name == "scratch"
                    else "continues the pretrained weights"
                )
            )


def at_point(stage: Stage, settings: Mapping[str, Any]) -> Stage:
    """`stage` with `settings` (keys inside the stage: `schedule.learning_rate`,
    `cloze_weight`) set and the result validated as the stage's type: a tuning trial's
    point. A key the stage does not have is an error naming it."""
    spec = stage.model_dump()
    for key, value in settings.items():
        node, *path, last = [spec, *key.split(".")]
        for part in path:
            if not isinstance(node.get(part), dict):
                raise ValueError(f"{key}: the stage has no block {part!r}")
            node = node[part]
        if last not in node:
            raise ValueError(f"{key}: the stage has no setting {last!r}")
        node[last] = value
    return type(stage).model_validate(spec)
