from kedro.pipeline import Node, Pipeline

from maskrec.pipelines.seeds import nodes


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                nodes.compare_seeds,
                inputs=[
                    "per_user_metrics_runs",
                    "model_stats_runs",
                    "params:evaluation",
                    "params:seeds",
                ],  # fmt: skip
                outputs=["seed_comparison", "seed_summary"],
                name="compare_seeds_node",
            )
        ]
    )
