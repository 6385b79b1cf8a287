"""Typed parameter groups, one per pipeline (`conf/base/parameters_<pipeline>.yml`).

Kedro 1.7 validates a `params:<group>` input against the pydantic type its node declares
when the run starts, before any node executes; a bad value stops the run with a message
that names the parameter. `extra="forbid"` turns a misspelt key into an error instead of a
silently ignored setting.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataProcessingParams(_Params):
    """Cleaning rules applied to the raw interactions, in this order."""

    positive_threshold: float | None = Field(
        None, ge=0.5, le=5.0, description="keep ratings >= this; None keeps all"
    )
    min_user_interactions: int = Field(5, ge=1, description="k-core: per user")
    min_item_interactions: int = Field(1, ge=1, description="k-core: per item")


class SplitParams(_Params):
    """How interactions become training sequences and evaluation targets."""

    strategy: Literal["leave_one_out", "temporal", "random"] = "leave_one_out"
    cold_user_fraction: float = Field(
        0.0, ge=0.0, lt=1.0, description="users held out of training entirely"
    )
    seed: int = 0
    # temporal: global cut points as quantiles of all timestamps
    temporal_valid_quantile: float = Field(0.8, gt=0.0, lt=1.0)
    temporal_test_quantile: float = Field(0.9, gt=0.0, lt=1.0)
    # random: per-user fractions held out for validation and test
    random_valid_ratio: float = Field(0.1, gt=0.0, lt=1.0)
    random_test_ratio: float = Field(0.1, gt=0.0, lt=1.0)

    @model_validator(mode="after")
    def _check_order(self) -> SplitParams:
        if self.temporal_valid_quantile >= self.temporal_test_quantile:
            raise ValueError(
                "temporal_valid_quantile must be below temporal_test_quantile, got "
                f"{self.temporal_valid_quantile} >= {self.temporal_test_quantile}"
            )
        if self.random_valid_ratio + self.random_test_ratio >= 1.0:
            raise ValueError("random_valid_ratio + random_test_ratio must be below 1")
        return self


class ModelParams(_Params):
    """Architecture of the sequence model (pretrained, fine-tuned and scratch share it)."""

    hidden_size: int = Field(64, ge=8)
    num_layers: int = Field(2, ge=1)
    num_heads: int = Field(2, ge=1)
    intermediate_size: int = Field(256, ge=8)
    hidden_dropout: float = Field(0.2, ge=0.0, lt=1.0)
    attention_dropout: float = Field(0.2, ge=0.0, lt=1.0)
    max_len: int = Field(
        50, ge=2, description="positions, including the appended [MASK]"
    )
    recency_bias: bool = Field(
        True, description="learnable per-head |i-j| attention penalty"
    )
    use_genres: bool = True
    use_years: bool = False
    seed: int = 0

    @model_validator(mode="after")
    def _heads_divide_hidden(self) -> ModelParams:
        if self.hidden_size % self.num_heads:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be divisible by num_heads ({self.num_heads})"
            )
        return self


class TrainingParams(_Params):
    """What every run of the training loop needs."""

    epochs: int = Field(
        30, ge=1, description="maximum epochs; early stopping may end sooner"
    )
    batch_size: int = Field(128, ge=1)
    learning_rate: float = Field(1e-3, gt=0.0)
    weight_decay: float = Field(0.01, ge=0.0)
    warmup_ratio: float = Field(0.05, ge=0.0, lt=1.0)
    grad_clip: float = Field(1.0, gt=0.0)
    patience: int = Field(
        5, ge=1, description="epochs without a better validation NDCG@10"
    )
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    bf16: bool = Field(True, description="bf16 autocast, used on CUDA only")
    length_bucketing: bool = Field(
        False,
        description="batch sequences of similar length together (less padding, faster)",
    )
    packing: bool | Literal["auto"] = Field(
        "auto",
        description="pack several short sequences into one row of a training batch "
        "(exact, fewer rows); auto = on CPU only, where it was measured to pay",
    )
    compile: bool = False
    seed: int = 0
    eval_batch_size: int = Field(512, ge=1)
    checkpoint_dir: str | None = Field(
        "data/06_models/checkpoints",
        description="per-epoch checkpoints for resuming; None disables",
    )


class PretrainingParams(TrainingParams):
    """Masked-item (Cloze) pretraining."""

    mask_prob: float = Field(0.2, gt=0.0, lt=1.0)
    bert_replacement: bool = Field(
        False, description="BERT's 80% mask / 10% random / 10% keep"
    )
    genre_loss_weight: float = Field(
        0.0, ge=0.0, description="masked-genre auxiliary loss"
    )


class DistillationParams(_Params):
    """A larger teacher, Cloze-trained on the same data, whose soft targets guide fine-tuning."""

    weight: float = Field(0.0, ge=0.0, le=1.0, description="0 disables distillation")
    temperature: float = Field(2.0, gt=0.0)
    teacher_hidden_size: int = Field(128, ge=8)
    teacher_num_layers: int = Field(2, ge=1)
    teacher_epochs: int = Field(20, ge=1)


class FineTuningParams(TrainingParams):
    """Next-item fine-tuning with its regularizers (each one off when at its neutral value).

    `objective` says how the model learns to predict the next item:
    - `causal`: the pretrained weights read each sequence left to right and every position
      predicts the item after it (SASRec's objective, started from the Cloze weights);
    - `next_item`: the model stays bidirectional and predicts a [MASK] appended to random
      prefixes of each sequence (BERT4Rec's inference rule used as a training task).
    """

    objective: Literal["causal", "next_item"] = "causal"
    prefixes_per_sequence: int = Field(
        4, ge=1, description="training prefixes per window and epoch"
    )
    cloze_weight: float = Field(
        0.0, ge=0.0, description="weight of a Cloze loss mixed in"
    )
    mask_prob: float = Field(
        0.2, gt=0.0, lt=1.0, description="for the mixed-in Cloze loss"
    )
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)
    hidden_dropout: float | None = Field(
        None, ge=0.0, lt=1.0, description="None keeps the model's"
    )
    attention_dropout: float | None = Field(None, ge=0.0, lt=1.0)
    encoder_lr_scale: float = Field(
        1.0, gt=0.0, le=1.0, description="encoder LR = this x learning_rate"
    )
    freeze_layers: int = Field(
        0, ge=0, description="lowest encoder layers (and embeddings) frozen"
    )
    fgm_epsilon: float = Field(
        0.0, ge=0.0, description="adversarial embedding perturbation; 0 off"
    )
    distillation: DistillationParams = DistillationParams()

    @model_validator(mode="after")
    def _distillation_needs_next_item(self) -> FineTuningParams:
        if self.objective == "causal" and self.distillation.weight > 0:
            raise ValueError(
                "fine_tuning.distillation.weight > 0 needs fine_tuning.objective: next_item "
                "(the teacher is a bidirectional [MASK] model; it has no causal predictions)"
            )
        return self


class BaselineParams(_Params):
    """Hyper-parameter grids for the classic baselines; each grid is searched on the
    validation split (NDCG@10) and the winner is refitted nowhere else."""

    item_knn_neighbours: list[int] = Field([50, 100, 200], min_length=1)
    item_knn_shrink: list[float] = Field([0.0, 10.0, 50.0], min_length=1)
    ease_l2: list[float] = Field([50.0, 100.0, 250.0, 500.0, 1000.0], min_length=1)
    mf_factors: list[int] = Field([32, 64], min_length=1)
    mf_l2: list[float] = Field([1.0, 10.0, 100.0], min_length=1)
    mf_iterations: int = Field(15, ge=1)
    seed: int = 0
    max_dense_items: int = Field(
        20000,
        ge=1,
        description="ItemKNN and EASE hold an items x items matrix; refuse above this",
    )


class EvaluationParams(_Params):
    """How the test split is scored and summarised."""

    ks: list[int] = Field([5, 10, 20], min_length=1)
    batch_size: int = Field(512, ge=1)
    bootstrap_samples: int = Field(1000, ge=100)
    confidence: float = Field(0.95, gt=0.5, lt=1.0)
    seed: int = 0
    history_buckets: list[int] = Field(
        [1, 10, 20, 50, 100, 200],
        min_length=2,
        description="left edges of training-history-length buckets",
    )
    sparse_user_max_history: int = Field(
        30, ge=1, description="'sparse users' have at most this many"
    )
    comparisons: list[tuple[str, str]] = Field(
        [
            ("fine_tuned", "scratch"),
            ("fine_tuned", "pretrained"),
            ("fine_tuned", "best_baseline"),
        ],
        description="paired tests (model, competitor); best_baseline = the baseline best on validation",
    )


class InferenceParams(_Params):
    """Top-K recommendations with the best model by validation NDCG@10 (or a named one)."""

    top_k: int = Field(10, ge=1)
    model: str = Field(
        "best", description="'best' (by validation NDCG@10) or a model name"
    )
    history: list[int] = Field(
        [], description="original (MovieLens) item ids, oldest first"
    )
    batch_size: int = Field(512, ge=1)


class SASRecParams(TrainingParams):
    """SASRec: the same encoder with causal attention, every position predicting the next
    item (full-softmax cross-entropy), trained from scratch by the same loop."""

    num_heads: int = Field(
        1, ge=1, description="overrides model.num_heads (SASRec uses 1)"
    )
    hidden_dropout: float = Field(0.2, ge=0.0, lt=1.0)
    attention_dropout: float = Field(0.0, ge=0.0, lt=1.0)
