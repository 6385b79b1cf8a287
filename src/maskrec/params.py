"""Typed parameter groups, one per `conf/base/parameters_<pipeline>.yml` key.

The YAML files are the one source of values: these models hold types and constraints and
no defaults, so a key missing from the configuration is an error that names it rather
than a value silently taken from here. Kedro 1.7 validates a `params:<group>` input
against the type its node declares when the run starts, before any node executes;
`extra="forbid"` turns a misspelt key into an error. Constraints between groups are
checked by `hooks.ParameterChecks`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


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

    strategy: Literal["leave_one_out", "temporal", "random", "given"]
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


class ModelParams(_Params):
    """Architecture of the sequence model (pretrained, fine-tuned and scratch share it)."""

    hidden_size: int = Field(ge=8)
    num_layers: int = Field(ge=1)
    num_heads: int = Field(ge=1)
    intermediate_size: int = Field(ge=8)
    hidden_dropout: float = Field(ge=0.0, lt=1.0)
    attention_dropout: float = Field(ge=0.0, lt=1.0)
    max_len: int = Field(ge=2)
    recency_bias: bool
    use_genres: bool
    use_years: bool
    item_content: bool
    title_buckets: int = Field(ge=0)

    @model_validator(mode="after")
    def _heads_divide_hidden(self) -> ModelParams:
        check_heads(self.hidden_size, self.num_heads, "hidden_size", "num_heads")
        if self.title_buckets == 1:
            raise ValueError("title_buckets must be 0 (no title words) or at least 2")
        return self


class TrainingParams(_Params):
    """How every training run executes (pretraining, fine-tuning, the scratch model, the
    teacher and SASRec alike): device, precision, batch layout, seed, checkpoints."""

    device: Literal["auto", "cpu", "cuda", "mps"]
    bf16: bool
    packing: bool | Literal["auto"]
    seed: int
    eval_batch_size: int = Field(ge=1)
    checkpoint_dir: str | None


class ScheduleParams(_Params):
    """The optimisation of one training stage."""

    epochs: int = Field(ge=1)
    batch_size: int = Field(ge=1)
    learning_rate: float = Field(gt=0.0)
    weight_decay: float = Field(ge=0.0)
    warmup_ratio: float = Field(ge=0.0, lt=1.0)
    grad_clip: float = Field(gt=0.0)
    patience: int = Field(ge=1)
    loss: Literal["full", "chunked", "sampled"]  # the item softmax (models/losses.py)
    negatives: int = Field(ge=1)  # items drawn per batch by the sampled softmax


class PretrainingParams(ScheduleParams):
    """Masked-item (Cloze) pretraining."""

    mask_prob: float = Field(gt=0.0, lt=1.0)
    bert_replacement: bool
    genre_loss_weight: float = Field(ge=0.0)


class DistillationParams(_Params):
    """A larger teacher, Cloze-trained on the same data, whose soft targets guide fine-tuning."""

    weight: float = Field(ge=0.0, le=1.0)
    temperature: float = Field(gt=0.0)
    teacher_hidden_size: int = Field(ge=8)
    teacher_num_layers: int = Field(ge=1)
    teacher_epochs: int = Field(ge=1)


class FineTuningParams(ScheduleParams):
    """Next-item fine-tuning with its regularizers (each one off at its neutral value).

    `objective` says how the model learns to predict the next item:
    - `causal`: the pretrained weights read each sequence left to right and every position
      predicts the item after it (SASRec's objective, started from the Cloze weights);
    - `next_item`: the model stays bidirectional and predicts a [MASK] appended to random
      prefixes of each sequence (BERT4Rec's inference rule used as a training task).
    """

    objective: Literal["causal", "next_item"]
    prefixes_per_sequence: int = Field(ge=1)
    cloze_weight: float = Field(ge=0.0)
    mask_prob: float = Field(gt=0.0, lt=1.0)
    label_smoothing: float = Field(ge=0.0, lt=1.0)
    hidden_dropout: float | None = Field(ge=0.0, lt=1.0)
    attention_dropout: float | None = Field(ge=0.0, lt=1.0)
    encoder_lr_scale: float = Field(gt=0.0, le=1.0)
    freeze_layers: int = Field(ge=0)
    fgm_epsilon: float = Field(ge=0.0)
    distillation: DistillationParams

    @model_validator(mode="after")
    def _distillation_needs_next_item(self) -> FineTuningParams:
        if self.objective == "causal" and self.distillation.weight > 0:
            raise ValueError(
                "fine_tuning.distillation.weight > 0 needs fine_tuning.objective: next_item "
                "(the teacher is a bidirectional [MASK] model; it has no causal predictions)"
            )
        if self.loss != "full" and self.distillation.weight > 0:
            raise ValueError(
                f"fine_tuning.distillation.weight > 0 needs fine_tuning.loss: full (got {self.loss!r}): "
                "distillation compares the student's and the teacher's full softmax"
            )
        return self


class SASRecParams(ScheduleParams):
    """SASRec: the shared architecture with causal attention, every position predicting the
    next item, trained from scratch by the same loop."""

    num_heads: int = Field(ge=1)
    hidden_dropout: float = Field(ge=0.0, lt=1.0)
    attention_dropout: float = Field(ge=0.0, lt=1.0)


class TransferParams(_Params):
    """Pretraining on another release (the source) for the target
    (`kedro run --pipelines transfer --params pretraining_source=...`)."""

    alignment: Literal["auto", "id", "title"]
    min_source_events: int = Field(ge=3)  # two to train on, the last to validate


class BaselineParams(_Params):
    """Hyper-parameter grids for the classic baselines, each searched on validation."""

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


class EvaluationParams(_Params):
    """How the test split is scored and summarised."""

    ks: list[int] = Field(min_length=1)
    batch_size: int = Field(ge=1)
    bootstrap_samples: int = Field(ge=100)
    permutation_resamples: int = Field(ge=99)
    interval_metrics: list[str]
    confidence: float = Field(gt=0.5, lt=1.0)
    seed: int
    history_buckets: list[int] = Field(min_length=2)
    sparse_user_max_history: int = Field(ge=1)
    comparisons: list[tuple[str, str]]

    @model_validator(mode="after")
    def _known_models(self) -> EvaluationParams:
        from maskrec.registry import BY_NAME

        for pair in self.comparisons:
            unknown = [m for m in pair if m not in BY_NAME and m != "best_baseline"]
            if unknown:
                raise ValueError(
                    f"comparisons: {unknown[0]!r} is not a model; use 'best_baseline' "
                    f"or one of {sorted(BY_NAME)}"
                )
        return self


class RatingHeadParams(ScheduleParams):
    """The rating head on the sequence encoder (`fine_tuned`: from the Cloze weights
    pretrained on each fold's training ratings; `scratch`: from the same initial weights):
    its Cloze pretraining's length, the hidden-rating share and the fine-tuning
    regularizers (as `FineTuningParams`, each off at its neutral value)."""

    # The rating head has no item softmax: these two ScheduleParams fields do not apply.
    loss: Literal["full"] = "full"
    negatives: int = 1
    valid_fraction: float = Field(
        gt=0.0, lt=1.0
    )  # random_folds: ratings held out to stop on
    pretraining_epochs: int = Field(
        ge=1
    )  # Cloze pretraining per fold (`pretraining` otherwise)
    pretraining_patience: int = Field(ge=1)
    mask_prob: float = Field(
        gt=0.0, lt=1.0
    )  # ratings hidden (and predicted) per window
    context_length: int = Field(
        ge=2
    )  # the rating models' max_len (`model.max_len` otherwise)
    hidden_dropout: float | None = Field(ge=0.0, lt=1.0)
    attention_dropout: float | None = Field(ge=0.0, lt=1.0)
    encoder_lr_scale: float = Field(gt=0.0, le=1.0)
    freeze_layers: int = Field(ge=0)
    fgm_epsilon: float = Field(ge=0.0)


class RatingParams(_Params):
    """Rating prediction: the protocols, the models and their settings, the comparisons."""

    protocols: list[Literal["next_in_time", "random_folds"]] = Field(min_length=1)
    folds: int = Field(ge=2)
    seed: int
    models: list[
        Literal["global_mean", "biases", "svd", "svdpp", "fine_tuned", "scratch"]
    ] = Field(min_length=1)
    biases: dict[str, int | float]  # scikit-surprise's BaselineOnly ALS options
    svd: dict[str, int | float]  # scikit-surprise's SVD arguments
    svdpp: dict[str, int | float]  # scikit-surprise's SVDpp arguments
    sequence: RatingHeadParams
    comparisons: list[tuple[str, str]]

    @model_validator(mode="after")
    def _compared_models_run(self) -> RatingParams:
        if "fine_tuned" not in self.models:
            raise ValueError(
                "models: 'fine_tuned' is required (the rating pipeline saves it as "
                "`rating_model`, the model inference predicts ratings with)"
            )
        for pair in self.comparisons:
            missing = [m for m in pair if m not in self.models]
            if missing:
                raise ValueError(
                    f"comparisons: {missing[0]!r} is not among models {self.models}"
                )
        return self


class InferenceParams(_Params):
    """Top-K recommendations with the best model by validation NDCG@10 (or a named one)."""

    top_k: int = Field(ge=1)
    model: str
    history: list[int]
    batch_size: int = Field(ge=1)

    @model_validator(mode="after")
    def _known_model(self) -> InferenceParams:
        from maskrec.registry import BY_NAME

        if self.model != "best" and self.model not in BY_NAME:
            raise ValueError(
                f"model={self.model!r} is not 'best' or one of {sorted(BY_NAME)}"
            )
        return self


# Every parameter group, by its key in conf/base/parameters_<pipeline>.yml.
GROUPS: dict[str, type[_Params]] = {
    "data_processing": DataProcessingParams,
    "data_split": SplitParams,
    "model": ModelParams,
    "training": TrainingParams,
    "pretraining": PretrainingParams,
    "fine_tuning": FineTuningParams,
    "sasrec": SASRecParams,
    "transfer": TransferParams,
    "transfer_pretraining": PretrainingParams,
    "baselines": BaselineParams,
    "evaluation": EvaluationParams,
    "inference": InferenceParams,
    "ratings": RatingParams,
}


def merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Nested parameter dicts merged key by key, the way Kedro merges `--params` into the
    configuration (OmegaConf)."""
    from omegaconf import OmegaConf

    return OmegaConf.to_container(OmegaConf.merge(base, overrides))


def load_parameters(
    conf_source: str | Path,
    env: str | None = None,
    runtime_params: dict[str, Any] | None = None,
) -> dict[str, _Params]:
    """Every parameter group as `kedro run --env <env> --params ...` sees it, validated:
    Kedro's own `OmegaConfigLoader` with the project's settings (an environment overrides
    single keys of `base`). For benchmarks, tests and notebooks that need the parameters
    without a run."""
    from kedro.config import OmegaConfigLoader

    from maskrec.config import CONFIG_LOADER_ARGS

    loader = OmegaConfigLoader(
        str(conf_source),
        env=env,
        runtime_params=runtime_params or {},
        **CONFIG_LOADER_ARGS,
    )
    raw = loader["parameters"]
    return {group: kind(**raw[group]) for group, kind in GROUPS.items() if group in raw}
