from kedro.pipeline import Node, Pipeline

from maskrec.pipelines.inference import nodes


def create_pipeline(**kwargs) -> Pipeline:
    chosen = ["chosen_model", "chosen_model_name"]
    return Pipeline(
        [
            Node(
                nodes.load_chosen_model,
                inputs=[
                    "model_stats",
                    "trained_models",
                    "item_features",
                    "params:inference",
                ],
                outputs=chosen,
                name="load_chosen_model_node",
            ),
            Node(
                nodes.add_new_films,
                inputs=[
                    "new_films",
                    "item_features",
                    "new_films_model",
                    *chosen,
                    "model_stats",
                ],
                outputs=["scoring_model", "recommendable_items"],
                name="add_new_films_node",
            ),
            Node(
                nodes.load_rating_model,
                inputs=["trained_models", "item_features"],
                outputs="rater",
                name="load_rating_model_node",
            ),
            Node(
                nodes.recommend_for_all_users,
                inputs=[
                    "interactions",
                    "recommendable_items",
                    "user_map",
                    "scoring_model",
                    "chosen_model_name",
                    "rater",
                    "params:inference",
                    "params:training",
                ],
                outputs="recommendations",
                name="recommend_for_all_users_node",
            ),
            Node(
                nodes.recommend_for_history,
                inputs=[
                    "recommendable_items",
                    "scoring_model",
                    "chosen_model_name",
                    "params:inference",
                    "params:training",
                ],
                outputs="history_recommendations",
                name="recommend_for_history_node",
            ),
            Node(
                nodes.recommend_for_requests,
                inputs=[
                    "history_requests",
                    "recommendable_items",
                    "scoring_model",
                    "chosen_model_name",
                    "params:inference",
                    "params:training",
                ],
                outputs="request_recommendations",
                name="recommend_for_requests_node",
            ),
        ]
    )
