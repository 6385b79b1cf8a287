"""The reporting pipeline on an in-memory catalog, from evaluation metrics and histories."""

from __future__ import annotations

from maskrec.pipelines.reporting import create_pipeline
from maskrec.registry import models
from tests.pipelines.evaluation.test_nodes import summary  # noqa: F401 (fixture)


def test_figures_and_summary_from_metrics_and_histories(summary, trained, caplog):  # noqa: F811
    from tests.helpers import run_pipeline

    _, metrics = summary
    histories = {m.history: trained[m.history] for m in models() if m.history}
    out = run_pipeline(
        create_pipeline(),
        {
            "evaluation_metrics": metrics,
            "data_quality_report": {
                "source": {"source": "log.parquet", "ratings": False}
            },
            **histories,
        },
        caplog,
    )
    assert {"model_comparison_plot", "learning_curves_plot", "history_length_plot", "cold_vs_warm_plot",
            "summary_table", "summary_markdown"} <= set(out)  # fmt: skip
    assert len(out["learning_curves_plot"].data) == len(histories)
    assert "Test NDCG@10 by training-history length" in out["summary_markdown"]
    # beyond accuracy: a panel per measure, a bar per model, the summary's columns
    panels = out["beyond_accuracy_plot"].data
    assert [p.name for p in panels] == ["coverage@10", "diversity@10", "novelty@10"]
    assert all(len(p.x) == len(metrics["models"]) for p in panels)
    assert "| diversity@10 | novelty@10 |" in out["summary_markdown"]
    assert all(row["novelty@10"] > 0 for row in out["summary_table"])
    # a source without ratings is said to be one, with what it leaves out
    assert "log.parquet has no ratings (implicit feedback)" in out["summary_markdown"]
