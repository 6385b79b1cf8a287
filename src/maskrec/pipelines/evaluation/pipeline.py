from kedro.pipeline import Node, Pipeline

from maskrec.pipelines.evaluation import nodes
from maskrec.registry import MODELS


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                nodes.evaluate_models,
                inputs={
                    "test_targets": "test_targets",
                    "valid_targets": "valid_targets",
                    "train_sequences": "train_sequences",
                    "params": "params:evaluation",
                    **{model.name: model.dataset for model in MODELS},
                },
                outputs=["per_user_metrics", "model_stats"],
                name="evaluate_models_node",
            ),
            Node(
                nodes.summarise_evaluation,
                inputs=["per_user_metrics", "model_stats", "params:evaluation"],
                outputs="evaluation_metrics",
                name="summarise_evaluation_node",
            ),
        ]
    )
