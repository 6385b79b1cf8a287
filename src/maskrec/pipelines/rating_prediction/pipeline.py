from kedro.pipeline import Node, Pipeline

from maskrec.pipelines.rating_prediction import nodes


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                nodes.split_ratings,
                inputs=["interactions", "params:ratings"],
                outputs="rating_splits",
                name="split_ratings_node",
            ),
            Node(
                nodes.predict_with_classic_models,
                inputs=["rating_splits", "params:ratings"],
                outputs="rating_predictions",
                name="predict_with_classic_models_node",
            ),
            Node(
                nodes.evaluate_ratings,
                inputs=[
                    "rating_predictions",
                    "rating_splits",
                    "params:ratings",
                    "params:evaluation",
                ],  # fmt: skip
                outputs="rating_metrics",
                name="evaluate_ratings_node",
            ),
            Node(
                nodes.plot_rating_errors,
                inputs="rating_metrics",
                outputs="rating_errors_plot",
                name="plot_rating_errors_node",
            ),
        ]
    )
