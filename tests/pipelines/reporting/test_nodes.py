"""The figures carry the numbers of the evaluation, trace by trace."""

from __future__ import annotations

import pandas as pd
import pytest

from maskrec.pipelines.reporting import nodes
from tests.pipelines.evaluation.test_nodes import summary  # noqa: F401 (fixture)


def test_model_comparison_bars_are_the_means_with_their_intervals(summary):  # noqa: F811
    _, metrics = summary
    figure = nodes.plot_model_comparison(metrics)
    assert [t.name for t in figure.data] == ["NDCG@10", "HR@10", "MRR@10"]
    ndcg = figure.data[0]
    assert list(ndcg.x) == [
        "pretrained + fine-tuned",
        "scratch (no pretraining)",
        "EASE",
        "most popular",
    ]
    fine = metrics["models"]["fine_tuned"]["all"]["ndcg@10"]
    assert ndcg.y[0] == pytest.approx(fine["mean"])
    assert ndcg.error_y.array[0] == pytest.approx(fine["ci_high"] - fine["mean"])
    assert ndcg.error_y.arrayminus[0] == pytest.approx(fine["mean"] - fine["ci_low"])


def test_history_and_cold_figures(summary):  # noqa: F811
    _, metrics = summary
    buckets = nodes.plot_history_buckets(metrics)
    assert len(buckets.data) == 4
    first = metrics["models"]["fine_tuned"]["by_history_length"]
    shown = [label for label in first if first[label]["users"] > 0]
    assert [y for y in buckets.data[0].y] == pytest.approx(
        [first[b]["ndcg@10"]["mean"] for b in shown]
    )
    cold = nodes.plot_cold_vs_warm(metrics)
    assert [t.name.split()[0] for t in cold.data] == ["warm", "cold"]
    assert cold.data[1].y[0] == pytest.approx(
        metrics["models"]["fine_tuned"]["cold"]["ndcg@10"]["mean"]
    )


def test_learning_curves_follow_the_histories():
    pre = pd.DataFrame({"epoch": [1, 2, 3], "ndcg@10": [0.1, 0.2, 0.25]})
    fine = pd.DataFrame({"epoch": [0, 1], "ndcg@10": [0.25, 0.26]})
    scratch = pd.DataFrame({"epoch": [0, 1, 2], "ndcg@10": [0.0, 0.05, 0.1]})
    figure = nodes.plot_learning_curves(
        pretrained=pre, fine_tuned=fine, scratch=scratch
    )
    traces = {t.name: t for t in figure.data}
    assert list(traces) == [  # in the registry's order
        "pretrained + fine-tuned (after pretrained only)",
        "pretrained only",
        "scratch (no pretraining)",
    ]
    fine_trace = traces["pretrained + fine-tuned (after pretrained only)"]
    assert list(fine_trace.x) == [3, 4]  # fine-tuning continues after pretraining
    assert list(fine_trace.y) == [0.25, 0.26]
    assert list(traces["scratch (no pretraining)"].x) == [0, 1, 2]


def test_summary_table_and_markdown(summary):  # noqa: F811
    _, metrics = summary
    rows, markdown = nodes.build_summary(metrics, {"source": {"ratings": True}})
    assert [r["model"] for r in rows] == [
        "fine_tuned",
        "scratch",
        "ease",
        "most_popular",
    ]
    assert rows[0]["ndcg@10"] == pytest.approx(
        metrics["models"]["fine_tuned"]["all"]["ndcg@10"]["mean"]
    )
    assert "| most popular |" in markdown and "no (same list for all)" in markdown
    assert "| fine_tuned | scratch | all | 200 |" in markdown
