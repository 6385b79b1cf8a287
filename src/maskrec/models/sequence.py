"""The sequence recommender: a Hugging Face BERT encoder over item ids.

Ids: 0 is padding, 1..N are items, N+1 is the [MASK] token. Sequences are right-aligned
(left-padded), so the most recent item, or the [MASK] appended after it, is always at the
last position: learned absolute positions then encode recency.

The same class serves three roles, chosen by config fields rather than by subclasses:
- the masked-item (Cloze) model (`causal=False`), also after `next_item` fine-tuning;
- a SASRec-style causal model (`causal=True`: future positions masked, next-item targets),
  which is also what causal fine-tuning turns a Cloze model into (`encode(..., causal=)`);
- a larger teacher for distillation (just a bigger config).

It is a `PreTrainedModel`, so `save_pretrained` writes config.json + model.safetensors and
`from_pretrained` reads them back without unpickling anything.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import BertConfig, BertModel, PretrainedConfig, PreTrainedModel
from transformers.utils import ModelOutput

from maskrec.catalogue import ItemCatalogue
from maskrec.models import cpu_dropout
from maskrec.models.losses import LossSettings, item_loss, repeating_size
from maskrec.models.packing import IGNORE, SequenceBatch, pack
from maskrec.models.rating_tokens import RATING_CODES, split_tokens


class SequenceRecConfig(PretrainedConfig):
    """Architecture plus the catalogue it was trained on.

    `item_ids[i]` is the original (MovieLens) id of model item `i + 1`, so a saved folder
    alone maps scores back to movies; with `item_titles`, `item_years`, `item_counts`
    (training interactions) and `trained_on` (the fingerprint of the data and parameters)
    it is the model's own catalogue (`maskrec.catalogue`). `item_genres` (per model item, genre indices) and
    `item_years` feed the optional side-information embeddings; `item_title_words`
    (hashed title words, 1..title_buckets-1) the title part of `item_content`.

    `item_numeric` (per model item, a log's standardised numeric features) is content like
    the genres: projected and added wherever the genres are.
    `item_content`: an item is its id embedding, where the item has training interactions
    (`item_known`), plus a content vector (genres, release decade, title words) on the
    input and output side alike, so an item never trained on is still scored, by content.

    `rating_buckets` > 0 gives the model a rating head (`with_rating_head`): each input
    position may also show its rating (a bucket embedding added to the item's), and a
    position's state predicts its rating as `rating_mean` + item bias + a projection,
    clipped to `rating_range` (the training ratings' range). `rating_loss` says how the
    head is trained and what it outputs: `squared`, the stars themselves, by squared
    error; `distribution`, a softmax over the half-star values of `rating_range` (the same
    three terms, one per value), trained by cross-entropy plus the squared error of its
    mean, which is the prediction (`rating_distribution`); `ordinal`, a cumulative-link
    model (OrdRec's kind, Koren & Sill 2011): the three terms give one score s, learned
    ordered cut-points c_k between consecutive half stars give P(rating <= v_k) =
    sigmoid(c_k - s), trained like `distribution` on the probabilities they imply.
    """

    model_type = "maskrec-sequence"
    # Transformers' flag for a config that cannot be built without arguments (the
    # architecture has no defaults, below): releases up to at least 5.17 otherwise build
    # one to diff against when saving, and fail
    has_no_defaults_at_init = True

    def __init__(
        self,
        *,
        n_items: int,
        hidden_size: int,
        num_layers: int,
        num_heads: int,
        intermediate_size: int,
        hidden_dropout: float,
        attention_dropout: float,
        max_len: int,
        recency_bias: bool,
        use_genres: bool,
        use_years: bool,
        item_content: bool,
        title_buckets: int,
        causal: bool = False,
        n_genres: int = 0,
        item_ids: list[int] | None = None,
        item_genres: list[list[int]] | None = None,
        item_years: list[int] | None = None,
        item_title_words: list[list[int]] | None = None,
        item_numeric: list[list[float]] | None = None,
        n_item_features: int = 0,
        item_titles: list[str] | None = None,
        item_counts: list[int] | None = None,
        trained_on: dict | None = None,
        rating_buckets: int = 0,
        rating_mean: float = 0.0,
        rating_range: tuple[float, float] = (0.5, 5.0),
        rating_loss: str = "squared",  # what rating models saved before the field existed used
        recency_slopes: str = "learned",  # what models saved before the field existed used
        exact_years: bool = False,  # (likewise)
        records_trained_items: bool = False,  # (likewise: `item_known` was all-True)
        **kwargs,
    ) -> None:
        # The architecture has no defaults here: its values are the configuration's
        # (conf/base `model`, resolved per stage; `training.setup.model_config`), the
        # one place they are written. The catalogue comes from the data; a reading
        # direction, and a rating head, are set by training.
        self.n_items = n_items
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.intermediate_size = intermediate_size
        self.hidden_dropout = hidden_dropout
        self.attention_dropout = attention_dropout
        self.max_len = max_len
        self.causal = causal
        self.recency_bias = recency_bias
        if recency_slopes not in ("learned", "fixed"):
            raise ValueError(
                f"recency_slopes must be 'learned' or 'fixed', not {recency_slopes!r}"
            )
        self.recency_slopes = recency_slopes
        self.exact_years = exact_years
        self.records_trained_items = records_trained_items
        self.n_genres = n_genres
        self.use_genres = use_genres
        self.use_years = use_years
        self.item_ids = item_ids or []
        self.item_genres = item_genres or []
        self.item_years = item_years or []
        self.item_content = item_content
        self.title_buckets = title_buckets
        self.item_title_words = item_title_words or []
        self.item_numeric = item_numeric or []  # standardised numeric item features
        self.n_item_features = n_item_features
        self.item_titles = item_titles  # None in folders saved before models kept them
        self.item_counts = item_counts
        self.trained_on = trained_on or {}
        self.rating_buckets = rating_buckets
        self.rating_mean = rating_mean
        self.rating_range = tuple(rating_range)
        if rating_loss not in RATING_LOSSES:
            raise ValueError(
                f"rating_loss must be one of {', '.join(RATING_LOSSES)}, not {rating_loss!r}"
            )
        self.rating_loss = rating_loss
        super().__init__(**kwargs)

    @property
    def rating_values(self) -> list[float]:
        """The stars a distribution or ordinal head puts probability on: every half star
        of `rating_range` (a squared head predicts one number instead)."""
        low, high = (round(2 * bound) for bound in self.rating_range)
        return [bucket / 2 for bucket in range(low, high + 1)]

    @property
    def mask_id(self) -> int:
        return self.n_items + 1

    def bert_config(self) -> BertConfig:
        return BertConfig(
            vocab_size=self.n_items
            + 2,  # pad + items + mask: BERT's word embeddings ARE the item table
            hidden_size=self.hidden_size,
            num_hidden_layers=self.num_layers,
            num_attention_heads=self.num_heads,
            intermediate_size=self.intermediate_size,
            hidden_dropout_prob=self.hidden_dropout,
            attention_probs_dropout_prob=self.attention_dropout,
            max_position_embeddings=self.max_len,
            type_vocab_size=1,
            pad_token_id=0,
            # Causality lives in the attention mask this model builds (`attention_bias`), not
            # in `is_decoder`: one set of weights can then read a sequence bidirectionally
            # (Cloze) or causally (next item), which causal fine-tuning of a Cloze-pretrained
            # model needs; and a decoder would also allocate a KV cache on every call.
            is_decoder=False,
            add_cross_attention=False,
            # SDPA, with a cheaper attention dropout on the CPU (models/cpu_dropout.py)
            attn_implementation=cpu_dropout.ATTENTION,
        )


@dataclass
class SequenceRecOutput(ModelOutput):
    """What `SequenceRecModel.forward` returns: the loss when it was given targets, the
    item logits (labelled positions, or the next item), their states, and predicted
    stars for rating targets."""

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    hidden_states: torch.Tensor | None = None
    ratings: torch.Tensor | None = None


RATING_LOSSES = ("squared", "distribution", "ordinal")
YEAR_BUCKETS = 16  # decades from 1900 (index 0 means unknown)
EXACT_YEARS = (1880, 2040)  # the release years `exact_years` tells apart (0: unknown)


def _rating_start(config: SequenceRecConfig) -> torch.Tensor:
    """Where a new rating head's offset starts, so that it predicts `rating_mean`: the mean
    itself (squared), or `_start_logits` (distribution). An ordinal head's score starts
    at 0: its cut-points carry that distribution (`_cutpoint_start`)."""
    if config.rating_loss == "squared":
        return torch.tensor(float(config.rating_mean))
    if config.rating_loss == "ordinal":
        return torch.tensor(0.0)
    return _start_logits(config).float()


def _start_logits(config: SequenceRecConfig) -> torch.Tensor:
    """float64 logits t x value over `rating_values` whose distribution's mean is
    `rating_mean`: the maximum-entropy distribution with that mean (t found by
    bisection: the mean grows with t)."""
    values = torch.tensor(config.rating_values, dtype=torch.float64)
    target = min(max(float(config.rating_mean), float(values[0])), float(values[-1]))
    low, high = -50.0, 50.0
    for _ in range(100):
        t = (low + high) / 2
        if float(torch.softmax(t * values, 0) @ values) < target:
            low = t
        else:
            high = t
    return (low + high) / 2 * values


def _cutpoint_start(config: SequenceRecConfig) -> torch.Tensor:
    """An ordinal head's raw cut-points (the first, then each gap before softplus) such
    that a score of 0 gives the distribution a distribution head starts at: the
    maximum-entropy one with the training mean."""
    # through float32, as the distribution head's offset holds them (the measured start)
    below = torch.softmax(_start_logits(config).float().double(), 0).cumsum(0)[:-1]
    cuts = torch.logit(below.clamp(1e-6, 1 - 1e-6))
    gaps = (cuts[1:] - cuts[:-1]).clamp_min(1e-6)
    inverse_softplus = gaps + torch.log(-torch.expm1(-gaps))
    return torch.cat([cuts[:1], inverse_softplus]).float()


def year_bucket(year: int | None) -> int:
    if year is None or year <= 0:
        return 0
    return int(min(max((year - 1900) // 10 + 1, 1), YEAR_BUCKETS - 1))


class SequenceRecModel(PreTrainedModel):
    config_class = SequenceRecConfig
    base_model_prefix = "bert"
    _supports_sdpa = True
    # with item_content, the share of known items a training forward sees by content
    # alone (`regularizers.content_dropout`, set by `fit`); never in eval mode
    content_dropout: float = 0.0

    @property
    def catalogue(self) -> ItemCatalogue:
        """The items this model ranks, as its config keeps them (`maskrec.catalogue`)."""
        return ItemCatalogue.from_fields(self.config.to_dict())

    def __init__(self, config: SequenceRecConfig) -> None:
        super().__init__(config)
        self.bert = BertModel(config.bert_config(), add_pooling_layer=False)
        for parent in list(self.bert.modules()):
            for child_name, child in parent.named_children():
                if type(child) is nn.Dropout:  # the CPU-cheap kind, same p
                    setattr(parent, child_name, cpu_dropout.Dropout(child.p))
        h = config.hidden_size
        # BERT4Rec's output head: a GELU projection + LayerNorm, then scores against the
        # (shared) item embeddings plus a per-item bias (leaving the bias out is a known
        # pitfall of BERT4Rec re-implementations).
        self.head_transform = nn.Sequential(
            nn.Linear(h, h), nn.GELU(), nn.LayerNorm(h, eps=1e-12)
        )
        self.output_bias = nn.Parameter(torch.zeros(config.n_items + 1))
        content = config.item_content
        if (config.use_genres or content) and config.n_genres:
            self.genre_embedding = nn.Linear(config.n_genres, h, bias=False)
            self.genre_head = nn.Linear(
                h, config.n_genres
            )  # masked-genre auxiliary loss
        if (config.use_genres or content) and config.n_item_features:
            self.numeric_embedding = nn.Linear(config.n_item_features, h, bias=False)
        if config.use_years or content:
            self.year_embedding = nn.Embedding(YEAR_BUCKETS, h)
        if content and config.exact_years:
            self.exact_year_embedding = nn.Embedding(
                EXACT_YEARS[1] - EXACT_YEARS[0] + 2, h
            )
        if content and config.title_buckets:
            self.title_embedding = nn.EmbeddingBag(config.title_buckets, h, mode="mean", padding_idx=0)  # fmt: skip
        if content:  # what content says about an item's popularity (its bias)
            self.content_bias = nn.Linear(h, 1, bias=False)
        if config.rating_buckets:
            self.rating_embedding = nn.Embedding(
                config.rating_buckets, h, padding_idx=0
            )
            # one output (the stars, or an ordinal score) or one per star value (a
            # distribution's logits)
            outputs = len(config.rating_values) if config.rating_loss == "distribution" else 1  # fmt: skip
            self.rating_head = nn.Sequential(
                nn.Linear(h, h), nn.GELU(), nn.LayerNorm(h, eps=1e-12), nn.Linear(h, outputs)
            )  # fmt: skip
            self.rating_item_bias = nn.Embedding(config.n_items + 2, outputs)
            self.rating_offset = nn.Parameter(torch.zeros(()) if outputs == 1 else torch.zeros(outputs))  # fmt: skip
            if config.rating_loss == "ordinal":  # between consecutive values: ordered
                self.rating_cutpoints = nn.Parameter(torch.zeros(len(config.rating_values) - 1))  # fmt: skip
        if config.recency_bias:
            # log-slopes of a per-head attention penalty -slope * |i - j| (ALiBi-style).
            # Fixed slopes (ALiBi's own choice) leave the attention mask without a gradient,
            # which keeps SDPA on its fused path (docs/benchmarks.md, issue 25).
            log_slopes = torch.zeros(config.num_heads)
            if config.recency_slopes == "learned":
                self.recency_log_slopes = nn.Parameter(log_slopes)
            else:
                self.register_buffer("recency_log_slopes", log_slopes)
        self._register_side_information(config)
        self.post_init()

    def _register_side_information(self, config: SequenceRecConfig) -> None:
        """Per-vocabulary-id genre multi-hot and year bucket as buffers. They are persistent:
        `from_pretrained` materialises modules without running this code, so what is not in
        the safetensors file would come back uninitialised."""
        vocab = config.n_items + 2
        genres = torch.zeros(vocab, max(config.n_genres, 1))
        for item, indices in enumerate(config.item_genres, start=1):
            if indices:
                genres[item, indices] = 1.0 / len(indices)
        years = torch.zeros(vocab, dtype=torch.long)
        if config.item_years:
            years[1 : len(config.item_years) + 1] = torch.tensor(
                [year_bucket(y) for y in config.item_years]
            )
        self.register_buffer("item_genres", genres)
        self.register_buffer("item_year_buckets", years)
        exact = torch.zeros(vocab, dtype=torch.long)
        for item, year in enumerate(config.item_years, start=1):
            if year and year > 0:
                exact[item] = min(max(int(year), EXACT_YEARS[0]), EXACT_YEARS[1]) - EXACT_YEARS[0] + 1  # fmt: skip
        self.register_buffer("item_exact_years", exact)
        words = max((len(w) for w in config.item_title_words), default=0)
        titles = torch.zeros(vocab, max(words, 1), dtype=torch.long)
        for item, ids in enumerate(config.item_title_words, start=1):
            titles[item, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        self.register_buffer("item_title_words", titles)
        numeric = torch.zeros(vocab, max(config.n_item_features, 1))
        if config.item_numeric:
            numeric[1 : len(config.item_numeric) + 1, : config.n_item_features] = torch.tensor(config.item_numeric, dtype=torch.float32)  # fmt: skip
        self.register_buffer("item_numeric", numeric)
        # Which ids have training interactions, in any data the model trained on: training
        # marks them (`mark_known`); padding never, the [MASK] token always. (All, in a
        # model without content saved before it recorded them: `known_items` is None.)
        known = torch.full((vocab,), not (config.item_content or config.records_trained_items), dtype=torch.bool)  # fmt: skip
        known[0], known[-1] = False, True
        self.register_buffer("item_known", known)

    def _init_weights(self, module: nn.Module) -> None:
        # Linear layers Xavier, embeddings BERT's truncated normal (0.02), padding
        # embeddings zero, LayerNorm identity, output bias zero, recency slopes geometric.
        if isinstance(module, nn.Linear):
            # Xavier, not BERT's N(0, 0.02): at d=64 the small init leaves attention a tiny
            # share of the residual, and a [MASK] then needs many epochs to learn to read
            # its neighbours (BERT4Rec's slow start). SASRec implementations use Xavier too.
            nn.init.xavier_uniform_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding | nn.EmbeddingBag):
            nn.init.trunc_normal_(module.weight, std=0.02, a=-0.04, b=0.04)
            if module.padding_idx is not None:
                with torch.no_grad():
                    module.weight[module.padding_idx].zero_()
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, SequenceRecModel):
            nn.init.zeros_(module.output_bias)
            if module.config.rating_buckets:  # the head starts at the mean rating
                nn.init.zeros_(module.rating_item_bias.weight)
                nn.init.zeros_(module.rating_head[-1].weight)
                with torch.no_grad():
                    module.rating_offset.copy_(_rating_start(module.config))
                    if module.config.rating_loss == "ordinal":
                        module.rating_cutpoints.copy_(_cutpoint_start(module.config))
            if module.config.item_content:
                # An item starts as its content: its id embedding grows from zero once it
                # has interactions (items a source never saw start from content too).
                # The content starts at an embedding's scale (the genre projection is a
                # Linear, whose Xavier init is ~10x larger) and says nothing yet about
                # popularity. (The title EmbeddingBag once kept torch's N(0, 1) init: the
                # first losses were ~3x log(N) and SASRec from scratch never learned on
                # ML-100K; issue 12's cold-item run.)
                with torch.no_grad():
                    module.item_embedding.weight[1 : module.config.n_items + 1].zero_()
                    for part in ("genre_embedding", "numeric_embedding"):
                        if hasattr(module, part):
                            nn.init.trunc_normal_(getattr(module, part).weight, std=0.02, a=-0.04, b=0.04)  # fmt: skip
                    nn.init.zeros_(module.content_bias.weight)
            if hasattr(module, "recency_log_slopes"):
                # Geometric slopes from 1 (look at neighbours) down to ~0 (look anywhere), as ALiBi.
                heads = module.config.num_heads
                slopes = 2.0 ** (-8.0 * torch.arange(heads) / max(heads, 1))
                with torch.no_grad():
                    module.recency_log_slopes.copy_(slopes.log())

    @property
    def item_embedding(self) -> nn.Embedding:
        return self.bert.embeddings.word_embeddings

    def content(self, ids: torch.Tensor) -> torch.Tensor:
        """Genre, numeric-feature, release-decade and title-word embeddings of `ids`
        (what side information the config enables).  # (...) -> (..., H)"""
        x = torch.zeros(*ids.shape, self.config.hidden_size, device=ids.device)
        if hasattr(self, "genre_embedding"):
            x = x + self.genre_embedding(self.item_genres[ids])
        if hasattr(self, "numeric_embedding"):
            x = x + self.numeric_embedding(self.item_numeric[ids][..., : self.config.n_item_features])  # fmt: skip
        if hasattr(self, "year_embedding"):
            x = x + self.year_embedding(self.item_year_buckets[ids])
        if hasattr(self, "exact_year_embedding"):
            x = x + self.exact_year_embedding(self.item_exact_years[ids])
        if hasattr(self, "title_embedding"):
            flat = self.item_title_words[ids.reshape(-1)]
            x = x + self.title_embedding(flat).reshape(*ids.shape, -1)
        return x

    def embed(
        self, input_ids: torch.Tensor, ratings: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Item embeddings plus side information, plus the rating buckets' embeddings when
        `ratings` are shown (bucket 0: none).  # (B, L) -> (B, L, H)

        With `item_content` an id embedding counts only for known items, and padding and
        [MASK] carry no content."""
        x = self._embed_items(input_ids)
        if ratings is not None:
            x = x + self.rating_embedding(ratings)
        return x

    def _embed_items(self, input_ids: torch.Tensor) -> torch.Tensor:
        x = self.item_embedding(input_ids)
        if (
            not self.config.item_content
        ):  # side information added in this order, as ever
            if hasattr(self, "genre_embedding"):
                x = x + self.genre_embedding(self.item_genres[input_ids])
            if hasattr(self, "numeric_embedding"):
                x = x + self.numeric_embedding(self.item_numeric[input_ids][..., : self.config.n_item_features])  # fmt: skip
            if hasattr(self, "year_embedding"):
                x = x + self.year_embedding(self.item_year_buckets[input_ids])
            return x
        is_item = (input_ids > 0) & (input_ids <= self.config.n_items)
        known = self._known(input_ids).unsqueeze(-1)
        return x * known + self.content(input_ids) * is_item.unsqueeze(-1)

    def _known(self, ids: torch.Tensor) -> torch.Tensor:
        """Whether each id's own embedding counts: it has training interactions and, in a
        training forward with `content_dropout`, was not dropped for content alone."""
        known = self.item_known[ids]
        if self.training and self.content_dropout > 0:
            keep = torch.rand(known.shape, device=known.device) >= self.content_dropout
            known = known & (
                keep | (ids > self.config.n_items)
            )  # [MASK] is never dropped
        return known

    def output_items(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The output layer's item vectors and biases for ids 1..N (tied to the input
        side): id embedding and bias where an item is known, plus content with
        `item_content`.  -> (N, H), (N,)"""
        n = self.config.n_items
        weight, bias = self.item_embedding.weight[1 : n + 1], self.output_bias[1:]
        if not self.config.item_content:
            return weight, bias
        ids = torch.arange(1, n + 1, device=weight.device)
        known = self._known(ids)
        content = self.content(ids)
        weight = weight * known.unsqueeze(-1) + content
        return weight, bias * known + self.content_bias(content).squeeze(-1)

    def trained_columns(self) -> torch.Tensor | None:
        """Which `item_logits` columns a training target may be: the known items, with
        `item_content` (items without interactions stay out of the softmax); None: all."""
        return self.item_known[1 : self.config.n_items + 1] if self.config.item_content else None  # fmt: skip

    def mark_known(self, items) -> None:
        """Record that `items` (model ids) have training interactions."""
        self.item_known[torch.as_tensor(items, dtype=torch.long)] = True

    def known_items(self) -> torch.Tensor | None:
        """A bool per id 0..N: the items this model met in training, in any data (a
        transfer model's source too); None for a model saved before it recorded them."""
        if not (self.config.item_content or self.config.records_trained_items):
            return None
        return self.item_known[: self.config.n_items + 1]

    def attention_bias(
        self,
        input_ids: torch.Tensor,
        dtype: torch.dtype,
        causal: bool | None = None,
        segments: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Additive attention mask: padding keys, (causal) future keys and, in a packed
        batch, keys of other sequences blocked, plus the recency penalty (learned or fixed
        slopes) when the config has one.  # (B, L) -> (B, heads|1, L, L)

        Why: with only learned absolute positions, the [MASK] at the end starts by attending
        uniformly and takes many epochs to find its neighbours (BERT4Rec's slow start);
        a distance penalty gives it that prior from the first step.
        """
        causal = self.config.causal if causal is None else causal
        length = input_ids.shape[1]
        blocked = torch.finfo(dtype).min
        position = torch.arange(length, device=input_ids.device)
        if self.config.recency_bias:
            distance = (position[None, :] - position[:, None]).abs().to(dtype)  # (L, L)
            slopes = self.recency_log_slopes.exp().to(dtype)
            bias = -slopes[:, None, None] * distance  # (heads, L, L)
            bias = bias[None].expand(input_ids.shape[0], -1, -1, -1)
        else:
            bias = torch.zeros(
                (input_ids.shape[0], 1, length, length),
                dtype=dtype,
                device=input_ids.device,
            )
        keep = (input_ids != 0)[:, None, None, :]  # (B, 1, 1, L)
        if segments is not None:  # packed rows: a token sees its own sequence only
            keep = keep & (segments[:, :, None] == segments[:, None, :])[:, None]
        if causal:
            keep = keep & (position[None, :] <= position[:, None])[None, None]
        # A padding query that may see nothing keeps its own position, avoiding NaNs.
        keep = (
            keep
            | torch.eye(length, dtype=torch.bool, device=input_ids.device)[None, None]
        )
        return bias.masked_fill(~keep, blocked)

    def encode(
        self,
        input_ids: torch.Tensor,
        inputs_embeds: torch.Tensor | None = None,
        causal: bool | None = None,
        positions: torch.Tensor | None = None,
        segments: torch.Tensor | None = None,
        ratings: torch.Tensor | None = None,
        at: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Contextual states for every position; `causal` overrides the config's reading
        direction for this call; `ratings` (buckets) are shown beside the items when
        given.  # (B, L) -> (B, L, H)

        L may be shorter than max_len (a short context scored alone): sequences are
        right-aligned, so the last column always gets the last position.
        A packed batch (`models/packing.py`) holds several sequences a row and passes
        each token's position id and sequence (`segments`, 0 = padding) explicitly.

        `at` (bool, B x L): only the states there are wanted, returned as
        `encode(...)[at]` would give them (row by row).  # -> (M, H)
        Every layer but the last still reads all positions (the last one's keys and
        values), but the last computes its queries, attention output and feed-forward
        only at `at` (`_last_layer_at`): at L = 64 and one state a row, about 40% of the
        encoder's work. The same arithmetic, so the same states up to float rounding.
        """
        length, max_len = input_ids.shape[1], self.config.max_len
        if length > max_len:
            raise ValueError(
                f"sequences of length {length} exceed the model's max_len ({max_len})"
            )
        position_ids = (
            torch.arange(max_len - length, max_len, device=input_ids.device)[None]
            if positions is None
            else positions
        )
        if inputs_embeds is None:
            inputs_embeds = self.embed(input_ids, ratings)
        causal = self.config.causal if causal is None else causal
        if self.config.recency_bias or causal or segments is not None:
            mask = self.attention_bias(input_ids, inputs_embeds.dtype, causal, segments)
        elif at is None:
            mask = (input_ids != 0).long()
        else:  # what BERT's own mask becomes for SDPA: True = may attend (B, 1, 1, L)
            mask = (input_ids != 0)[:, None, None, :]
        if at is None:
            return self.bert(
                inputs_embeds=inputs_embeds,
                attention_mask=mask,
                position_ids=position_ids,
            ).last_hidden_state
        hidden = self.bert.embeddings(position_ids=position_ids, inputs_embeds=inputs_embeds)  # fmt: skip
        *lower, last = self.bert.encoder.layer
        for layer in lower:
            hidden = layer(hidden, mask)
        return self._last_layer_at(last, hidden, mask, at)

    def states_at(
        self,
        wanted: torch.Tensor,
        input_ids: torch.Tensor,
        causal: bool | None = None,
        positions: torch.Tensor | None = None,
        segments: torch.Tensor | None = None,
        ratings: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The states a loss reads, `encode(...)[wanted]`, with the last layer at `wanted`
        alone (`encode(at=)`) where that saves work: on the CPU, for a term not read
        causally (a causal term has a target at every position), when the batch's most
        labelled row asks for at most half its positions (the last layer's queries take
        as many slots in every row: a Cloze batch masking half its items gains nothing
        and pays the gathers; measured in docs/benchmarks.md). Elsewhere every position
        is encoded, as on a GPU, where the slots' data-dependent shape would make the
        host wait for the device.  # (B, L) -> (M, H)"""
        reads_causally = self.config.causal if causal is None else causal
        if not reads_causally and input_ids.device.type == "cpu":
            most = int(wanted.sum(1).max()) if len(wanted) else 0
            if 2 * most <= wanted.shape[1]:
                return self.encode(input_ids, None, causal, positions, segments, ratings, at=wanted)  # fmt: skip
        every = self.encode(input_ids, None, causal, positions, segments, ratings)
        return every[wanted]

    def _last_layer_at(
        self,
        layer: nn.Module,
        hidden: torch.Tensor,
        mask: torch.Tensor,
        at: torch.Tensor,
    ) -> torch.Tensor:
        """BERT's `layer` (BertLayer: self-attention, its output block, the feed-forward
        block; its own modules) for the queries at `at` alone, over all of their rows'
        keys and values. A row's queries sit in slots 0..k-1 of a (B, Q) grid (Q: the most
        any row has); the rest read column 0 and are dropped at the end.
        # (B, L, H), mask (B, heads|1, L|1, L), at (B, L) -> (M, H)"""
        attention = layer.attention.self
        size = attention.attention_head_size

        def by_head(x: torch.Tensor) -> torch.Tensor:
            """(B, T, H) -> (B, heads, T, d)"""
            return x.view(*x.shape[:-1], -1, size).transpose(1, 2)

        rows, columns = at.nonzero(as_tuple=True)
        slots = (at.cumsum(1) - 1)[rows, columns]
        read = torch.zeros((len(at), int(slots.max()) + 1 if len(slots) else 1), dtype=torch.long, device=at.device)  # fmt: skip
        read[rows, slots] = columns  # (B, Q): the column each slot asks about
        states = hidden.gather(1, read[..., None].expand(-1, -1, hidden.shape[-1]))
        # each slot's own mask row: (B, heads|1, Q, L)
        mask = mask.expand(-1, -1, hidden.shape[1], -1)
        mask = mask.gather(2, read[:, None, :, None].expand(-1, mask.shape[1], -1, mask.shape[-1]))  # fmt: skip
        dropout = attention.dropout.p if self.training else 0.0
        attended, _ = cpu_dropout.attention(
            attention, by_head(attention.query(states)), by_head(attention.key(hidden)),
            by_head(attention.value(hidden)), mask, dropout, attention.scaling,
        )  # fmt: skip
        attended = layer.attention.output(attended.reshape(*states.shape), states)
        return layer.feed_forward_chunk(attended)[rows, slots]

    def item_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Full-softmax logits over the items: column j is item j + 1, the training view
        (no padding column to mask and slice off).  # (..., H) -> (..., N)"""
        weight, bias = self.output_items()
        return F.linear(self.head_transform(hidden), weight, bias)

    def item_scores(self, hidden: torch.Tensor) -> torch.Tensor:
        """Ranking scores indexed by id 0..N (0 = padding, never a valid answer).

        # (..., H) -> (..., N + 1)
        """
        if self.config.item_content:
            logits = F.pad(self.item_logits(hidden), (1, 0))
        else:
            weight = self.item_embedding.weight[: self.config.n_items + 1]
            logits = F.linear(self.head_transform(hidden), weight, self.output_bias)
        logits[..., 0] = torch.finfo(logits.dtype).min
        return logits

    def forward(
        self,
        input_ids: torch.Tensor,
        labels: torch.Tensor | None = None,
        *,
        causal: bool | None = None,
        positions: torch.Tensor | None = None,
        segments: torch.Tensor | None = None,
        ratings: torch.Tensor | None = None,
        rating_labels: torch.Tensor | None = None,
        loss: LossSettings | None = None,
        teacher: SequenceRecModel | None = None,
    ) -> SequenceRecOutput:
        """The model's outputs and, given targets, its own loss (the Hugging Face way):

        - `labels` (item ids, -100 where there is no target): the item softmax at the
          labelled positions as `loss` says (full, chunked or sampled; label smoothing),
          plus the masked-genre loss and distillation from `teacher` where `loss` weights
          them; `logits` are those positions' (`labelled_logits`, full softmax only);
        - `rating_labels` (rating buckets, -100 elsewhere; `ratings` shows the others):
          the squared error of the predicted stars (plus, for a distribution or ordinal
          head, the negative log-probability of the true star value);
        - neither: the logits of the item after the last position.

        `causal`, `positions` and `segments` say how the batch is read and laid out
        (`encode`). Only labelled positions are scored, which keeps the (positions x
        items) product small, and the last layer computes only their states
        (`states_at`).  # (B, L) -> loss (), logits (M', N)
        """
        if rating_labels is not None:
            wanted = rating_labels != IGNORE
        elif labels is not None:
            wanted = labels != IGNORE
        else:  # the item after the last position
            wanted = torch.zeros_like(input_ids, dtype=torch.bool)
            wanted[:, -1] = True
        states = self.states_at(wanted, input_ids, causal, positions, segments, ratings)
        if rating_labels is not None:
            scores = self.rating_scores(states, input_ids[wanted])
            predicted = self.stars(scores)  # (M,)
            target = rating_labels[wanted]
            error = F.mse_loss(predicted.float(), target.float() / 2)
            if self.config.rating_loss != "squared":
                # each true rating's column: its index among the half stars of the range
                n_values = len(self.config.rating_values)
                value = (target - round(2 * self.config.rating_range[0])).clamp(0, n_values - 1)  # fmt: skip
                if self.config.rating_loss == "distribution":
                    error = error + F.cross_entropy(scores.float(), value)
                else:
                    chosen = self.star_probabilities(scores).gather(1, value[:, None])
                    error = error - chosen.clamp_min(1e-12).log().mean()
            return SequenceRecOutput(loss=error, ratings=predicted)
        if labels is None:
            logits = self.item_logits(states)
            return SequenceRecOutput(logits=logits, hidden_states=states)
        targets = labels[wanted]  # states (M, H), targets (M,)
        settings = loss or LossSettings()
        value, logits = item_loss(self, states, targets, settings.item, settings.label_smoothing)  # fmt: skip
        if teacher is not None and settings.distill_weight > 0:
            with torch.no_grad():
                taught = teacher.states_at(wanted, input_ids, causal, positions, segments)  # fmt: skip
                teacher_logits = teacher.labelled_logits(taught)
            t = settings.temperature
            kl = F.kl_div(
                F.log_softmax(logits[: len(targets)].float() / t, dim=-1),
                F.log_softmax(teacher_logits[: len(targets)].float() / t, dim=-1),
                log_target=True,
                reduction="batchmean",
            )
            value = (1 - settings.distill_weight) * value + settings.distill_weight * t * t * kl  # fmt: skip
        genre_logits = self.genre_logits(states) if settings.genre_weight > 0 else None
        if genre_logits is not None:
            genre_targets = (self.item_genres[targets] > 0).float()
            value = value + settings.genre_weight * F.binary_cross_entropy_with_logits(
                genre_logits.float(), genre_targets
            )
        return SequenceRecOutput(loss=value, logits=logits, hidden_states=states)

    def labelled_logits(self, states: torch.Tensor) -> torch.Tensor:
        """`item_logits` of training states (M, H), rows padded to M' = `repeating_size`(M)
        with zero states (the loss ignores them; why: `repeating_size`).  -> (M', N)"""
        count = states.shape[0]
        return self.item_logits(F.pad(states, (0, 0, 0, repeating_size(count) - count)))

    @torch.no_grad()
    def score_next(
        self, context: torch.Tensor, packing: bool | None = None
    ) -> torch.Tensor:
        """Scores for the item after each (right-aligned) context.  # (B, L) -> (B, N + 1)

        A bidirectional model reads the context with a [MASK] appended (the Cloze
        inference rule); a causal model reads the context itself and its last state
        predicts what comes next. `packing` (default: on the CPU) reads several short
        contexts per row (`models/packing.py`); the scores are the same.
        """
        if not self.config.causal:
            context = torch.cat(
                [context[:, 1:], torch.full_like(context[:, :1], self.config.mask_id)],
                dim=1,
            )
        if packing is None:
            packing = context.device.type == "cpu"
        last = context[:, -1] != 0
        if not packing or not last.all():  # an empty context has no last state to pack
            ends = torch.zeros_like(context, dtype=torch.bool)
            ends[:, -1] = True
            return self.item_scores(self.encode(context, at=ends)).float()
        marks = torch.full_like(context, IGNORE)
        marks[:, -1] = 0
        packed = pack(SequenceBatch(context, marks), self.config.max_len)
        where = packed.labels != IGNORE
        hidden = self.encode(
            packed.inputs, None, None, packed.positions, packed.segments, at=where
        )
        order = torch.argsort(packed.segments[where])  # back to the contexts' order
        return self.item_scores(hidden[order]).float()

    def with_rating_head(
        self, mean: float, rating_range: tuple[float, float], loss: str = "squared"
    ) -> SequenceRecModel:
        """These weights (pretrained, or fresh for the scratch ablation) plus a new rating
        head (`loss`: squared, distribution or ordinal, the config's `rating_loss`) starting at
        `mean`; its random parts are drawn from torch's current seed."""
        config = SequenceRecConfig.from_dict(self.config.to_dict() | {
            "rating_buckets": RATING_CODES, "rating_mean": float(mean),
            "rating_range": tuple(map(float, rating_range)), "rating_loss": loss,
        })  # fmt: skip
        model = SequenceRecModel(config)
        missing, unexpected = model.load_state_dict(self.state_dict(), strict=False)
        fresh = [k for k in missing if not k.startswith("rating_")]
        if fresh or unexpected:
            raise ValueError(f"weights do not fit the rating model: missing {fresh}, unexpected {unexpected}")  # fmt: skip
        return model

    def rating_scores(self, hidden: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """The head's output for `items` at their positions' states: the stars (a squared
        head; unclipped, for the loss), logits over `rating_values` (a distribution
        head), or the score its cut-points are compared with (an ordinal head).
        # (M, H), (M,) -> (M,) or (M, V)"""
        scores = self.rating_offset + self.rating_item_bias(items) + self.rating_head(hidden)  # fmt: skip
        return (
            scores if self.config.rating_loss == "distribution" else scores.squeeze(-1)
        )

    def star_probabilities(self, scores: torch.Tensor) -> torch.Tensor:
        """`rating_scores` of a distribution or ordinal head as the probability of each
        of `rating_values`: a softmax, or the differences of sigmoid(c_k - s) between
        consecutive cut-points (ordered: the first, then softplus gaps).  # -> (M, V)"""
        if self.config.rating_loss == "distribution":
            return scores.float().softmax(-1)
        raw = self.rating_cutpoints.float()
        cuts = torch.cat([raw[:1], raw[:1] + F.softplus(raw[1:]).cumsum(0)])
        below = torch.sigmoid(
            cuts - scores.float()[:, None]
        )  # P(rating <= v_k): (M, V-1)
        return F.pad(below, (0, 1), value=1.0) - F.pad(below, (1, 0))

    def stars(self, scores: torch.Tensor) -> torch.Tensor:
        """`rating_scores` as predicted stars: the mean of a distribution's or an ordinal
        head's probabilities.  # -> (M,)"""
        if self.config.rating_loss == "squared":
            return scores
        values = torch.tensor(self.config.rating_values, device=scores.device)
        return self.star_probabilities(scores) @ values

    def predict_ratings(
        self, hidden: torch.Tensor, items: torch.Tensor
    ) -> torch.Tensor:
        """Predicted stars of `items` from their positions' states.  # (M, H), (M,) -> (M,)"""
        return self.stars(self.rating_scores(hidden, items))

    @torch.no_grad()
    def rating_distribution(
        self, contexts: torch.Tensor, positions: torch.Tensor
    ) -> torch.Tensor:
        """A distribution or ordinal head's probability of each of `config.rating_values`
        for the question at `positions` of each rated-token context.  # (B, L), (B,) -> (B, V)"""
        if self.config.rating_loss == "squared":
            raise ValueError("a rating head with rating_loss 'squared' predicts one number, not a distribution")  # fmt: skip
        return self.star_probabilities(self.rating_scores(*self._question_states(contexts, positions)))  # fmt: skip

    @torch.no_grad()
    def rate(self, contexts: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """Predicted stars of the question at `positions` of each rated-token context
        (`model_input.RatingSet`), clipped to the training range.  # (B, L), (B,) -> (B,)"""
        low, high = self.config.rating_range
        return (
            self.predict_ratings(*self._question_states(contexts, positions))
            .float()
            .clamp(low, high)
        )

    def _question_states(
        self, contexts: torch.Tensor, positions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Each question's state and item, read bidirectionally with the shown ratings."""
        items, buckets = split_tokens(contexts)
        rows = torch.arange(len(items), device=items.device)
        asked = torch.zeros_like(items, dtype=torch.bool)
        asked[rows, positions] = True  # one a row: `encode` returns them in row order
        states = self.encode(items, causal=False, ratings=buckets, at=asked)
        return states, items[rows, positions]

    def genre_logits(self, hidden: torch.Tensor) -> torch.Tensor | None:
        return self.genre_head(hidden) if hasattr(self, "genre_head") else None

    def lower_layers(self, count: int) -> list[nn.Module]:
        """The embeddings and the `count` lowest encoder layers (what fine-tuning may freeze)."""
        return [self.bert.embeddings, *self.bert.encoder.layer[:count]]

    def set_dropout(self, hidden: float, attention: float) -> None:
        """Change dropout after loading (fine-tuning may regularize harder than pretraining)."""
        self.config.hidden_dropout = hidden
        self.config.attention_dropout = attention
        self.bert.config.hidden_dropout_prob = hidden
        self.bert.config.attention_probs_dropout_prob = attention
        for name, module in self.bert.named_modules():
            if isinstance(module, nn.Dropout):
                module.p = attention if "attention.self" in name else hidden
