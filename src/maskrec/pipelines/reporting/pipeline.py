from kedro.pipeline import Node, Pipeline

from maskrec.pipelines.reporting import nodes
from maskrec.registry import RegisteredModel, models


def create_pipeline(
    reported: tuple[RegisteredModel, ...] | None = None, **kwargs
) -> Pipeline:
    """Figures and the summary for `reported` (default: the target's own models; with the
    transfer models, the summary also reports the item alignment)."""
    reported = models() if reported is None else reported
    histories = {m.name: m.history for m in reported if m.history}
    # a transfer run's summary also says how much of the target the source covers
    transfer = any(m.transfer for m in reported)
    summary_inputs = ["evaluation_metrics", "data_quality_report"] + (["item_alignment_report"] if transfer else [])  # fmt: skip
    return Pipeline(
        [
            Node(
                nodes.plot_model_comparison,
                "evaluation_metrics",
                "model_comparison_plot",
                name="plot_model_comparison_node",
            ),
            Node(
                nodes.plot_learning_curves,
                histories,
                "learning_curves_plot",
                name="plot_learning_curves_node",
            ),
            Node(
                nodes.plot_history_buckets,
                "evaluation_metrics",
                "history_length_plot",
                name="plot_history_buckets_node",
            ),
            Node(
                nodes.plot_cold_vs_warm,
                "evaluation_metrics",
                "cold_vs_warm_plot",
                name="plot_cold_vs_warm_node",
            ),
            Node(
                nodes.plot_new_items,
                "evaluation_metrics",
                "new_items_plot",
                name="plot_new_items_node",
            ),
            Node(
                nodes.plot_beyond_accuracy,
                "evaluation_metrics",
                "beyond_accuracy_plot",
                name="plot_beyond_accuracy_node",
            ),
            Node(
                nodes.build_summary,
                summary_inputs,
                ["summary_table", "summary_markdown"],
                name="build_summary_node",
            ),
        ]
    )
