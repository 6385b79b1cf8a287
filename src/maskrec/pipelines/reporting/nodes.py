"""Plotly figures and a summary table from the evaluation; kedro-viz previews the figures."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from maskrec.figures import bars
from maskrec.registry import BY_NAME, label, ordered


def plot_model_comparison(evaluation_metrics: dict[str, Any]) -> go.Figure:
    """NDCG@10, HR@10 and MRR@10 per model on all test users, with bootstrap 95% intervals."""
    models = ordered(evaluation_metrics["models"])
    figure = go.Figure()
    for metric in ("ndcg@10", "hr@10", "mrr@10"):
        stats = [evaluation_metrics["models"][m]["all"][metric] for m in models]
        figure.add_trace(bars(metric.upper(), [label(m) for m in models], stats))
    figure.update_layout(
        barmode="group",
        title="Test metrics by model (95% bootstrap intervals)",
        yaxis_title="metric",
    )
    return figure


def plot_learning_curves(**histories: pd.DataFrame) -> go.Figure:
    """Validation NDCG@10 per epoch of every trained model (histories by model name); a
    model that continues another's training (fine-tuning after pretraining) is drawn
    after that model's last epoch."""
    figure = go.Figure()
    for name in ordered(histories):
        frame = histories[name]
        before = BY_NAME[name].continues if name in BY_NAME else None
        shift = int(histories[before]["epoch"].max()) if before in histories else 0
        figure.add_trace(
            go.Scatter(
                name=label(name) + (f" (after {label(before)})" if shift else ""),
                x=frame["epoch"] + shift,
                y=frame["ndcg@10"],
                mode="lines+markers",
            )
        )
    figure.update_layout(
        title="Validation NDCG@10 by epoch",
        xaxis_title="epoch (fine-tuning continues after pretraining)",
        yaxis_title="NDCG@10",
    )
    return figure


def plot_history_buckets(evaluation_metrics: dict[str, Any]) -> go.Figure:
    """Test NDCG@10 by the length of the user's training history (warm users)."""
    figure = go.Figure()
    for model in ordered(evaluation_metrics["models"]):
        buckets = evaluation_metrics["models"][model]["by_history_length"]
        labels = [b for b in buckets if buckets[b]["users"] > 0]
        x = [f"{b} ({buckets[b]['users']})" for b in labels]
        figure.add_trace(bars(label(model), x, [buckets[b]["ndcg@10"] for b in labels]))
    figure.update_layout(
        barmode="group",
        title="Test NDCG@10 by training-history length (users)",
        xaxis_title="training interactions",
        yaxis_title="NDCG@10",
    )
    return figure


def plot_cold_vs_warm(evaluation_metrics: dict[str, Any]) -> go.Figure:
    """Test NDCG@10 for users seen in training against users never seen (cold start)."""
    models = ordered(evaluation_metrics["models"])
    figure = go.Figure()
    for group in ("warm", "cold"):
        stats = [evaluation_metrics["models"][m][group]["ndcg@10"] for m in models]
        users = evaluation_metrics["models"][models[0]][group]["users"]
        figure.add_trace(
            bars(f"{group} ({users} users)", [label(m) for m in models], stats)
        )
    figure.update_layout(
        barmode="group",
        title="Test NDCG@10: warm vs cold-start users",
        yaxis_title="NDCG@10",
    )
    return figure


def plot_new_items(evaluation_metrics: dict[str, Any]) -> go.Figure:
    """For test targets without training interactions (new films): HR@10 over the whole
    catalogue and among such items only, per model, with intervals; and how many such
    items a top 10 holds for users whose target is a known film (what they pay)."""
    models = ordered(evaluation_metrics["models"])
    stats = {m: evaluation_metrics["models"][m] for m in models}
    figure = go.Figure()
    among = [stats[m]["cold_items"].get("among_untrained") for m in models]
    if any(among):
        figure.add_trace(bars(f"HR@10, whole catalogue ({among[0]['users']} users)", [label(m) for m in models],
                              [a["catalogue"]["hr@10"] for a in among]))  # fmt: skip
        figure.add_trace(bars("HR@10 among new items only", [label(m) for m in models], [a["hr@10"] for a in among]))  # fmt: skip
    paid = [stats[m].get("untrained_in_top10", {}).get("trained_targets", math.nan) for m in models]  # fmt: skip
    figure.add_trace(go.Bar(name="new items in the top 10 of users with a known target", x=[label(m) for m in models], y=paid, yaxis="y2", opacity=0.5))  # fmt: skip
    figure.update_layout(
        barmode="group",
        title="New films: test targets without training interactions",
        yaxis_title="HR@10",
        yaxis2={"title": "new items per top 10", "overlaying": "y", "side": "right"},
    )
    return figure


def plot_beyond_accuracy(evaluation_metrics: dict[str, Any]) -> go.Figure:
    """What each model's top 10 is made of, beside how accurate it is: catalogue coverage,
    intra-list diversity by genre and novelty (bits), each with its 95% interval."""
    models = ordered(evaluation_metrics["models"])
    stats = {m: evaluation_metrics["models"][m] for m in models}
    panels = {
        "coverage@10": [{"mean": s["coverage@10"], "ci_low": s["coverage@10_ci"][0], "ci_high": s["coverage@10_ci"][1]}
                        if "coverage@10_ci" in s else {"mean": s["coverage@10"], "ci_low": s["coverage@10"], "ci_high": s["coverage@10"]}
                        for s in stats.values()],
        **{metric: [s["all"][metric] for s in stats.values()] for metric in ("diversity@10", "novelty@10")
           if all(metric in s["all"] for s in stats.values())},
    }  # fmt: skip
    figure = make_subplots(rows=1, cols=len(panels), subplot_titles=list(panels))
    for column, (metric, values) in enumerate(panels.items(), start=1):
        figure.add_trace(bars(metric, [label(m) for m in models], values), row=1, col=column)  # fmt: skip
    figure.update_layout(
        title="Beyond accuracy: coverage, diversity by genre and novelty (bits) of the top 10 (95% intervals)",
        showlegend=False,
    )
    return figure


def build_summary(
    evaluation_metrics: dict[str, Any],
    data_quality_report: dict[str, Any],
    item_alignment_report: dict[str, Any] | None = None,
) -> tuple[list[dict[str, Any]], str]:
    """One row per model (json) and the same as a markdown table, plus NDCG@10 by
    training-history length and the paired tests; in a transfer run, first how the
    source's items were matched to the target's and how much of each side that covers.
    A source without ratings is said to be one, with what it leaves out."""
    rows = []
    for model in ordered(evaluation_metrics["models"]):
        stats = evaluation_metrics["models"][model]
        row = {"model": model, "valid_ndcg@10": stats["valid_ndcg@10"]}
        for metric in ("hr@10", "ndcg@10", "mrr@10"):
            m = stats["all"][metric]
            row[metric], row[f"{metric}_ci"] = m["mean"], [m["ci_low"], m["ci_high"]]
        for metric in ("recall@10", "map@10"):  # over every later item (future window)
            if "ci_low" in stats["all"].get(metric, {}) and "map@10" in stats["all"]:
                m = stats["all"][metric]
                row[metric], row[f"{metric}_ci"] = (
                    m["mean"],
                    [m["ci_low"], m["ci_high"]],
                )
        row["cold_ndcg@10"] = stats["cold"]["ndcg@10"]["mean"]
        cold_items = stats.get("cold_items", {"users": 0})
        row["cold_item_users"] = cold_items["users"]
        row["cold_item_ndcg@10"] = cold_items["ndcg@10"]["mean"] if cold_items["users"] else math.nan  # fmt: skip
        row["coverage@10"] = stats["coverage@10"]
        row["coverage@10_ci"] = stats.get("coverage@10_ci", [math.nan, math.nan])
        for metric in (
            "diversity@10",
            "novelty@10",
        ):  # diversity needs genres or categories
            m = stats["all"].get(metric, {"mean": math.nan})
            row[metric], row[f"{metric}_ci"] = (
                m["mean"],
                [m.get("ci_low", math.nan), m.get("ci_high", math.nan)],
            )
        row["personalises_new_users"] = stats["personalises_new_users"]
        rows.append(row)

    def fmt(value: float, digits: int = 4) -> str:
        return "–" if math.isnan(value) else f"{value:.{digits}f}"

    def fmt_p(value: float) -> str:
        return (
            "–"
            if math.isnan(value)
            else ("<0.0001" if value < 1e-4 else f"{value:.4f}")
        )

    alignment = _alignment_lines(item_alignment_report) if item_alignment_report else []
    source = data_quality_report.get("source", {})
    if source.get("ratings") is False:
        alignment += [f"Source: {source.get('source')} has no ratings (implicit feedback). Every ranking model ran; "
                      "rating prediction (`kedro run --pipelines rating_prediction`) and the rating studies of "
                      "`tuning` need ratings and are refused on this source.", ""]  # fmt: skip
    items = max((r["cold_item_users"] for r in rows), default=0)
    item_header = " cold-item NDCG@10 |" if items else ""
    window = any(
        "map@10" in r for r in rows
    )  # future window: every later item a target
    window_header = (
        " test Recall@10 [95% CI] | test MAP@10 [95% CI] |" if window else ""
    )
    lines = [
        "# maskrec evaluation summary", "",
        f"Protocol: {evaluation_metrics['protocol']}. Best model by validation NDCG@10: "
        f"**{evaluation_metrics['best_model_by_validation']}**.", "", *alignment,
        f"| model | valid NDCG@10 | test HR@10 [95% CI] | test NDCG@10 [95% CI] |{window_header} test MRR@10 | cold-start NDCG@10 |"
        f"{item_header} coverage@10 | diversity@10 | novelty@10 | scores new users from history |",
        "|---|---|---|---|---|---|" + ("---|---|" if window else "") + ("---|" if items else "") + "---|---|---|---|",
    ]  # fmt: skip
    for r in rows:
        item_cell = f" {fmt(r['cold_item_ndcg@10'])} |" if items else ""
        lines.append(
            f"| {label(r['model'])} | {fmt(r['valid_ndcg@10'])} | {fmt(r['hr@10'])} [{fmt(r['hr@10_ci'][0])}, {fmt(r['hr@10_ci'][1])}] "
            f"| {fmt(r['ndcg@10'])} [{fmt(r['ndcg@10_ci'][0])}, {fmt(r['ndcg@10_ci'][1])}] |"
            + (
                f" {fmt(r['recall@10'])} [{fmt(r['recall@10_ci'][0])}, {fmt(r['recall@10_ci'][1])}] | {fmt(r['map@10'])} [{fmt(r['map@10_ci'][0])}, {fmt(r['map@10_ci'][1])}] |"
                if window
                else ""
            )
            + f" {fmt(r['mrr@10'])} | {fmt(r['cold_ndcg@10'])} |"
            f"{item_cell} {fmt(r['coverage@10'])} | {fmt(r['diversity@10'])} | {fmt(r['novelty@10'], 2)} | "
            f"{'yes' if r['personalises_new_users'] else 'no (same list for all)'} |"
        )
    lines += ["", "Beyond accuracy, over each user's top 10: coverage@10, the share of the catalogue in anyone's list; "
              "diversity@10, the mean cosine distance between the genre (or category) vectors of two films in a list "
              "(0: all alike); novelty@10, the mean self-information −log2(share of training users who had the film), "
              "in bits (higher: less popular films). Intervals for each are in summary.json."]  # fmt: skip
    skipped = evaluation_metrics.get("skipped", {})
    if skipped:
        lines += ["", *(f"Skipped in this run: {label(m)} ({why})." for m, why in skipped.items())]  # fmt: skip
    if items:
        lines += ["", f"Cold-item NDCG@10: the {items} test users whose target is one of the newest items, held "
                  "out of training entirely. A model that knows items only by their ids has never seen these "
                  "(near zero); a model with item content scores them by genres, decade and title words, a "
                  "source-pretrained one may know them from the source, and '+ new films by content' is the model "
                  "with them mixed in by how likely the user's next film is a new one and which, from content."]  # fmt: skip
    lines += _new_item_lines(evaluation_metrics, fmt)
    models = ordered(evaluation_metrics["models"])
    buckets = evaluation_metrics["models"][models[0]]["by_history_length"]
    lines += ["", "Test NDCG@10 by training-history length (warm users; users per bucket in brackets):", "",
              "| model | " + " | ".join(f"{b} ({buckets[b]['users']})" for b in buckets) + " |",
              "|---|" + "---|" * len(buckets)]  # fmt: skip
    for model in models:
        by_length = evaluation_metrics["models"][model]["by_history_length"]
        cells = [fmt(by_length[b]["ndcg@10"]["mean"]) if by_length[b]["users"] else "–" for b in buckets]  # fmt: skip
        lines.append(f"| {label(model)} | " + " | ".join(cells) + " |")
    tests = evaluation_metrics["paired_tests"]
    resamples = evaluation_metrics.get("permutation_resamples")
    floor = f" (with {resamples} resamples no p can be below {2 / (resamples + 1):.4f})" if resamples else ""  # fmt: skip
    lines += [
        "", "Paired tests on the same users (NDCG@10, difference = model − competitor). p: two-sided "
        f"sign-flip permutation test of zero mean difference, for that row alone{floor}. p (FDR): the same "
        f"p-values adjusted together (Benjamini–Hochberg) across all {sum(t['p_value'] == t['p_value'] for t in tests)} "
        "rows with users; read this column when asking whether any difference in the table is real.", "",
        "| model | competitor | group | n | mean difference [95% CI] | p | p (FDR) |", "|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for t in tests:
        lines.append(f"| {t['model']} | {t['competitor']} | {t['group']} | {t['users']} | "
                     f"{fmt(t['mean_difference'])} [{fmt(t['ci_low'])}, {fmt(t['ci_high'])}] | {fmt_p(t['p_value'])} | {fmt_p(t['p_adjusted'])} |")  # fmt: skip
    return rows, "\n".join(lines) + "\n"


def _alignment_lines(report: dict[str, Any]) -> list[str]:
    """The item alignment in a sentence or two: coverage, what was left unmatched and why,
    and how much of the source's and the target's activity the shared items carry."""
    by = ", ".join(f"{count} by {how.replace('_', ' ')}" for how, count in report["matched"].items())  # fmt: skip
    return [
        f"Pretraining source: {report['matched_items']} of the target's {report['target_items']} items "
        f"({report['coverage']:.1%}) matched a source item (method: {report['method']}; {by}); "
        f"{report['ambiguous_unmatched']} left unmatched as ambiguous, {report['no_match']} with no match. "
        f"The matched items hold {report['source_events_on_shared_items']:,} of the source's "
        f"{report['source_events']:,} events and {report['target_training_events_on_shared_items']:.1%} "
        f"of the target's training events; {report['source_users_kept']:,} source users kept.", "",
    ]  # fmt: skip


def _new_item_lines(evaluation_metrics: dict[str, Any], fmt) -> list[str]:
    """The new-film table: targets without training interactions, over the whole catalogue
    and among such items only, and how many of them a top 10 holds elsewhere."""
    models = ordered(evaluation_metrics["models"])
    stats = {m: evaluation_metrics["models"][m] for m in models}
    among = {m: stats[m]["cold_items"].get("among_untrained") for m in models}
    users = max((a["users"] for a in among.values() if a), default=0)
    if not users:
        return []
    lines = ["", f"New films: the {users} test targets without training interactions (HR@10 and NDCG@10 over the "
             "whole catalogue, and among the items without training interactions only), and the mean number of "
             "such items in the top 10 of users whose target is a known film:", "",
             "| model | HR@10 (catalogue) | NDCG@10 (catalogue) | HR@10 among new [95% CI] | NDCG@10 among new | new items per top 10 |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for m in models:
        a = among[m]
        if not a:
            continue
        whole = a["catalogue"]
        lines.append(
            f"| {label(m)} | {fmt(whole['hr@10']['mean'])} | {fmt(whole['ndcg@10']['mean'])} | {fmt(a['hr@10']['mean'])} "
            f"[{fmt(a['hr@10']['ci_low'])}, {fmt(a['hr@10']['ci_high'])}] | {fmt(a['ndcg@10']['mean'])} | "
            f"{stats[m].get('untrained_in_top10', {}).get('trained_targets', math.nan):.2f} |"
        )  # fmt: skip
    return lines
