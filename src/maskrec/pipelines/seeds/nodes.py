"""Seeds, not users, as the replicates: the latest evaluations of one configuration with
distinct training seeds (`kedro run --params training.seed=<s>`, one run each), compared.

A paired test on one run says whether a difference holds for these test users with these
trained weights; a second seed can overturn it. For every comparison of
`evaluation.comparisons` this reports each seed's paired test (as the evaluation ran it)
and Student's t interval of the difference over the seeds, beside the validation
difference each seed's model selection saw.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from maskrec.metrics import per_user_tests, t_interval, with_fdr
from maskrec.params import EvaluationParams, SeedParams
from maskrec.registry import best_baseline, label, scored

logger = logging.getLogger(__name__)


def _versions(partitions: dict[str, Callable[[], Any]]) -> dict[str, Callable[[], Any]]:
    """Partition ids "<version>/<name>" of a versioned dataset's folder, by version."""
    return {key.split("/")[0]: load for key, load in partitions.items() if "/" in key}


def _same_evaluation(frame: pd.DataFrame, reference: pd.DataFrame) -> bool:
    """The same models scored on the same test users (who is cold, how long a history)."""
    columns = ["model", "user_id", "is_cold", "history_length"]
    if set(frame["model"]) != set(reference["model"]) or len(frame) != len(reference):
        return False
    ordered = [f[columns].sort_values(["model", "user_id"]).reset_index(drop=True) for f in (frame, reference)]  # fmt: skip
    return ordered[0].equals(ordered[1])


def select_runs(
    per_user_runs: dict[str, Callable[[], Any]],
    model_stats_runs: dict[str, Callable[[], Any]],
    runs: int,
    until: str | None = None,
) -> list[tuple[str, int, pd.DataFrame, dict[str, Any]]]:
    """The latest evaluation (the newest saved at or before version `until`, if given),
    and before it (newest first) each earlier evaluation of the same models on the same
    test users with a training seed not yet taken, up to `runs`: (version, seed,
    per-user metrics, model stats), oldest first."""
    frames, stats = _versions(per_user_runs), _versions(model_stats_runs)
    versions = sorted(set(frames) & set(stats), reverse=True)
    if until is not None:
        if until not in versions:
            raise ValueError(
                f"seeds.until: no evaluation was saved as version {until!r} (data/08_reporting/"
                f"per_user_metrics.parquet/ and model_stats.json/ hold {', '.join(sorted(versions)) or 'none'})"
            )  # fmt: skip
        versions = [v for v in versions if v <= until]
    chosen: list[tuple[str, int, pd.DataFrame, dict[str, Any]]] = []
    reference = None
    for version in versions:
        run_stats = stats[version]()
        seeds = {
            s.get("training_seed") for s in run_stats.values() if isinstance(s, dict)
        }
        if len(seeds) != 1 or None in seeds:
            continue  # saved before evaluations recorded their seed
        seed = seeds.pop()
        if any(seed == taken for _, taken, _, _ in chosen):
            continue
        frame = frames[version]()
        if reference is None:
            reference = frame
        elif not _same_evaluation(frame, reference):
            continue  # another configuration's evaluation (other data, split or models)
        chosen.append((version, int(seed), frame, run_stats))
        if len(chosen) == runs:
            break
    if len(chosen) < 2:
        raise ValueError(
            f"seeds: found {len(chosen)} evaluation(s) of the latest run's models and test users with distinct "
            f"training seeds; the pipeline compares {runs}. Run the same command once per seed first, e.g. "
            "`kedro run --params training.seed=1` and `training.seed=2`, then `kedro run --pipelines seeds`"
        )  # fmt: skip
    if len(chosen) < runs:
        logger.warning("seeds: comparing %d runs, not the %d asked for (seeds.runs)", len(chosen), runs)  # fmt: skip
    return chosen[::-1]


def compare_seeds(
    per_user_metrics_runs: dict[str, Callable[[], Any]],
    model_stats_runs: dict[str, Callable[[], Any]],
    evaluation: EvaluationParams,
    params: SeedParams,
) -> tuple[dict[str, Any], str]:
    """Each model's test NDCG@10 per seed with a t interval over the seeds, and for every
    comparison each seed's paired test (all users and the evaluation's user groups,
    Benjamini-Hochberg within a seed) and the t interval of the difference over seeds;
    beside them each seed's validation NDCG@10 (from the run's model stats), what chose
    the run's settings and epochs."""
    runs = select_runs(
        per_user_metrics_runs, model_stats_runs, params.runs, params.until
    )
    seeds = [seed for _, seed, _, _ in runs]
    models = sorted(scored(runs[-1][3]), key=list(runs[-1][3]).index)
    per_model = {}
    for model in models:
        values = [float(frame.loc[frame["model"] == model, "ndcg@10"].mean()) for _, _, frame, _ in runs]  # fmt: skip
        valid = [_valid(stats, model) for _, _, _, stats in runs]
        per_model[model] = {"per_seed": values, "mean": float(np.mean(values)), "t_interval_95": t_interval(values),
                            "valid_per_seed": valid, "valid_mean": None if None in valid else float(np.mean(valid))}  # fmt: skip
    tests_by_seed = []
    for _, _, frame, stats in runs:
        best = best_baseline(stats)
        pairs = [(m, best if c == "best_baseline" else c) for m, c in evaluation.comparisons]  # fmt: skip
        tests_by_seed.append(with_fdr(per_user_tests(frame, pairs, evaluation)))
    differences = []
    keys = [(t["model"], t["competitor"], t["group"]) for t in tests_by_seed[-1]]
    for model, competitor, group in keys:
        found = [next((t for t in tests if (t["model"], t["competitor"], t["group"]) == (model, competitor, group)), None) for tests in tests_by_seed]  # fmt: skip
        if any(t is None for t in found):
            continue  # a pair whose best baseline changed between seeds
        per_seed = [t["mean_difference"] for t in found]
        differences.append({
            "model": model, "competitor": competitor, "group": group, "users": found[-1]["users"],
            "per_seed": per_seed, "mean": float(np.mean(per_seed)), "t_interval_95": t_interval(per_seed),
            # what model selection saw: validation has no user groups, so all users only
            "valid_per_seed": _valid_differences(runs, model, competitor) if group == "all" else None,
            "per_seed_tests": [{k: t[k] for k in ("mean_difference", "ci_low", "ci_high", "p_value", "p_adjusted")} for t in found],
        })  # fmt: skip
    result = {"seeds": seeds, "versions": [v for v, _, _, _ in runs], "models": per_model, "differences": differences}  # fmt: skip
    return result, _markdown(result)


def _valid(stats: dict[str, Any], model: str) -> float | None:
    """A model's validation NDCG@10 in one run's model stats (None if it has none)."""
    value = stats.get(model, {}).get("valid_ndcg@10")
    return None if value is None else float(value)


def _valid_differences(runs: list, model: str, competitor: str) -> list[float] | None:
    """`model` − `competitor` in validation NDCG@10, seed by seed: the difference model
    selection saw, to set beside the test's (None if a run lacks either)."""
    pairs = [
        (_valid(stats, model), _valid(stats, competitor)) for _, _, _, stats in runs
    ]
    if any(a is None or b is None for a, b in pairs):
        return None
    return [a - b for a, b in pairs]


def _markdown(result: dict[str, Any]) -> str:
    def interval(bounds: list[float] | None) -> str:
        return "–" if bounds is None else f"[{bounds[0]:+.4f}, {bounds[1]:+.4f}]"

    seeds = result["seeds"]
    lines = [
        "# maskrec across training seeds", "",
        f"Seeds {', '.join(map(str, seeds))} (runs {', '.join(result['versions'])}): the same models and test users, "
        "one training seed each. Intervals are Student's t over the seeds (the replicates are seeds, not users); "
        "p (FDR) is each seed's own paired permutation test, adjusted within that seed. Validation columns show "
        "what model selection saw in the same runs: where a difference's sign there is not the test's, the two "
        "splits disagree and neither alone settles it.", "",
        "| model | " + " | ".join(f"NDCG@10 seed {s}" for s in seeds) + " | mean | 95% over seeds | valid mean |",
        "|---|" + "---|" * (len(seeds) + 3),
    ]  # fmt: skip
    for model, entry in result["models"].items():
        bounds = entry["t_interval_95"]
        cells = " | ".join(f"{v:.4f}" for v in entry["per_seed"])
        valid = "–" if entry["valid_mean"] is None else f"{entry['valid_mean']:.4f}"
        lines.append(f"| {label(model)} | {cells} | {entry['mean']:.4f} | {'–' if bounds is None else f'[{bounds[0]:.4f}, {bounds[1]:.4f}]'} | {valid} |")  # fmt: skip
    lines += ["", "| model | competitor | group | n | difference per seed | mean | 95% over seeds | p (FDR) per seed | valid difference per seed |",
              "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for d in result["differences"]:
        per_seed = " ".join(f"{v:+.4f}" for v in d["per_seed"])
        p = " ".join("<0.0001" if t["p_adjusted"] < 1e-4 else f"{t['p_adjusted']:.4f}" for t in d["per_seed_tests"])  # fmt: skip
        valid = (
            "–"
            if d["valid_per_seed"] is None
            else " ".join(f"{v:+.4f}" for v in d["valid_per_seed"])
        )
        lines.append(f"| {d['model']} | {d['competitor']} | {d['group']} | {d['users']} | {per_seed} | {d['mean']:+.4f} | {interval(d['t_interval_95'])} | {p} | {valid} |")  # fmt: skip
    return "\n".join(lines) + "\n"
