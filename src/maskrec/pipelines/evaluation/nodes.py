"""Evaluation: every model ranks the full catalogue for every test user (seen items
excluded), through one code path; then means, intervals, breakdowns and paired tests.

This is the only place that reads `test_targets`.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

import numpy as np
import pandas as pd
import torch

from maskrec.catalogue import check_catalogue
from maskrec.devices import resolve_device
from maskrec.metrics import (
    bootstrap_intervals,
    coverage_interval,
    history_buckets,
    intra_list_diversity,
    mean_metrics,
    novelty,
    per_user_tests,
    ranking_metrics,
    window_metrics,
    with_fdr,
)
from maskrec.metrics import paired_tests as metric_tests
from maskrec.model_input import eval_set
from maskrec.models.baselines import Baseline, Skipped
from maskrec.models.new_items import NewItems
from maskrec.models.sequence import SequenceRecModel
from maskrec.params import EvaluationParams, TrainingParams
from maskrec.registry import base_name, best_baseline, chosen, scored, with_new_films
from maskrec.scoring import WithNewFilms, fit_temperature, rank

logger = logging.getLogger(__name__)


def _metrics_frame(ranks: np.ndarray, ks: list[int], top: np.ndarray, window: pd.Series | None) -> dict[str, np.ndarray]:  # fmt: skip
    """Per-user metrics at each k: of the one target (its rank), or with a future window
    (`target_items`), of every item the user went on to consume (`window_metrics`)."""
    out: dict[str, np.ndarray] = {"rank": ranks}
    for k in ks:
        if window is not None:
            out.update(window_metrics(top, window.tolist(), k))
            continue
        for name, values in ranking_metrics(ranks, k).items():
            out[name] = values
        out[f"recall@{k}"] = out[f"hr@{k}"]  # one target per user: recall@k = hit@k
    return out


def _untrained_frame(ranking: Any, untrained: np.ndarray, targets: np.ndarray) -> dict[str, np.ndarray]:  # fmt: skip
    """Per user: how many items without training interactions the top 10 holds (what warm
    users pay for them) and, where the target is such an item, its HR@10 and NDCG@10
    among those items only (NaN elsewhere)."""
    out = {"untrained_in_top10": untrained[ranking.top_items[:, :10]].sum(axis=1)}
    if ranking.ranks_among is not None:
        cold = untrained[targets]
        for name, values in ranking_metrics(ranking.ranks_among, 10).items():
            if name in ("hr@10", "ndcg@10"):
                out[f"among_untrained_{name.replace('@', '')}"] = np.where(cold, values, np.nan)  # fmt: skip
    return out


def _beyond_accuracy(top10: np.ndarray, genres: np.ndarray | None, counts: np.ndarray, users: int) -> dict[str, np.ndarray]:  # fmt: skip
    """Per user: intra-list diversity of the top 10 by genre (when the items have genres)
    and its novelty (mean self-information of the items, from training popularity)."""
    out = {"novelty@10": novelty(top10, counts, users)}
    if genres is not None:
        out["diversity@10"] = intra_list_diversity(top10, genres)
    return out


def _genres(item_features: pd.DataFrame) -> np.ndarray | None:
    """Genre (or category) flags by model item id, row 0 the padding; None without any."""
    features = item_features.sort_values("item_id")
    columns = [c for c in features.columns if c.startswith("genre_")]
    if not columns:
        return None
    genres = np.zeros((len(features) + 1, len(columns)))
    genres[1:] = features[columns].to_numpy(dtype=float)
    return genres


def evaluate_models(
    test_targets: pd.DataFrame,
    valid_targets: pd.DataFrame,
    train_sequences: pd.DataFrame,
    item_features: pd.DataFrame,
    params: EvaluationParams,
    training: TrainingParams,
    new_items: NewItems | None = None,
    **models: SequenceRecModel | Baseline,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Per-user test metrics for every model, plus per-model validation NDCG@10 (for
    picking the best model), catalogue coverage and popularity of what is recommended,
    and for sequence models the test metrics with seen items included (RecBole's way).
    A baseline the run skipped is not scored; its stats say why (`skipped`). A model
    trained on another item map than `item_features` (a data pipeline ran since) stops
    the node, saying what to rerun.

    When some test target is a film without training events and `params.new_films`,
    each sequence model is scored a second time as `<name>+new_films`: with those films
    mixed in from content by `new_items`, its softmax temperature chosen on validation.

    Scoring runs in batches of `training.scoring_batch_size` users on the training device
    (`training.device`, bf16 as `training.autocast_bf16` says), as validation did during training."""
    skipped = {n: m for n, m in models.items() if isinstance(m, Skipped)}
    models = {n: m for n, m in models.items() if n not in skipped}
    checked = {**models, **({"new_films_model": new_items} if new_items else {})}
    for name, model in checked.items():  # each model's ids must mean this data's items
        if (
            model.catalogue is not None
        ):  # (None: a baseline saved before models kept it)
            check_catalogue(name, model.catalogue, item_features, "item_features")
    history = train_sequences.set_index("user_id")["item_ids"].map(len)
    n_items = max(
        m.n_items if isinstance(m, Baseline) else m.config.n_items
        for m in models.values()
    )
    counts = np.bincount(
        np.concatenate(train_sequences["item_ids"].to_numpy()), minlength=n_items + 1
    )
    genres = _genres(item_features)
    # items without training interactions (held-out new films, or never rated in training):
    # what every model can only rank by content
    untrained = counts == 0
    untrained[0] = False
    among = torch.from_numpy(untrained) if untrained.any() else None
    device = resolve_device(training.device)
    score = functools.partial(rank, batch_size=training.scoring_batch_size, device=device, bf16=training.autocast_bf16(device))  # fmt: skip
    entries: dict[str, SequenceRecModel | Baseline | WithNewFilms] = dict(models)
    if new_items and params.new_films and untrained[test_targets["target_item"].to_numpy()].any():  # fmt: skip
        for name, model in models.items():
            if isinstance(model, SequenceRecModel):
                entries[with_new_films(name)] = WithNewFilms(model, new_items)
    length = max(
        (m.config.max_len for m in models.values() if isinstance(m, SequenceRecModel)),
        default=1,
    )
    length = max([length, *(e.context_length for e in entries.values() if isinstance(e, WithNewFilms))])  # fmt: skip
    test, valid = eval_set(test_targets, length), eval_set(valid_targets, length)
    frames, stats, temperatures = [], {}, {}
    for name, entry in entries.items():
        sequence = entry.model if isinstance(entry, WithNewFilms) else entry
        if isinstance(sequence, SequenceRecModel):
            sequence.to(device)
        if new_items and isinstance(sequence, SequenceRecModel):
            # the softmax temperature at which the model's scores are a calibrated
            # probability (validation), for the mixture here and for inference's new films
            if base_name(name) not in temperatures:
                temperatures[base_name(name)] = fit_temperature(
                    sequence, valid, training.scoring_batch_size, ~torch.from_numpy(untrained), device, training.autocast_bf16(device),
                )  # fmt: skip
            if isinstance(entry, WithNewFilms):
                entry.temperature = temperatures[base_name(name)]
        ranking = score(
            entry, test, top_k=min(max(*params.ks, 10), n_items), among=among
        )
        validation = mean_metrics(score(entry, valid).ranks)
        if isinstance(sequence, SequenceRecModel):
            sequence.cpu()
        frames.append(pd.DataFrame({
            "model": name, "user_id": test_targets["user_id"].to_numpy(), "is_cold": test_targets["is_cold"].to_numpy(),
            "is_cold_item": test_targets.get("is_cold_item", pd.Series(False, index=test_targets.index)).to_numpy(),
            "history_length": test_targets["user_id"].map(history).fillna(0).astype(int).to_numpy(),
            **_metrics_frame(ranking.ranks, params.ks, ranking.top_items, test_targets.get("target_items")),
            **_untrained_frame(ranking, untrained, test_targets["target_item"].to_numpy()),
            **_beyond_accuracy(ranking.top_items[:, :10], genres, counts, len(train_sequences)),
        }))  # fmt: skip
        top10 = ranking.top_items[:, :10]
        stats[name] = {
            "kind": "new_films_mixture" if isinstance(entry, WithNewFilms) else "sequence" if isinstance(entry, SequenceRecModel) else "baseline",
            "valid_ndcg@10": validation["ndcg@10"],
            "valid_hr@10": validation["hr@10"],
            "coverage@10": float(len(np.unique(top10)) / n_items),
            "coverage@10_ci": list(coverage_interval(top10, n_items, params.bootstrap_samples, params.confidence, params.seed)),
            "mean_popularity@10": float(counts[top10].mean() / counts[1:].sum() * n_items),
            "personalises_new_users": bool(getattr(sequence, "personalises_new_users", True)),
            "training_seed": training.seed,  # what the seeds pipeline tells runs apart by
        }  # fmt: skip
        if base_name(name) in temperatures:
            stats[name]["temperature"] = temperatures[base_name(name)]
        if isinstance(entry, WithNewFilms):
            stats[name]["mixes"] = base_name(name)
            # films without training events that the model met elsewhere (a transfer
            # model's source): the mixture lets the model order them
            known = entry.known
            stats[name]["new_films_ordered_by_model"] = 0 if known is None else int((known.cpu().numpy() & untrained[: len(known)]).sum())  # fmt: skip
        if isinstance(entry, SequenceRecModel):
            included = mean_metrics(ranking.ranks_seen_included)
            stats[name]["test_ndcg@10_seen_included"] = included["ndcg@10"]
            stats[name]["test_hr@10_seen_included"] = included["hr@10"]
        logger.info(
            "%s: test NDCG@10 %.4f (valid %.4f)",
            name,
            frames[-1]["ndcg@10"].mean(),
            validation["ndcg@10"],
        )
    for name, model in skipped.items():
        stats[name] = {"kind": "baseline", "skipped": model.config["reason"]}
    return pd.concat(frames, ignore_index=True), stats


def summarise_evaluation(
    per_user: pd.DataFrame, model_stats: dict[str, Any], params: EvaluationParams
) -> dict[str, Any]:
    """Means (with bootstrap intervals for `params.interval_metrics`), history-length
    buckets, cold vs warm, and paired tests whose p-values are adjusted together for
    the false discovery rate."""
    metric_names = [c for c in per_user.columns if "@" in c]
    with_intervals = [m for m in metric_names if m in params.interval_metrics]

    def describe(frame: pd.DataFrame) -> dict[str, Any]:
        out: dict[str, Any] = {"users": int(len(frame))}
        means = frame[metric_names].mean() if len(frame) else None
        low, high = bootstrap_intervals(
            frame[with_intervals].to_numpy().T,
            params.bootstrap_samples,
            params.confidence,
            params.seed,
        )
        for metric in metric_names:
            out[metric] = {"mean": float(means[metric]) if len(frame) else float("nan")}
        for metric, lo, hi in zip(with_intervals, low, high, strict=True):
            out[metric].update(ci_low=float(lo), ci_high=float(hi))
        return out

    edges = params.history_buckets
    warm = per_user[~per_user["is_cold"]]
    bucket = history_buckets(warm["history_length"], edges)
    skipped = {m: s["skipped"] for m, s in model_stats.items() if "skipped" in s}
    model_stats = scored(model_stats)
    best = best_baseline(model_stats)

    cold_items = per_user["is_cold_item"] if "is_cold_item" in per_user else pd.Series(False, index=per_user.index)  # fmt: skip
    models: dict[str, Any] = {}
    for name, frame in per_user.groupby("model", sort=False):
        warm_rows = frame[~frame["is_cold"]]
        models[name] = {
            **model_stats[name],
            "all": describe(frame),
            "warm": describe(warm_rows),
            "cold": describe(frame[frame["is_cold"]]),
            "cold_items": describe(frame[cold_items.loc[frame.index]])
            | _among_untrained(frame, params),
            "untrained_in_top10": _untrained_in_top10(frame),
            "by_history_length": {
                label: describe(group)
                for label, group in warm_rows.groupby(
                    bucket.loc[warm_rows.index], observed=False
                )
            },
        }
    window = any(name.startswith("map@") for name in per_user.columns)
    return {
        "protocol": "full ranking over all items, items in the user's context excluded, "
        + (
            "every item the user consumed after the test cut as ground truth (future window; "
            "HR, Recall, NDCG, MAP and MRR over that set)"
            if window
            else "one target per user"
        ),  # fmt: skip
        "best_model_by_validation": chosen(model_stats),
        "best_baseline_by_validation": best,
        "skipped": skipped,
        "bucket_edges": edges,
        "models": models,
        "paired_tests": paired_tests(per_user, best, params),
        "permutation_resamples": params.permutation_resamples,
    }


def _among_untrained(frame: pd.DataFrame, params: EvaluationParams) -> dict[str, Any]:
    """For the users whose target has no training interactions: HR@10 and NDCG@10 (with
    intervals) among such items only, and over the whole catalogue (`catalogue`)."""
    if "among_untrained_ndcg10" not in frame:
        return {}
    rows = frame.dropna(subset=["among_untrained_ndcg10"])

    def described(columns: dict[str, str]) -> dict[str, Any]:
        values = rows[list(columns.values())].to_numpy().T
        low, high = bootstrap_intervals(values, params.bootstrap_samples, params.confidence, params.seed)  # fmt: skip
        return {
            metric: {"mean": float(rows[column].mean()) if len(rows) else float("nan"), "ci_low": float(lo), "ci_high": float(hi)}
            for (metric, column), lo, hi in zip(columns.items(), low, high, strict=True)
        }  # fmt: skip

    among = described({"hr@10": "among_untrained_hr10", "ndcg@10": "among_untrained_ndcg10"})  # fmt: skip
    catalogue = described({"hr@10": "hr@10", "ndcg@10": "ndcg@10"})
    return {
        "among_untrained": {"users": int(len(rows)), **among, "catalogue": catalogue}
    }


def _untrained_in_top10(frame: pd.DataFrame) -> dict[str, float]:
    """Mean number of items without training interactions in a top 10: for every user, and
    for users whose target has interactions (the price of recommending new items)."""
    if "untrained_in_top10" not in frame:
        return {}
    warm_target = frame["among_untrained_ndcg10"].isna() if "among_untrained_ndcg10" in frame else np.ones(len(frame), dtype=bool)  # fmt: skip
    return {
        "all": float(frame["untrained_in_top10"].mean()),
        "trained_targets": float(frame.loc[warm_target, "untrained_in_top10"].mean()),
    }


def paired_tests(
    per_user: pd.DataFrame, best: str | None, params: EvaluationParams
) -> list[dict[str, Any]]:
    """NDCG@10 of each (model, competitor) in `params.comparisons` on the same users, for
    all users, sparse users, cold users and users whose target is a cold item, and for
    targets without training interactions their NDCG@10 among such items only
    (`metrics.paired_tests`); `p_adjusted` is Benjamini-Hochberg across every row."""
    pairs = [(m, best if c == "best_baseline" else c) for m, c in params.comparisons]  # fmt: skip
    tests = per_user_tests(per_user, pairs, params)
    if (
        "among_untrained_ndcg10" in per_user
    ):  # new-item targets, ranked among new items only
        among = per_user.pivot(index="user_id", columns="model", values="among_untrained_ndcg10")  # fmt: skip
        has_target = among.notna().any(axis=1).to_numpy()
        tests += metric_tests(among, pairs, {"new_items_among_new": has_target}, "ndcg@10 among untrained items", params)  # fmt: skip
    return with_fdr(tests)
