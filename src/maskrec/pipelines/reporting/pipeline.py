from kedro.pipeline import Node, Pipeline

from maskrec.pipelines.reporting import nodes
from maskrec.registry import RegisteredModel, models


def create_pipeline(
    reported: tuple[RegisteredModel, ...] | None = None, **kwargs
) -> Pipeline:
    """Figures and the summary for `reported` (default: the target's own models)."""
    reported = models() if reported is None else reported
    histories = {m.name: m.history for m in reported if m.history}
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
                nodes.build_summary,
                "evaluation_metrics",
                ["summary_table", "summary_markdown"],
                name="build_summary_node",
            ),
        ]
    )
