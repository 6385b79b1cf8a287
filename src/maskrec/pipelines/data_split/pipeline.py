from kedro.pipeline import Node, Pipeline

from maskrec.pipelines.data_split import nodes


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                nodes.split_interactions,
                inputs=[
                    "interactions",
                    "user_map",
                    "item_map",
                    "given_split_targets",
                    "params:data_split",
                ],
                outputs=[
                    "train_sequences",
                    "valid_targets",
                    "test_targets",
                    "cold_users",
                    "cold_items",
                ],
                name="split_interactions_node",
            ),
        ]
    )
