"""Evaluation: every model ranks the full catalogue for every test user (seen items
excluded), through one code path; then means, intervals, breakdowns and paired tests.

This is the only place that reads `test_targets`.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from maskrec.evaluation import rank_and_recommend
from maskrec.metrics import bootstrap_interval, paired_test, ranking_metrics
from maskrec.models.baselines import Baseline
from maskrec.models.sequence import SequenceRecModel
from maskrec.params import EvaluationParams
from maskrec.training.data import eval_set

logger = logging.getLogger(__name__)


def _metrics_frame(ranks: np.ndarray, ks: list[int]) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {"rank": ranks}
    for k in ks:
        for name, values in ranking_metrics(ranks, k).items():
            out[name] = values
        out[f"recall@{k}"] = out[f"hr@{k}"]  # one target per user: recall@k = hit@k
    return out


def evaluate_models(
    test_targets: pd.DataFrame,
    valid_targets: pd.DataFrame,
    train_sequences: pd.DataFrame,
    params: EvaluationParams,
    **models: SequenceRecModel | Baseline,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Per-user test metrics for every model, plus per-model validation NDCG@10 (for
    picking the best model), catalogue coverage and popularity of what is recommended."""
    length = max(
        (m.config.max_len for m in models.values() if isinstance(m, SequenceRecModel)),
        default=1,
    )
    test, valid = eval_set(test_targets, length), eval_set(valid_targets, length)
    history = dict(
        zip(
            train_sequences["user_id"],
            train_sequences["item_ids"].map(len),
            strict=True,
        )
    )
    counts = np.bincount(np.concatenate(train_sequences["item_ids"].to_numpy()), minlength=1 + max(
        (m.n_items if isinstance(m, Baseline) else m.config.n_items) for m in models.values()))  # fmt: skip
    n_items = len(counts) - 1
    frames, stats = [], {}
    for name, model in models.items():
        ranks, top = rank_and_recommend(
            model, test, params.batch_size, top_k=max(params.ks)
        )
        valid_ranks, _ = rank_and_recommend(model, valid, params.batch_size, top_k=1)
        frame = pd.DataFrame({
            "model": name, "user_id": test_targets["user_id"].to_numpy(), "is_cold": test_targets["is_cold"].to_numpy(),
            "history_length": test_targets["user_id"].map(history).fillna(0).astype(int).to_numpy(),
            **_metrics_frame(ranks, params.ks),
        })  # fmt: skip
        frames.append(frame)
        top10 = top[:, :10]
        stats[name] = {
            "kind": "sequence" if isinstance(model, SequenceRecModel) else "baseline",
            "valid_ndcg@10": float(ranking_metrics(valid_ranks, 10)["ndcg@10"].mean()),
            "valid_hr@10": float(ranking_metrics(valid_ranks, 10)["hr@10"].mean()),
            "coverage@10": float(len(np.unique(top10)) / n_items),
            "mean_popularity@10": float(
                counts[top10].mean() / counts[1:].sum() * n_items
            ),
            "personalises_new_users": bool(
                getattr(model, "personalises_new_users", True)
            ),
        }
        if isinstance(model, SequenceRecModel):
            # RecBole scores its sequential models without removing seen items; report that too.
            unfiltered, _ = rank_and_recommend(
                model, test, params.batch_size, top_k=1, exclude_seen=False
            )
            stats[name]["test_ndcg@10_seen_included"] = float(
                ranking_metrics(unfiltered, 10)["ndcg@10"].mean()
            )
            stats[name]["test_hr@10_seen_included"] = float(
                ranking_metrics(unfiltered, 10)["hr@10"].mean()
            )
        logger.info(
            "%s: test NDCG@10 %.4f (valid %.4f)",
            name,
            frame["ndcg@10"].mean(),
            stats[name]["valid_ndcg@10"],
        )
    return pd.concat(frames, ignore_index=True), stats


def _bucket_labels(edges: list[int]) -> list[str]:
    return [f"{lo}-{hi - 1}" for lo, hi in zip(edges[:-1], edges[1:], strict=True)] + [
        f"{edges[-1]}+"
    ]


def summarise_evaluation(
    per_user: pd.DataFrame, model_stats: dict[str, Any], params: EvaluationParams
) -> dict[str, Any]:
    """Means with bootstrap intervals, history-length buckets, cold vs warm, paired tests."""
    metric_names = [c for c in per_user.columns if "@" in c]
    boot = {
        "samples": params.bootstrap_samples,
        "confidence": params.confidence,
        "seed": params.seed,
    }

    def describe(frame: pd.DataFrame) -> dict[str, Any]:
        out: dict[str, Any] = {"users": int(len(frame))}
        for metric in metric_names:
            values = frame[metric].to_numpy()
            low, high = bootstrap_interval(values, **boot)
            out[metric] = {
                "mean": float(values.mean()) if len(values) else float("nan"),
                "ci_low": low,
                "ci_high": high,
            }
        return out

    edges = params.history_buckets
    labels = _bucket_labels(edges)
    warm = per_user[~per_user["is_cold"]]
    bucket = pd.cut(
        warm["history_length"], bins=[*edges, np.inf], right=False, labels=labels
    )
    baselines = {m: s for m, s in model_stats.items() if s["kind"] == "baseline"}
    best_baseline = (
        max(baselines, key=lambda m: baselines[m]["valid_ndcg@10"])
        if baselines
        else None
    )

    models: dict[str, Any] = {}
    for name, frame in per_user.groupby("model", sort=False):
        models[name] = {
            **model_stats[name],
            "all": describe(frame),
            "warm": describe(frame[~frame["is_cold"]]),
            "cold": describe(frame[frame["is_cold"]]),
            "by_history_length": {
                label: describe(group)
                for label, group in frame[~frame["is_cold"]].groupby(
                    bucket.loc[frame[~frame["is_cold"]].index], observed=False
                )
            },
        }
    tests = []
    wide = per_user.pivot(index="user_id", columns="model", values="ndcg@10")
    users = per_user.drop_duplicates("user_id").set_index("user_id")
    groups = {
        "all": np.ones(len(wide), dtype=bool),
        f"history<={params.sparse_user_max_history}": (~users.loc[wide.index, "is_cold"] & (users.loc[wide.index, "history_length"] <= params.sparse_user_max_history)).to_numpy(),
        "cold": users.loc[wide.index, "is_cold"].to_numpy(),
    }  # fmt: skip
    for model, competitor in params.comparisons:
        other = best_baseline if competitor == "best_baseline" else competitor
        if model not in wide or other not in wide:
            continue
        for group, mask in groups.items():
            result = paired_test(
                wide.loc[mask, model].to_numpy(),
                wide.loc[mask, other].to_numpy(),
                params.bootstrap_samples,
                params.confidence,
                params.seed,
            )
            tests.append(
                {
                    "model": model,
                    "competitor": other,
                    "group": group,
                    "metric": "ndcg@10",
                    **result,
                }
            )
    best_model = max(model_stats, key=lambda m: model_stats[m]["valid_ndcg@10"])
    return {
        "protocol": "full ranking over all items, items in the user's context excluded, one target per user",
        "best_model_by_validation": best_model,
        "best_baseline_by_validation": best_baseline,
        "bucket_edges": edges,
        "models": models,
        "paired_tests": tests,
    }
