from kedro.pipeline import Node, Pipeline

from maskrec.pipelines.transfer import nodes
from maskrec.training.setup import init_model
from maskrec.training.stages import warm_start

SOURCE = "pretraining_source"  # the namespace of the source's data


def create_pipeline(**kwargs) -> Pipeline:
    """Item alignment and the transfer models, from the source's cleaned data
    (`pretraining_source.interactions`, `.item_features`: the data_processing pipeline
    under that namespace, which `pipeline_registry` adds). The two nodes that read the
    source's data sit in its namespace too: kedro viz groups them with it, and Kedro keeps
    dotted dataset names for namespaced nodes (it warns about any other)."""
    return Pipeline(
        [
            Node(
                nodes.align_source_items,
                inputs=["item_features", f"{SOURCE}.item_features", "params:transfer"],
                outputs=["item_alignment", "item_alignment_counts"],
                name="align_source_items_node",
                namespace=SOURCE,
            ),
            Node(
                nodes.map_source_sequences,
                inputs=[
                    f"{SOURCE}.interactions",
                    "item_alignment",
                    "train_sequences",
                    "item_alignment_counts",
                    "params:transfer",
                ],
                outputs=[
                    "pretraining_source_sequences",
                    "pretraining_source_valid_targets",
                    "item_alignment_report",
                ],
                name="map_source_sequences_node",
                namespace=SOURCE,
            ),  # fmt: skip
            Node(
                init_model,
                inputs=["item_features", "params:transfer_pretraining"],
                outputs="source_pretrained_initial_model",
                name="init_transfer_model_node",
            ),
            Node(
                nodes.pretrain_on_source,
                inputs=[
                    "source_pretrained_initial_model",
                    "pretraining_source_sequences",
                    "pretraining_source_valid_targets",
                    "params:transfer_pretraining",
                    "params:training",
                ],
                outputs=["source_pretrained_model", "source_pretrained_history"],
                name="pretrain_on_source_node",
            ),  # fmt: skip
            Node(
                nodes.continue_on_target,
                inputs=[
                    "source_pretrained_model",
                    "train_sequences",
                    "valid_targets",
                    "params:transfer_continuation",
                    "params:training",
                ],
                outputs=["transfer_pretrained_model", "transfer_pretrained_history"],
                name="continue_on_target_node",
            ),  # fmt: skip
            Node(
                warm_start,
                inputs=[
                    "transfer_pretrained_model",
                    "item_features",
                    "params:transfer_pretraining",  # its initial weights
                    "params:transfer_fine_tuning",
                ],
                outputs="transfer_fine_tuning_start",
                name="transfer_warm_start_node",
            ),  # fmt: skip
            Node(
                nodes.fine_tune_source_pretrained,
                inputs=[
                    "transfer_fine_tuning_start",
                    "teacher_model",
                    "train_sequences",
                    "valid_targets",
                    "params:transfer_fine_tuning",
                    "params:training",
                ],
                outputs=["transfer_model", "transfer_history"],
                name="fine_tune_source_pretrained_node",
            ),  # fmt: skip
            Node(
                nodes.join_sequences,
                inputs=["train_sequences", "pretraining_source_sequences"],
                outputs="joint_train_sequences",
                name="join_sequences_node",
            ),
            Node(
                nodes.train_joint_sasrec,
                inputs=[
                    "item_features",
                    "joint_train_sequences",
                    "valid_targets",
                    "params:joint_sasrec",
                    "params:training",
                ],
                outputs=["joint_sasrec_model", "joint_sasrec_history"],
                name="train_joint_sasrec_node",
            ),  # fmt: skip
        ]
    )
