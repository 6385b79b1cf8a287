from kedro.pipeline import Node, Pipeline

from maskrec.pipelines.pretraining import nodes


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                nodes.init_model,
                inputs=["item_features", "params:model"],
                outputs="initial_model",
                name="init_pretraining_model_node",
            ),
            Node(
                nodes.pretrain,
                inputs=[
                    "initial_model",
                    "train_sequences",
                    "valid_targets",
                    "params:pretraining",
                ],
                outputs=["pretrained_model", "pretraining_history"],
                name="pretrain_node",
            ),
        ]
    )
