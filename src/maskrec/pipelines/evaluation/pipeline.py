from kedro.pipeline import Node, Pipeline

from maskrec.pipelines.evaluation import nodes
from maskrec.registry import RegisteredModel, models


def create_pipeline(
    scored: tuple[RegisteredModel, ...] | None = None, **kwargs
) -> Pipeline:
    """Evaluation of `scored` (default: the target's own models; the transfer run passes
    its own list too)."""
    scored = models() if scored is None else scored
    return Pipeline(
        [
            Node(
                nodes.evaluate_models,
                inputs={
                    "test_targets": "test_targets",
                    "valid_targets": "valid_targets",
                    "train_sequences": "train_sequences",
                    "item_features": "item_features",
                    "new_items": "new_films_model",
                    "params": "params:evaluation",
                    "training": "params:training",
                    **{model.name: model.dataset for model in scored},
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
