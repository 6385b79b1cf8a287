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
                outputs="classic_rating_predictions",
                name="predict_with_classic_models_node",
            ),
            Node(
                nodes.predict_with_sequence_models,
                inputs=[
                    "rating_splits",
                    "item_features",
                    "params:model",
                    "params:pretraining",
                    "params:ratings",
                    "params:training",
                ],
                outputs=[
                    "sequence_rating_predictions",
                    "rating_history",
                    "rating_model",
                ],
                name="predict_with_sequence_models_node",
            ),
            Node(
                nodes.evaluate_ratings,
                inputs=[
                    "classic_rating_predictions",
                    "sequence_rating_predictions",
                    "rating_splits",
                    "params:ratings",
                    "params:evaluation",
                ],
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
