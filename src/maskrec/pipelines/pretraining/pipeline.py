from kedro.pipeline import Node, Pipeline

from maskrec.pipelines.pretraining import nodes
from maskrec.training.setup import init_model


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                init_model,
                inputs=["item_features", "params:pretraining"],
                outputs="pretrained_initial_model",
                name="init_pretraining_model_node",
            ),
            Node(
                nodes.pretrain_on_target,
                inputs=[
                    "pretrained_initial_model",
                    "train_sequences",
                    "valid_targets",
                    "params:pretraining",
                    "params:training",
                ],
                outputs=["pretrained_model", "pretrained_history"],
                name="pretrain_node",
            ),
        ]
    )
