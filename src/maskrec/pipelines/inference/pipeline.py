from kedro.pipeline import Node, Pipeline

from maskrec.pipelines.evaluation.pipeline import MODELS
from maskrec.pipelines.inference import nodes


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                nodes.recommend_for_all_users,
                inputs={
                    "interactions": "interactions",
                    "item_features": "item_features",
                    "user_map": "user_map",
                    "model_stats": "model_stats",
                    "params": "params:inference",
                    **MODELS,
                },  # fmt: skip
                outputs="recommendations",
                name="recommend_for_all_users_node",
            ),
            Node(
                nodes.recommend_for_history,
                inputs={
                    "item_features": "item_features",
                    "model_stats": "model_stats",
                    "params": "params:inference",
                    **MODELS,
                },
                outputs="history_recommendations",
                name="recommend_for_history_node",
            ),
        ]
    )
