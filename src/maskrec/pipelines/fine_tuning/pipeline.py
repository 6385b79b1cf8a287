from kedro.pipeline import Node, Pipeline

from maskrec.pipelines.fine_tuning import nodes
from maskrec.training.setup import init_model


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                nodes.train_teacher,
                inputs=[
                    "item_features",
                    "train_sequences",
                    "valid_targets",
                    "params:fine_tuning",
                    "params:training",
                ],
                outputs="teacher_model",
                name="train_teacher_node",
            ),
            Node(
                nodes.warm_start,
                inputs=[
                    "pretrained_model",
                    "item_features",
                    "params:pretraining",  # the initial weights: the scratch ablation's
                    "params:fine_tuning",
                ],
                outputs="fine_tuning_start",
                name="warm_start_node",
            ),
            Node(
                nodes.fine_tune_pretrained,
                inputs={
                    "model": "fine_tuning_start",
                    "teacher": "teacher_model",
                    "train_sequences": "train_sequences",
                    "valid_targets": "valid_targets",
                    "stage": "params:fine_tuning",
                    "training": "params:training",
                    "item_features": "item_features",  # the saved start must match it
                },
                outputs=["fine_tuned_model", "fine_tuned_history"],
                name="fine_tune_pretrained_node",
            ),
            Node(
                init_model,
                # the pretrained model's architecture and seed: the same initial weights
                inputs=["item_features", "params:pretraining"],
                outputs="scratch_initial_model",
                name="init_scratch_model_node",
            ),
            Node(
                nodes.fine_tune_scratch,
                inputs=[
                    "scratch_initial_model",
                    "teacher_model",
                    "train_sequences",
                    "valid_targets",
                    "params:scratch",
                    "params:training",
                ],  # fmt: skip
                outputs=["scratch_model", "scratch_history"],
                name="fine_tune_scratch_node",
            ),
        ]
    )
